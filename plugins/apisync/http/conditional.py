"""Conditional page requests: ask the server whether a page changed since an earlier extraction.

The API guides ask clients to "cache data to reduce API calls"; HTTP's way is a conditional
request. A page staged with the ``ETag`` / ``Last-Modified`` its response carried is asked for
again, in the next extraction of the same window, with ``If-None-Match`` / ``If-Modified-Since``.
A ``304 Not Modified`` carries no body: the page's body is the earlier one, read back from
staging, and the read goes on from it exactly as it did then (the paginator sees the same body
and the same pagination headers; the repeat guard and every end-of-read check run as usual).

What makes that safe (a 304 must never cost a row):

- A page is matched by its request: :func:`request_key` hashes method, absolute URL, query
  parameters and JSON body. A page reached by another request (an earlier page changed and the
  cursor moved) has no validators and is fetched whole.
- Only GET (and HEAD) requests are made conditional: a POST with ``If-None-Match`` may be answered
  ``412 Precondition Failed``.
- The page that ended the earlier read is always fetched whole: new records arrive at the end of
  a read, and a 304 need not repeat the headers that say whether more pages follow (``Link``).
  So a replayed page always had a next page, and the read never ends early because of a 304.
- The staged body is checked against the SHA-256 it was stored with; a body that is missing,
  unreadable or different, or a 304 the hook did not ask for, means the page is requested again
  without validators. A body that then fails to decode is read again without validators too
  (the hook's reread loop passes ``conditional=False``).
- Headers of a 304 replace the stored ones (RFC 9111 section 4.3.4, "freshening"): a server that
  repeats ``Link`` on its 304s is believed over the earlier page.

The hook knows nothing of staging: :class:`ConditionalPages` gets the earlier pages as
:class:`EarlierPage` entries whose body is a callable (the pipeline reads it from the earlier
extraction's files), and hands back, per page, the plain-JSON entry the pipeline stages next to
it (:meth:`ConditionalPages.entry`). No library does this for ``requests`` without a cache store
of its own (CacheControl keeps whole responses in its own cache, not in our staging, and does
not tie them to an extraction that completed), hence this small module.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from apisync.redaction import redact_url, strip_query_params

__all__ = [
    "REPLAYED_HEADERS",
    "ConditionalPages",
    "EarlierPage",
    "Fetched",
    "body_digest",
    "request_key",
]

log = logging.getLogger(__name__)

# The response headers a page's decoding and its paginator read (the charset, GitHub's Link,
# X-Total-Count), kept with a staged page so that a 304 replays them; a paginator that reads
# another header must add it here. Nothing else is stored (no cookies, no rate-limit state).
REPLAYED_HEADERS = ("Content-Type", "Link", "X-Total-Count")
CONDITIONAL_METHODS = frozenset({"GET", "HEAD"})
_LINK_URL = re.compile(r"<([^>]*)>")


def request_key(method: str, url: str, params: Mapping[str, Any] | None, json_body: Any) -> str:
    """The fingerprint of a page request: the same request in two extractions, the same key."""
    canonical = json.dumps(
        {"method": method.upper(), "url": url, "params": dict(params or {}), "json": json_body},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class EarlierPage:
    """A page of an earlier complete extraction, as its staged entry describes it.

    ``body`` reads the staged body back (it may raise: the file is gone or damaged).
    """

    etag: str | None
    last_modified: str | None
    headers: Mapping[str, str]
    digest: str
    body: Callable[[], bytes] = field(repr=False)
    ended_read: bool = False

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], body: Callable[[], bytes]) -> EarlierPage:
        return cls(
            etag=entry.get("etag"),
            last_modified=entry.get("last_modified"),
            headers=dict(entry.get("headers") or {}),
            digest=str(entry.get("sha256", "")),
            body=body,
            ended_read=bool(entry.get("ended_read")),
        )

    def validators(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

    def replay(self, not_modified: requests.Response) -> requests.Response | None:
        """The earlier response rebuilt around the staged body (status 200, the stored headers
        freshened by the 304's); None when the body cannot be read back intact."""
        url = redact_url(not_modified.url or "")
        try:
            body = self.body()
        except Exception as exc:  # gone, truncated, not gzip (zlib.error)...: never fail over a cache
            log.warning(
                "%s: 304, but its staged body is unreadable (%s): asking again without validators", url, exc
            )
            return None
        if body_digest(body) != self.digest:
            log.warning(
                "%s: 304, but its staged body is not the one stored: asking again without validators", url
            )
            return None
        response = requests.Response()
        response.status_code = 200
        response.reason = "OK (304 Not Modified: the staged body)"
        response.headers = CaseInsensitiveDict(dict(self.headers))
        for name in (*REPLAYED_HEADERS, "ETag", "Last-Modified"):
            if name in not_modified.headers:
                response.headers[name] = not_modified.headers[name]
        response.encoding = get_encoding_from_headers(response.headers)
        response._content = body
        response.url = not_modified.url
        response.request = not_modified.request
        response.elapsed = not_modified.elapsed
        return response


@dataclass(frozen=True)
class Fetched:
    """A page's response (a 304 replaced by the staged body), its request key, whether it was one."""

    response: requests.Response
    key: str
    not_modified: bool = False


class ConditionalPages:
    """The validators of an earlier complete extraction of a window, by request key.

    Empty (no earlier extraction) it still records the entries of this extraction's pages, so
    the next one can ask.
    """

    def __init__(self, earlier: Mapping[str, EarlierPage] | None = None) -> None:
        self.earlier = dict(earlier or {})

    def fetch(
        self,
        send: Callable[[dict[str, str] | None], requests.Response],
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        *,
        conditional: bool = True,
    ) -> Fetched:
        """Send one page request (``send(headers)``), conditional when an earlier page matches."""
        key = request_key(method, url, params, json_body)
        earlier = self.earlier.get(key) if conditional else None
        if earlier is not None and (method.upper() not in CONDITIONAL_METHODS or earlier.ended_read):
            earlier = None
        validators = earlier.validators() if earlier is not None else {}
        response = send(validators or None)
        if response.status_code != 304:
            return Fetched(response, key)
        replayed = earlier.replay(response) if earlier is not None and validators else None
        if replayed is not None:
            return Fetched(replayed, key, not_modified=True)
        if not validators:
            log.warning(
                "%s: 304 to a request without validators: asking again", redact_url(response.url or url)
            )
        return Fetched(send(None), key)

    @staticmethod
    def entry(
        fetched: Fetched, *, ended_read: bool, secret_params: set[str] | frozenset[str] = frozenset()
    ) -> dict[str, Any] | None:
        """What to stage next to the page (plain JSON; the body is the response's, staged with
        it): None when the response carries no validator, nothing to ask with next time.

        ``secret_params``: query parameters that carry a credential, taken out of ``Link`` URLs
        (the hook takes them out of every next-page URL anyway, and its auth adds them back).
        """
        headers = fetched.response.headers
        etag, last_modified = headers.get("ETag"), headers.get("Last-Modified")
        if (not etag and not last_modified) or fetched.response.status_code != 200:
            return None
        kept = {name: headers[name] for name in REPLAYED_HEADERS if name in headers}
        if "Link" in kept and secret_params:
            kept["Link"] = _LINK_URL.sub(
                lambda match: f"<{strip_query_params(match.group(1), secret_params)}>", kept["Link"]
            )
        return {
            "request": fetched.key,
            "etag": etag,
            "last_modified": last_modified,
            "headers": kept,
            "sha256": body_digest(fetched.response.content),
            "ended_read": ended_read,
            "not_modified": fetched.not_modified,
        }
