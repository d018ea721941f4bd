"""When to retry a request, and how long to wait (used by the hook's tenacity loop).

What is retried:

- ``429 Too Many Requests`` and connection failures *before* the request was sent (connect
  timeout, refused): for every method, because the server did not process the request.
- ``500/502/503/504``, read timeouts and dropped connections: only for idempotent requests, since
  the server may have acted on it. Idempotent = GET, HEAD, OPTIONS, PUT, DELETE; a POST only when its
  path is listed in ``extra["idempotent_post_paths"]`` (e.g. HubSpot batch upsert by idProperty:
  sending the same inputs twice leaves one record), or when it is a GraphQL *query* (a POST to a
  path ending in ``graphql`` whose document's operation is not a ``mutation``).
- Anything else (other 4xx) fails at once with a body excerpt.

How long: exponential backoff with full jitter (tenacity's ``wait_exponential_jitter``: 0.5 s,
1 s, 2 s... capped at 60 s), and never less than the server's ``Retry-After``. ``Retry-After: 0`` or
a date in the past cannot produce a hot loop: the backoff term is at least ``MIN_RETRY_WAIT_S``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import wait_exponential_jitter

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MIN_RETRY_WAIT_S = 0.5
MAX_BACKOFF_S = 60.0
DEFAULT_MAX_ATTEMPTS = 8

_GRAPHQL_COMMENT = re.compile(r"#[^\n]*")


def is_graphql_query(body: Any) -> bool:
    """True for a GraphQL document whose (first) operation is a query, not a mutation/subscription."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return False
    document = _GRAPHQL_COMMENT.sub("", body["query"]).lstrip()
    return not document.startswith(("mutation", "subscription"))


@dataclass(frozen=True)
class RetryPolicy:
    """Retry decisions for one connection."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    idempotent_post_paths: frozenset[str] = field(default_factory=frozenset)
    initial_backoff_s: float = MIN_RETRY_WAIT_S
    max_backoff_s: float = MAX_BACKOFF_S

    @classmethod
    def from_extras(cls, extras: dict[str, Any]) -> RetryPolicy:
        paths: Iterable[str] = extras.get("idempotent_post_paths") or ()
        return cls(
            max_attempts=int(extras.get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
            idempotent_post_paths=frozenset("/" + p.strip("/") for p in paths),
        )

    def is_idempotent(self, method: str, url: str, json: Any = None) -> bool:
        method = method.upper()
        if method in IDEMPOTENT_METHODS:
            return True
        if method != "POST":
            return False
        path = "/" + urlsplit(url).path.strip("/")
        if any(path == p or path.endswith(p) for p in self.idempotent_post_paths):
            return True
        return path.endswith("graphql") and is_graphql_query(json)

    def should_retry_status(self, status: int, idempotent: bool) -> bool:
        if status == 429:
            return True
        return idempotent and status in RETRY_STATUSES

    @staticmethod
    def should_retry_exception(exc: BaseException, idempotent: bool) -> bool:
        if isinstance(exc, requests.ConnectTimeout):
            return True
        if isinstance(exc, requests.ConnectionError) and _never_sent(exc):
            return True
        return idempotent and isinstance(exc, requests.ConnectionError | requests.Timeout)

    def backoff(self, attempt: int) -> float:
        """Jittered exponential backoff for the retry after ``attempt`` (1-based) failed."""
        wait = wait_exponential_jitter(multiplier=self.initial_backoff_s, max=self.max_backoff_s, jitter=1.0)
        return max(MIN_RETRY_WAIT_S, _exp_for(wait, attempt))

    def wait_for(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before the next attempt: the backoff, but never less than Retry-After."""
        return max(self.backoff(attempt), retry_after or 0.0)


def _exp_for(wait: wait_exponential_jitter, attempt: int) -> float:
    class _State:  # the only attribute tenacity's wait strategies read
        attempt_number = attempt

    return float(wait(_State()))  # type: ignore[arg-type]


def _never_sent(exc: requests.ConnectionError) -> bool:
    text = repr(exc.args[0]) if exc.args else ""
    return any(marker in text for marker in ("NewConnectionError", "Connection refused", "NameResolution"))
