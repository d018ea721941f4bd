"""Which task failures Airflow retries: none that another try would meet again.

A stream task's ``retries`` are for the transient: 5xx, timeouts, dropped connections, 429 storms
(:class:`~apisync.errors.RetriesExhaustedError` once the hook's own attempts are spent), a
warehouse that is briefly away. A failure that depends only on the data, the code or what a person
wrote comes back on every try, and each retry only delays the alert by the backoff. Those fail at
once (:data:`RetryAction.FAIL <airflow.sdk.RetryAction>`), whatever ``retries`` the DAG sets:

- :class:`~apisync.errors.QuarantineThresholdError`: the same records fail the same suite;
- :class:`~apisync.errors.ConfigError` (spec, suite, connection extras, warehouse connection,
  window): fixed by a person, not by time;
- :class:`~apisync.errors.ApiClientError` with a 4xx other than 401 (a token can be refreshed or
  a secret rotated meanwhile), 408 (a timeout) and 429 (a rate limit): 400, 403, 404, 422...

A source that cannot be reached (:class:`~apisync.errors.SourceUnreachableError`: connection
refused, unknown host, rejected TLS certificate, connect timeout) fails at once too, unless a policy
the task inherited decides otherwise: the hook already gave it its connect budget (3 attempts,
15 s of backoff), and Airflow's retries (30 s, 60 s, 120 s apart) turned a down source into a
9-minute wait for the alert. The window stays a gap that the next run's coverage check or a
backfill fills. Inherited policies may still buy retries for it (an ``ExceptionRetryPolicy`` rule
for ``SourceUnreachableError``), as they cannot for the failures above.

A task's retry policy is Airflow's (``retry_policy``, Airflow 3.3): the task runner consults it with
the original exception, so the failure callbacks (the alert, the audit row) see the error itself,
not a wrapper. The policy is never serialized; the worker builds it when it parses the DAG file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import RetryAction, RetryDecision, RetryPolicy

from apisync.errors import ApiClientError, ConfigError, QuarantineThresholdError, SourceUnreachableError

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["RETRIED_CLIENT_STATUSES", "DeterministicFailurePolicy", "fails_on_every_try", "waits_no_retry"]

RETRIED_CLIENT_STATUSES = frozenset({401, 408, 429})


def fails_on_every_try(error: BaseException) -> bool:
    """True when another try of the task would meet ``error`` again."""
    if isinstance(error, QuarantineThresholdError | ConfigError):
        return True
    return isinstance(error, ApiClientError) and error.status not in RETRIED_CLIENT_STATUSES


def waits_no_retry(error: BaseException) -> bool:
    """True when the hook already spent its short retry budget on ``error`` and another task try
    would only delay the alert: the source could not be reached at all."""
    return isinstance(error, SourceUnreachableError)


class DeterministicFailurePolicy(RetryPolicy):
    """Fail at once on :func:`fails_on_every_try` errors; otherwise ask ``then`` (a policy the task
    inherited, e.g. from ``default_args``); an unreachable source (:func:`waits_no_retry`) that
    ``then`` leaves to the default fails at once too; else the task's own ``retries`` apply."""

    def __init__(self, then: RetryPolicy | None = None) -> None:
        self.then = then

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        if fails_on_every_try(exception):
            return RetryDecision.fail(f"{type(exception).__name__} fails the same way on every try")
        if self.then is not None:
            decision = self.then.evaluate(exception, try_number, max_tries, context)
            if decision.action is not RetryAction.DEFAULT:
                return decision
        if waits_no_retry(exception):
            cause = getattr(exception, "cause", "unreachable")
            return RetryDecision.fail(
                f"the source is unreachable ({cause}) after the hook's connect budget: another try "
                "would only delay the alert; the next run or a backfill syncs this window"
            )
        return RetryDecision(action=RetryAction.DEFAULT)
