"""One redaction for every text that leaves apisync: logs, error messages, URLs, alerts, audit rows.

Secrets get here two ways. Values the code knows (a connection password, an API key, an OAuth2
token when it is received) are registered with :func:`register_secret`, which tells Airflow's
secrets masker (task logs) and keeps them for :func:`redact` (every other text, in any process).
Values nobody registered but that look like credentials are masked by pattern: ``Bearer xyz`` /
``Basic xyz``, ``password=...``, ``user:pass@`` in a URL, secret query parameters, JWTs
(``eyJ...``), Slack webhook paths, and the value of every secret-named header or key
(Authorization, Cookie, Set-Cookie, X-API-Key, any name with api-key/token/secret/auth...) in an
echoed request, whether written as JSON, as a Python repr or as a header line.

:func:`body_excerpt` redacts *before* it shortens a body, so a secret straddling the cut cannot
survive as a prefix.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "BODY_EXCERPT_CHARS",
    "MASK",
    "SECRET_QUERY_PARAMS",
    "aregister_secret",
    "body_excerpt",
    "cut_middle",
    "cut_redacted",
    "is_secret_name",
    "redact",
    "redact_url",
    "register_secret",
    "strip_query_params",
]

MASK = "***"
BODY_EXCERPT_CHARS = 500
# Shorter values are not masked (as Airflow's masker, [logging] min_length_masked_secret): masking
# "1" or "dark" everywhere would garble every text while protecting nothing.
MIN_SECRET_CHARS = 5

# Query parameters whose value is a credential, wherever they appear (lower case).
SECRET_QUERY_PARAMS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "client_secret",
        "key",
        "password",
        "refresh_token",
        "secret",
        "sig",
        "signature",
        "token",
    }
)

# A header or key whose name contains one of these holds a credential ("X-Auth-Token", "x-api-key",
# "Set-Cookie", "client_secret", "refresh_token"...); so does one named exactly like SECRET_WORDS.
# Not a bare "auth": "author" or "authority" in an echoed record is data, not a credential.
SECRET_NAME_PARTS = (
    "apikey",
    "api-key",
    "api_key",
    "token",
    "secret",
    "authorization",
    "auth-",
    "auth_",
    "cookie",
    "password",
    "passwd",
)
SECRET_WORDS = frozenset(
    {"auth", "key", "sig", "signature", "pwd", "session", "sessionid", "credentials", *SECRET_QUERY_PARAMS}
)


def is_secret_name(name: str) -> bool:
    """Whether a header, query parameter or JSON key named ``name`` carries a credential."""
    lowered = name.lower()
    return lowered in SECRET_WORDS or any(part in lowered for part in SECRET_NAME_PARTS)


# "name": "value" / 'name': 'value' (JSON or a Python repr), the value's escapes kept whole.
_QUOTED_PAIR = re.compile(
    r"""(?P<q>["'])(?P<name>[A-Za-z0-9_.-]{1,80})(?P=q)(?P<sep>\s*:\s*)"""
    r"""(?P<v>["'])(?P<value>(?:\\.|(?!(?P=v))[^\\])*)(?P=v)"""
)
# An HTTP header line ("Cookie: a=1; session=x"): only names that are headers, so prose such as
# "ApiAuthError: ..." keeps its text.
_HEADER_LINE = re.compile(
    r"(?P<p>(?<![\w-])(?:proxy-authorization|authorization|set-cookie|cookie"
    r"|x-[\w-]*(?:api-?key|token|secret|auth)[\w-]*|[\w-]*api-key)[ \t]*:[ \t]*)[^\r\n\"']+",
    re.IGNORECASE,
)


def _mask_quoted_pair(match: re.Match[str]) -> str:
    if not is_secret_name(match["name"]) or not match["value"]:
        return match.group(0)
    return f"{match['q']}{match['name']}{match['q']}{match['sep']}{match['v']}{MASK}{match['v']}"


_CREDENTIAL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # JWTs: three base64url segments, the first a JSON header ("eyJ")
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"), MASK),
    # scheme://user:password@host
    (re.compile(r"(?P<p>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE), r"\g<p>***:***@"),
    # Authorization: Bearer xyz / Basic xyz
    (re.compile(r"(?P<p>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE), r"\g<p>***"),
    # password=..., api_key: ..., token=..., "secret": "..."
    (
        re.compile(
            r"""(?P<p>\b[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key)"""
            r"""["']?\s*[=:]\s*["']?)[^\s"'&,;}]+""",
            re.IGNORECASE,
        ),
        r"\g<p>***",
    ),
    # secret query parameters: ?key=..., &sig=...
    (
        re.compile(
            r"(?P<p>[?&](?:" + "|".join(sorted(SECRET_QUERY_PARAMS)) + r")=)[^&\s'\"]+",
            re.IGNORECASE,
        ),
        r"\g<p>***",
    ),
    # Slack incoming-webhook paths carry the token itself.
    (re.compile(r"(?P<p>hooks\.slack\.com/services/)\S+", re.IGNORECASE), r"\g<p>***"),
)


class _Registry:
    """Secrets registered in this process, longest first (so a secret containing another is masked
    whole); also masks urllib3's DEBUG lines, which print request URLs with query API keys."""

    secrets: ClassVar[list[str]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def add(cls, value: str) -> bool:
        if len(value) < MIN_SECRET_CHARS:
            return False
        with cls.lock:
            if value in cls.secrets:
                return False
            cls.secrets = sorted([*cls.secrets, value], key=len, reverse=True)
            return True


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _Registry.secrets:
            record.msg, record.args = redact(record.getMessage()), None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactFilter())


def register_secret(value: str | None) -> None:
    """Mask ``value`` from now on: in task logs (Airflow's masker) and in every :func:`redact`."""
    if not value or not _Registry.add(value):
        return
    from airflow.sdk.log import mask_secret

    mask_secret(value)


async def aregister_secret(value: str | None) -> None:
    """:func:`register_secret` for an event loop (the triggerer): the sync call would block it."""
    if not value or not _Registry.add(value):
        return
    from airflow.sdk.log import amask_secret

    await amask_secret(value)


def redact(text: str) -> str:
    """``text`` with every secret Airflow's masker or this process knows, and everything shaped like
    a credential, masked."""
    if not text:
        return text
    from airflow.sdk.log import redact as airflow_redact

    masked = airflow_redact(text)
    text = masked if isinstance(masked, str) else str(masked)
    for secret in _Registry.secrets:
        text = text.replace(secret, MASK)
    text = _QUOTED_PAIR.sub(_mask_quoted_pair, text)
    text = _HEADER_LINE.sub(r"\g<p>" + MASK, text)
    for pattern, replacement in _CREDENTIAL_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_url(url: str, secret_params: frozenset[str] | set[str] = frozenset()) -> str:
    """``url`` with userinfo and secret query values (``SECRET_QUERY_PARAMS`` and ``secret_params``)
    replaced by ``***``, and every registered secret masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    if parts.query:
        lowered = SECRET_QUERY_PARAMS | {p.lower() for p in secret_params}
        query = [
            (k, MASK if k.lower() in lowered else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        parts = parts._replace(query=urlencode(query, safe="*[]:,"))
    text = urlunsplit(parts._replace(netloc=netloc))
    for secret in _Registry.secrets:
        text = text.replace(secret, MASK)
    return text


def strip_query_params(url: str, names: set[str] | frozenset[str]) -> str:
    """``url`` without the given query parameters (so a stored next-page URL carries no API key)."""
    parts = urlsplit(url)
    if not parts.query or not names:
        return url
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]:,")))


def cut_redacted(text: str, limit: int, marker: str = "…") -> str:
    """``text`` redacted, *then* shortened to ``limit`` characters (``marker`` included) by
    :func:`cut_middle`: every error text that is shortened goes through here, so a secret
    straddling the cut cannot survive as a prefix, and the cause at the end of a long message
    (``... [Errno 111] Connection refused``) survives the cut."""
    return cut_middle(redact(text), limit, marker)


WORD_SNAP_CHARS = 16  # how far a cut moves to land between words rather than in one


def cut_middle(text: str, limit: int, marker: str = "…") -> str:
    """``text`` at most ``limit`` characters long: its head and its tail, the middle replaced by
    ``marker``. An error's first words say what failed and its last ones why (the root cause),
    so it is the middle that goes; each cut moves up to a few characters to fall between words."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(marker))
    head_len = (keep + 1) // 2
    tail_len = keep - head_len
    head = text[:head_len]
    tail = text[len(text) - tail_len :] if tail_len else ""
    space = head.rfind(" ", head_len - WORD_SNAP_CHARS)
    if 0 < space < head_len - 1:
        head = head[: space + 1]
    space = tail.find(" ", 0, WORD_SNAP_CHARS)
    if 0 <= space < len(tail) - 1:
        tail = tail[space:]
    return head + marker + tail


def body_excerpt(body: bytes | str | None, limit: int = BODY_EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of a response body, redacted first, for error messages."""
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    # Redact a generous head, then cut: a secret straddling the cut cannot survive as a prefix.
    text = redact(" ".join(text[: 4 * limit + 4096].split()))
    return text if len(text) <= limit else text[:limit] + "…"
