"""Every exception apisync raises, in one tree, so callers catch by kind and alerts say what broke.

Each message names what is wrong and where (file and field, method and secret-free URL, table,
stream); nothing is ever flagged onto an exception object: a different case is a different class::

    ApisyncError                        base of everything apisync raises
    ├── ConfigError                     something a person wrote is wrong: no retry can help
    │   ├── SpecError                   a stream spec (or a file it names) is invalid: file + field
    │   ├── ApiConfigError              connection extras or a call are misconfigured (also ApiError)
    │   ├── WarehouseConfigError        the warehouse connection cannot become an engine (also LoadError)
    │   │   └── WarehouseSchemaError    the warehouse schema does not exist (or cannot be created)
    │   ├── CrmMappingError             a CRM mapping file is invalid: file + field (also CrmError)
    │   ├── SuiteError                  an expectation suite cannot be used as written (also QualityError)
    │   └── WindowError                 a run has no usable data interval
    ├── ApiError                        talking to a source API or a CRM failed
    │   ├── ApiResponseError            the server answered, but not with what we can use
    │   │   ├── ApiClientError          a 4xx that retrying cannot fix (400, 404, 422...); body excerpt
    │   │   │   └── ApiAuthError        401/403 even after one token refresh
    │   │   ├── RetriesExhaustedError   retryable failures (429, 5xx, timeouts) outlived max_attempts
    │   │   │   └── SourceUnreachableError  nothing reached the server (refused, unknown host, TLS,
    │   │   │                           connect timeout) within the connect budget: not retried by Airflow
    │   │   └── MalformedResponseError  the body is not what the pagination dialect expects
    │   │       ├── TruncatedBodyError  not valid JSON (cut off in transit?): the page is read again
    │   │       ├── GraphQLError        HTTP 200 carrying a top-level GraphQL ``errors`` array
    │   │       └── PaginationError     the pages do not add up: a cursor cycle, max_pages reached,
    │   │                               a full page without a next marker; never read again
    │   └── RateLimitWait               not a failure: the next wait is too long to hold a worker;
    │                                   carries the page cursor so the task can defer and resume
    ├── NormalizeError                  raw records cannot be normalized as the spec says
    │   └── UnknownFieldsError          undeclared fields with ``unknown_fields: fail``
    ├── TooManyColumnsError             a payload or table would pass the column limit (normalize, load)
    ├── ColumnMapConflictError          two source keys claim one column, or one key two (normalize, load)
    ├── QualityError                    records failed a quality gate; ``failures`` lists the checks
    │   ├── BatchValidationError        a table-level expectation failed: no row of the batch is trusted
    │   └── QuarantineThresholdError    too large a share of the window was quarantined
    ├── LoadError                       rows could not be written; the transaction was rolled back
    │   ├── SchemaEvolutionError        a field changed type incompatibly with the table's column
    │   └── AccountingError             pulled != inserted + updated + unchanged + deduped
    │                                   + quarantined + repeated + out_of_window
    ├── CrmError                        a CRM push failed
    │   └── CrmPushError                a CRM reply does not match what was sent, or a push is running
    └── CoverageError                   the interval ledger could not be read or repaired
        ├── AirflowApiError             Airflow's REST API refused or failed a call (method, URL, status)
        └── ReplayError                 a window cannot be replayed from its staged raw files
            ├── NoRunForWindowError     no DAG run has that window (data interval or params)
            ├── RunStillActiveError     the window's run is queued or running: wait for it
            └── RawFilesMissingError    the run's raw pages are gone: a fresh run/backfill is needed

``RateLimitWait`` subclasses ``ApiError`` only so that code catching ``ApiError`` around a plain
``hook.request`` sees it too; :class:`~apisync.http.operator.PagedExtractOperator` turns it into a
deferral.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "AccountingError",
    "AirflowApiError",
    "ApiAuthError",
    "ApiClientError",
    "ApiConfigError",
    "ApiError",
    "ApiResponseError",
    "ApisyncError",
    "BatchValidationError",
    "ColumnMapConflictError",
    "ConfigError",
    "CoverageError",
    "CrmError",
    "CrmMappingError",
    "CrmPushError",
    "GraphQLError",
    "LoadError",
    "MalformedResponseError",
    "NoRunForWindowError",
    "NormalizeError",
    "PaginationError",
    "QualityError",
    "QuarantineThresholdError",
    "RateLimitWait",
    "RawFilesMissingError",
    "ReplayError",
    "RetriesExhaustedError",
    "RunStillActiveError",
    "SchemaEvolutionError",
    "SourceUnreachableError",
    "SpecError",
    "SuiteError",
    "TooManyColumnsError",
    "TruncatedBodyError",
    "UnknownFieldsError",
    "WarehouseConfigError",
    "WarehouseSchemaError",
    "WindowError",
    "did_you_mean",
]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``did you mean 'x'?`` for the candidate closest to a name someone mistyped, else ``""``:
    the one suggestion every "unknown key / option / column / type" message ends with."""
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f"did you mean {close[0]!r}?" if close else ""


class ApisyncError(Exception):
    """Base class of every error apisync raises."""


# ---------------------------------------------------------------- configuration


class ConfigError(ApisyncError):
    """Something a person wrote (spec, suite, mapping, connection, run conf) is wrong; retries cannot help."""


class SpecError(ConfigError):
    """A stream spec or one of its referenced files is invalid; the message names file and field."""


class WindowError(ConfigError):
    """The run has no usable interval (a plain cron schedule gives start == end)."""


# ---------------------------------------------------------------- http


class ApiError(ApisyncError):
    """Talking to a source API or a CRM failed (base of every error raised by apisync.http)."""


class ApiConfigError(ApiError, ConfigError):
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


class SourceUnreachableError(RetriesExhaustedError):
    """The request never reached the server: refused, unknown host, rejected TLS certificate,
    connect timeout. ``cause`` says which in words ("connection refused", "unknown host"...); the
    message starts with method, URL and that cause. The hook spent its short connect budget on it
    (``retry.connect_attempts`` / ``retry.connect_budget_s``), so the task fails at once instead of
    waiting out Airflow's retries: the next run, or a backfill of the gap, syncs the window."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        cause: str,
        attempts: int,
        waited_s: float,
    ) -> None:
        super().__init__(message, method=method, url=url, status=None, attempts=attempts, waited_s=waited_s)
        self.cause = cause


class MalformedResponseError(ApiResponseError):
    """The body could not be parsed, or lacks the fields the pagination dialect needs."""


class TruncatedBodyError(MalformedResponseError):
    """The body is not valid JSON, e.g. cut off in transit: transient, so the page is read again."""


class GraphQLError(MalformedResponseError):
    """A GraphQL endpoint answered 200 with a top-level ``errors`` array."""

    def __init__(self, message: str, *, method: str, url: str, errors: list[Any]) -> None:
        super().__init__(message, method=method, url=url, status=200)
        self.errors = errors


class PaginationError(MalformedResponseError):
    """The pages do not add up to a complete read: the next request was already made (a cursor
    cycle), ``max_pages`` was reached, or a full page came without a next-page marker. Reading the
    page again cannot help; the message names the page, the URL and the next request (redacted)."""


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


# ---------------------------------------------------------------- transform


class NormalizeError(ApisyncError):
    """Raw records cannot be normalized as the spec says."""


class UnknownFieldsError(NormalizeError):
    """The spec forbids undeclared fields and the payload has some."""


class TooManyColumnsError(ApisyncError):
    """An absurd payload (thousands of keys) would create more columns than allowed."""


class ColumnMapConflictError(ApisyncError):
    """The stored source-key -> column mapping of a table disagrees with this run's: a declared
    field's column is held by another key, or a concurrent run stored another name first."""


# ---------------------------------------------------------------- quality


class QualityError(ApisyncError):
    """Records failed a quality gate.

    ``failures`` lists what failed as ``{"expectation", "column", "unexpected_count"}`` dicts: the
    alerts (apisync.alerts) print them line by line, so on-call sees which checks broke and how often.
    """

    def __init__(self, message: str, failures: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


class SuiteError(QualityError, ConfigError):
    """An expectation suite file cannot be used as written."""


class BatchValidationError(QualityError):
    """A table-level expectation failed, so no row of the batch is trusted."""


class QuarantineThresholdError(QualityError):
    """The quarantined share of a run is above the stream's quarantine_threshold."""


# ---------------------------------------------------------------- load


class LoadError(ApisyncError):
    """Rows could not be written; the transaction was rolled back and the target is untouched."""


class WarehouseConfigError(LoadError, ConfigError):
    """The warehouse connection is missing or of an unsupported type."""


class WarehouseSchemaError(WarehouseConfigError):
    """The schema a stream writes to does not exist and may not (or cannot) be created: a
    ConfigError, so the task fails on its first try instead of retrying into the same error."""


class SchemaEvolutionError(LoadError):
    """The data's type for a column cannot be stored in the existing column."""


class AccountingError(LoadError):
    """The counts of a run do not add up: a record was lost or counted twice somewhere."""


# ---------------------------------------------------------------- crm


class CrmError(ApisyncError):
    """A CRM push failed."""


class CrmMappingError(CrmError, ConfigError):
    """The mapping file is missing or invalid; the message names the file and the field."""


class CrmPushError(CrmError):
    """A CRM response could not be matched to the inputs sent, or another push holds the mapping."""


# ---------------------------------------------------------------- coverage


class CoverageError(ApisyncError):
    """The interval ledger of a stream could not be read, or its gap could not be repaired."""


class AirflowApiError(CoverageError):
    """A call to Airflow's own REST API failed; the message names method, URL and status."""

    def __init__(self, message: str, *, method: str, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status


class ReplayError(CoverageError):
    """A window cannot be replayed from its staged raw files; the message says why and what to do."""


class NoRunForWindowError(ReplayError):
    """No DAG run of the DAG has the window as its data interval or its params window."""


class RunStillActiveError(ReplayError):
    """The window's newest run is queued or running: a replay would race it."""


class RawFilesMissingError(ReplayError):
    """The run's extraction left no complete raw pages (failed, or the files were deleted)."""
