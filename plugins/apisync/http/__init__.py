"""Rate-limit-aware HTTP access to source APIs and CRMs: ``ApiHook`` and its building blocks."""

from __future__ import annotations

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
    TruncatedBodyError,
)
from apisync.http.headers import RateLimitSnapshot, parse_rate_limit, parse_retry_after
from apisync.http.hook import EXTRAS_EXAMPLE, ApiHook, Page, add_stats
from apisync.http.pagination import PAGINATORS, PageRequest, Paginator, make_paginator
from apisync.http.ratelimit import RateLimiter, RedisBackend, SQLiteBackend, make_backend
from apisync.http.retry import RetryPolicy

__all__ = [
    "EXTRAS_EXAMPLE",
    "PAGINATORS",
    "ApiAuthError",
    "ApiClientError",
    "ApiConfigError",
    "ApiError",
    "ApiHook",
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
    "TruncatedBodyError",
    "add_stats",
    "make_backend",
    "make_paginator",
    "parse_rate_limit",
    "parse_retry_after",
]
