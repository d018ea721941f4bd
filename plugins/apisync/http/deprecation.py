"""Deprecation and sunset signals a server sends about the API version a sync was written for.

``Deprecation`` (RFC 9745: a structured date ``@1688169599``; older drafts and many APIs send
``true`` or an HTTP-date), ``Sunset`` (RFC 8594: an HTTP-date) and ``Link`` relations
``deprecation``, ``sunset`` and ``successor-version`` say that the endpoint or the pinned version
will go away. The hook logs one warning per distinct notice (not one per page) and keeps them in
:attr:`~apisync.http.hook.ApiHook.deprecations`, so a run that paged 10,000 times warns once.
The header values are parsed with the standard library (``email.utils``) and requests'
``parse_header_links``: no library of ours is needed for three headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from requests.utils import parse_header_links

NOTICE_RELS = ("deprecation", "sunset", "successor-version")


@dataclass(frozen=True)
class DeprecationNotice:
    """What a response said: since when the API is deprecated, when it sunsets, and where to look."""

    endpoint: str
    deprecated: str | None  # ISO date-time, or "yes" for a bare ``true``
    sunset: str | None  # ISO date-time
    links: tuple[tuple[str, str], ...] = ()  # (rel, url)

    def describe(self) -> str:
        parts = [f"{self.endpoint}: the server signals this API version is going away"]
        if self.deprecated:
            since = f" since {self.deprecated}" if self.deprecated != "yes" else ""
            parts.append(f"deprecated{since}")
        if self.sunset:
            parts.append(f"sunset {self.sunset}")
        parts.extend(f"{rel} {url}" for rel, url in self.links)
        return "; ".join(parts)


def _moment(value: str) -> str | None:
    """``@epoch`` (RFC 9745) or an HTTP-date as ISO 8601 UTC; None when it is neither."""
    text = value.strip()
    if text.startswith("@"):
        try:
            return datetime.fromtimestamp(int(text[1:]), UTC).isoformat()
        except (ValueError, OverflowError, OSError):
            return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def deprecation_notice(headers: Mapping[str, str], endpoint: str) -> DeprecationNotice | None:
    """The notice in ``headers``, or None when the response says nothing about going away."""
    deprecation = headers.get("Deprecation")
    sunset = headers.get("Sunset")
    links: list[tuple[str, str]] = []
    for link in parse_header_links(headers.get("Link") or ""):
        for rel in (link.get("rel") or "").split():
            if rel.lower() in NOTICE_RELS and link.get("url"):
                links.append((rel.lower(), link["url"]))
    given = (deprecation or "").strip()
    flag = given.lower()
    deprecated = None if flag in ("", "false") else "yes" if flag == "true" else _moment(given) or given[:64]
    sunset_at = (_moment(sunset) or sunset.strip()[:64]) if sunset else None
    if deprecated is None and sunset_at is None and all(rel == "successor-version" for rel, _ in links):
        return None  # a successor link alone announces a new version, not the end of this one
    return DeprecationNotice(endpoint, deprecated, sunset_at, tuple(links))
