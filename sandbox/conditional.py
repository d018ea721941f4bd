"""Conditional GETs on the list pages, as real APIs answer them (GitHub, Stripe's CDN, most CMSs).

Every list page carries a strong ``ETag`` (a hash of its body) and ``Last-Modified`` (the last
change of the data set, :attr:`sandbox.data.Dataset.modified_at`). A request whose
``If-None-Match`` names the page's ETag (or ``*``), or, without ``If-None-Match``, whose
``If-Modified-Since`` is not before ``Last-Modified``, gets ``304 Not Modified`` with no body but
the same ``ETag``, ``Last-Modified`` and ``Link`` headers (RFC 9110 section 13.1, RFC 9110
section 15.4.5). The guard counts 304s under ``by_status`` in the stats: bodies served are the 200s.
"""

from __future__ import annotations

import hashlib
from email.utils import parsedate_to_datetime

from fastapi import Request
from fastapi.responses import Response

from sandbox.timestamps import http_date

# Headers a 304 repeats from the 200 it stands for (the pagination ones too: a client may trust them).
REPEATED_ON_304 = ("ETag", "Last-Modified", "Link")


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 section 13.1.2): ``W/`` prefixes are ignored."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _not_modified_since(if_modified_since: str, modified_at: int) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # not an HTTP-date: ignored (RFC 9110 section 13.1.3)
    return since.tzinfo is not None and modified_at <= since.timestamp()


def conditional_json(
    request: Request, body: bytes, modified_at: int, headers: dict[str, str] | None = None
) -> Response:
    """The page as JSON with its validators, or a 304 when the request's validators match."""
    headers = {**(headers or {}), "ETag": _etag(body), "Last-Modified": http_date(modified_at)}
    if_none_match = request.headers.get("if-none-match")
    if_modified_since = request.headers.get("if-modified-since")
    if (if_none_match is not None and _matches(if_none_match, headers["ETag"])) or (
        if_none_match is None
        and if_modified_since is not None
        and _not_modified_since(if_modified_since, modified_at)
    ):
        repeated = {name: value for name, value in headers.items() if name in REPEATED_ON_304}
        return Response(status_code=304, headers=repeated)
    return Response(content=body, media_type="application/json", headers=headers)
