"""Rate-limit-aware HTTP access to source APIs and CRMs: ``ApiHook`` and its building blocks.

Owns the one door to the network: the hook (:mod:`.hook`), the shared rate limiter
(:mod:`.ratelimit`), rate-limit headers (:mod:`.headers`), auth (:mod:`.auth`), retries
(:mod:`.retry`, failures sorted by cause in :mod:`.network_failures`), body decoding (:mod:`.body`),
pagination dialects (:mod:`.pagination`), conditional page requests (:mod:`.conditional`), the
deferral operator and trigger, and the http provider's operator and sensor on our hook
(:mod:`.provider_operators`). It imports nothing of ours
but :mod:`apisync.errors` and :mod:`apisync.redaction`, and knows no pandas and no warehouse.

The names below load on first use (PEP 562), so ``import apisync.http.pagination`` (the stream
spec does it at DAG parse time) does not pull in the hook and the Airflow http provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apisync.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from apisync.errors import (
        ApiAuthError,
        ApiClientError,
        ApiConfigError,
        ApiError,
        ApiResponseError,
        GraphQLError,
        MalformedResponseError,
        RateLimitWait,
        RetriesExhaustedError,
        SourceUnreachableError,
        TruncatedBodyError,
    )
    from apisync.http.headers import RateLimitSnapshot, parse_rate_limit, parse_retry_after
    from apisync.http.hook import EXTRAS_EXAMPLE, ApiHook, Page, add_stats
    from apisync.http.pagination import PAGINATORS, PageRequest, Paginator, make_paginator
    from apisync.http.provider_operators import ApiHttpOperator, ApiHttpSensor
    from apisync.http.ratelimit import RateLimiter, RedisBackend, SQLiteBackend, make_backend
    from apisync.http.retry import RetryPolicy

_HOME = {
    "apisync.errors": (
        "ApiAuthError",
        "ApiClientError",
        "ApiConfigError",
        "ApiError",
        "ApiResponseError",
        "GraphQLError",
        "MalformedResponseError",
        "RateLimitWait",
        "RetriesExhaustedError",
        "SourceUnreachableError",
        "TruncatedBodyError",
    ),
    "apisync.http.headers": ("RateLimitSnapshot", "parse_rate_limit", "parse_retry_after"),
    "apisync.http.hook": ("EXTRAS_EXAMPLE", "ApiHook", "Page", "add_stats"),
    "apisync.http.pagination": ("PAGINATORS", "PageRequest", "Paginator", "make_paginator"),
    "apisync.http.provider_operators": ("ApiHttpOperator", "ApiHttpSensor"),
    "apisync.http.ratelimit": ("RateLimiter", "RedisBackend", "SQLiteBackend", "make_backend"),
    "apisync.http.retry": ("RetryPolicy",),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}

__all__ = [
    "EXTRAS_EXAMPLE",
    "PAGINATORS",
    "ApiAuthError",
    "ApiClientError",
    "ApiConfigError",
    "ApiError",
    "ApiHook",
    "ApiHttpOperator",
    "ApiHttpSensor",
    "ApiResponseError",
    "GraphQLError",
    "MalformedResponseError",
    "Page",
    "PageRequest",
    "Paginator",
    "RateLimitSnapshot",
    "RateLimitWait",
    "RateLimiter",
    "RedisBackend",
    "RetriesExhaustedError",
    "RetryPolicy",
    "SQLiteBackend",
    "SourceUnreachableError",
    "TruncatedBodyError",
    "add_stats",
    "make_backend",
    "make_paginator",
    "parse_rate_limit",
    "parse_retry_after",
]

__getattr__ = lazy_exports(__name__, _MODULE_OF)
