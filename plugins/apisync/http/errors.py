"""Exceptions raised by :mod:`apisync.http`.

Every message names the method and a secret-free URL, so an alert says what broke and where::

    ApiError                        base of everything below
    ├── ApiConfigError              connection extras are invalid (fix the Connection, no retry helps)
    ├── ApiResponseError            the server answered, but not with what we can use
    │   ├── ApiClientError          a 4xx that retrying cannot fix (400, 404, 422...); body excerpt
    │   │   └── ApiAuthError        401/403 even after one token refresh
    │   ├── RetriesExhaustedError   retryable failures (429, 5xx, timeouts) outlived max_attempts
    │   └── MalformedResponseError  body is not the JSON the pagination dialect expects
    │       └── GraphQLError        HTTP 200 carrying a top-level GraphQL ``errors`` array
    └── RateLimitWait               not a failure: the next wait is too long to hold a worker;
                                    carries the page cursor so the task can defer and resume

``RateLimitWait`` subclasses ``ApiError`` only so that code catching ``ApiError`` around a plain
``hook.request`` sees it too; :class:`~apisync.http.operator.PagedExtractOperator` turns it into a
deferral.
"""

from __future__ import annotations

from typing import Any

BODY_EXCERPT_CHARS = 500


def body_excerpt(body: bytes | str | None, limit: int = BODY_EXCERPT_CHARS) -> str:
    """First ``limit`` characters of a response body, decoded leniently, for error messages."""
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class ApiError(Exception):
    """Base class of every error raised by apisync.http."""


class ApiConfigError(ApiError):
    """The connection or the call is misconfigured (bad extras, unknown pagination type...)."""


class ApiResponseError(ApiError):
    """A response the client cannot use. ``url`` never contains secrets."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.body = body


class ApiClientError(ApiResponseError):
    """A 4xx response that is not retried (fails at once)."""


class ApiAuthError(ApiClientError):
    """401/403: credentials rejected (after one refresh-and-repeat for OAuth2)."""


class RetriesExhaustedError(ApiResponseError):
    """Retryable failures outlasted ``max_attempts``; says how many attempts and how long we waited."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int | None,
        attempts: int,
        waited_s: float,
        body: str = "",
    ) -> None:
        super().__init__(message, method=method, url=url, status=status, body=body)
        self.attempts = attempts
        self.waited_s = waited_s


class MalformedResponseError(ApiResponseError):
    """The body could not be parsed, or lacks the fields the pagination dialect needs."""


class GraphQLError(MalformedResponseError):
    """A GraphQL endpoint answered 200 with a top-level ``errors`` array."""

    def __init__(self, message: str, *, method: str, url: str, errors: list[Any]) -> None:
        super().__init__(message, method=method, url=url, status=200)
        self.errors = errors


class RateLimitWait(ApiError):  # noqa: N818 (name fixed by the contract; it is a signal)
    """The next request must wait ``wait_s`` seconds (until epoch ``resume_at``): defer, do not sleep.

    ``state`` is the JSON-serializable pagination state to resume from (the page that was about to be
    requested), filled in by :meth:`ApiHook.paginate`; ``None`` when raised by a bare request.
    """

    def __init__(self, wait_s: float, resume_at: float, state: dict[str, Any] | None = None) -> None:
        super().__init__(f"rate limited: next request allowed in {wait_s:.1f} s")
        self.wait_s = wait_s
        self.resume_at = resume_at
        self.state = state
