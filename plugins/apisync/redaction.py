"""One redaction for every text that leaves apisync: logs, error messages, URLs, alerts, audit rows.

Secrets get here two ways. Values the code knows (a connection password, an API key, an OAuth2
token when it is received) are registered with :func:`register_secret`, which tells Airflow's
secrets masker (task logs) and keeps them for :func:`redact` (every other text, in any process).
Values nobody registered but that look like credentials (``Bearer xyz``, ``password=...``,
``user:pass@`` in a URL, secret query parameters, Slack webhook paths) are masked by pattern.

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
    "redact",
    "redact_url",
    "register_secret",
    "strip_query_params",
]

MASK = "***"
BODY_EXCERPT_CHARS = 500

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

_CREDENTIAL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
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


def body_excerpt(body: bytes | str | None, limit: int = BODY_EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of a response body, redacted first, for error messages."""
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    # Redact a generous head, then cut: a secret straddling the cut cannot survive as a prefix.
    text = redact(" ".join(text[: 4 * limit + 4096].split()))
    return text if len(text) <= limit else text[:limit] + "…"
