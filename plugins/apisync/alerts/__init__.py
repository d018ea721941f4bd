"""Failure and lateness alerts for sync DAGs, on Slack and by email.

A DAG gets them from ``apisync.defaults`` (``sync_default_args()``, ``sync_deadline(90)``), or::

    @dag(..., default_args=alert_default_args({"retries": 3}), deadline=sync_deadline(90))

What Airflow and the providers already do, and we do not repeat:

- The task runner calls ``on_failure_callback`` only once a task is FAILED for good (retries
  spent; ``on_retry_callback`` is a separate hook, not used here), calls each callable of the list
  on its own and logs, never raises, an exception from one. :class:`FailureAlert` is one entry
  of that list, next to the DAG's other callbacks (the audit).
- ``DAG(deadline=...)`` takes a ``DeadlineAlert`` or a list of them. A missed deadline's
  ``AsyncCallback`` (an importable path plus JSON kwargs) is queued by the scheduler and awaited
  by the triggerer with a small context (``dag_run`` as the REST API's dict, ``deadline`` with
  ``deadline_time``), not a task context. Deadlines of runs that succeed are pruned. The
  triggerer must be able to import ``apisync`` (plugins folder).
- The transports: ``SlackWebhookNotifier`` (providers-slack) and ``SmtpNotifier``
  (providers-smtp), each reading its own connection.
- Sync SDK calls from a worker thread of the triggerer (connections, Variables, secret masking):
  the triggerer bridges them to its event loop, so one sync sender serves both callbacks.

What apisync adds:

- The message (:mod:`.message`): title, run facts, the error's first line, the failing
  data-quality expectations, a log or run link; rendered for Slack and HTML email; every text
  masked by :func:`apisync.redaction.redact`.
- The channels (:mod:`.channels`): one sender per channel around the provider notifier, the same
  for the failure callback (in the task) and the deadline callback (in a triggerer thread). Each
  loads its connection and registers the password for redaction before the message is built; a
  missing or broken connection is a WARNING at run time naming the channel and conn id, never an
  error, and never stops the other channel. Both channels share one callback because the message
  is built once, after both passwords are known, and the outcome is reported per channel
  (``FailureAlert().send(context) == {"slack": True, "email": False}``).

Channels (both optional):

- Slack: a ``slackwebhook`` connection, default id ``slack_alerts`` (webhook token in the password).
- Email: an ``smtp`` connection, default id ``smtp_alerts``. Recipients: the ``to`` argument, else
  the Airflow Variable ``apisync_alert_emails``, else the connection extra ``"to"`` (a list or a
  comma-separated string). Sender: connection extra ``from_email``, else ``apisync-alerts@localhost``.

Data-quality protocol: any exception (or one in its ``__cause__``/``__context__`` chain) that has
an attribute ``failures`` — a list of dicts with keys ``"expectation"``, ``"column"`` and
``"unexpected_count"`` (``apisync.errors.QualityError``) — is listed expectation by expectation.

Provider notifiers are imported when an alert is sent, not when a DAG file imports this package
(the Slack provider alone costs ~250 ms of imports).

Owns: alert text, channel wiring, the failure and deadline callbacks. May import ``apisync.errors``
and ``apisync.redaction`` only (``apisync.defaults`` imports this package).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

# Public airflow.sdk names; its 3.3.2 type stub (__init__.pyi) does not list them yet.
from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference  # type: ignore[attr-defined]

from apisync.alerts.channels import (
    ALERT_EMAILS_VARIABLE,
    DEFAULT_SLACK_CONN_ID,
    DEFAULT_SMTP_CONN_ID,
    alert_channels,
    send_alert,
)
from apisync.alerts.message import Alert, deadline_alert, error_first_line, failure_alert, quality_failures
from apisync.redaction import redact

if TYPE_CHECKING:
    from airflow.sdk import BaseDeadlineReference  # type: ignore[attr-defined]

__all__ = [
    "ALERT_EMAILS_VARIABLE",
    "DEFAULT_SLACK_CONN_ID",
    "DEFAULT_SMTP_CONN_ID",
    "Alert",
    "FailureAlert",
    "alert_default_args",
    "deadline_alert",
    "error_first_line",
    "failure_alert",
    "failure_callbacks",
    "notify_deadline_missed",
    "quality_failures",
    "sync_deadline",
]

log = logging.getLogger(__name__)


@dataclass
class FailureAlert:
    """``on_failure_callback`` that posts to Slack and emails; it never raises.

    Each channel is tried on its own: a missing connection logs a WARNING and skips that channel,
    a transport error logs a WARNING (redacted) and the other channel still goes out.
    """

    slack_conn_id: str | None = DEFAULT_SLACK_CONN_ID
    smtp_conn_id: str | None = DEFAULT_SMTP_CONN_ID
    to: Sequence[str] = field(default_factory=tuple)

    def __call__(self, context: Mapping[str, Any]) -> None:
        try:
            self.send(context)
        except Exception as error:  # Airflow would log it too, but as an error with a traceback
            log.warning("apisync alert: could not build or send the failure alert: %s", redact(str(error)))

    def send(self, context: Mapping[str, Any]) -> dict[str, bool]:
        """Send to every configured channel; returns which channels delivered."""
        channels = alert_channels(
            slack_conn_id=self.slack_conn_id, smtp_conn_id=self.smtp_conn_id, to=self.to
        )
        return send_alert(channels, lambda: failure_alert(context), context)


def failure_callbacks(
    *,
    slack_conn_id: str | None = DEFAULT_SLACK_CONN_ID,
    smtp_conn_id: str | None = DEFAULT_SMTP_CONN_ID,
    to: Sequence[str] = (),
) -> list[Callable[[Mapping[str, Any]], None]]:
    """Callbacks for ``on_failure_callback`` (final failure only). ``None`` disables a channel."""
    return [FailureAlert(slack_conn_id=slack_conn_id, smtp_conn_id=smtp_conn_id, to=tuple(to))]


def alert_default_args(
    default_args: Mapping[str, Any] | None = None,
    *,
    slack_conn_id: str | None = DEFAULT_SLACK_CONN_ID,
    smtp_conn_id: str | None = DEFAULT_SMTP_CONN_ID,
    to: Sequence[str] = (),
) -> dict[str, Any]:
    """``default_args`` with the failure alerts added to any ``on_failure_callback`` already there."""
    merged = dict(default_args or {})
    existing = merged.get("on_failure_callback") or []
    existing_list = list(existing) if isinstance(existing, (list, tuple)) else [existing]
    merged["on_failure_callback"] = existing_list + failure_callbacks(
        slack_conn_id=slack_conn_id, smtp_conn_id=smtp_conn_id, to=to
    )
    return merged


async def notify_deadline_missed(
    context: Mapping[str, Any] | None = None,
    *,
    slack_conn_id: str | None = DEFAULT_SLACK_CONN_ID,
    smtp_conn_id: str | None = DEFAULT_SMTP_CONN_ID,
    to: Sequence[str] = (),
) -> dict[str, bool]:
    """Deadline-missed callback, awaited by the triggerer (``AsyncCallback``); never raises.

    The same channels and sender as :class:`FailureAlert`, in a worker thread so the triggerer's
    event loop is never blocked (see :mod:`.channels` for why that is safe).
    """
    run_context = context or {}
    try:
        channels = alert_channels(slack_conn_id=slack_conn_id, smtp_conn_id=smtp_conn_id, to=to)
        return await asyncio.to_thread(send_alert, channels, lambda: deadline_alert(run_context), run_context)
    except Exception as error:
        log.warning("apisync alert: could not build or send the deadline alert: %s", redact(str(error)))
        return {}


def sync_deadline(
    minutes: float,
    *,
    reference: BaseDeadlineReference = DeadlineReference.DAGRUN_QUEUED_AT,
    slack_conn_id: str | None = DEFAULT_SLACK_CONN_ID,
    smtp_conn_id: str | None = DEFAULT_SMTP_CONN_ID,
    to: Sequence[str] = (),
) -> DeadlineAlert:
    """A DeadlineAlert: alert on the same channels when a run is not done ``minutes`` after queueing.

    Measured from when the run was queued (not its logical date, which for interval timetables is
    already an interval in the past, and for backfills far older). A DAG wanting more than one
    deadline passes a list: ``deadline=[sync_deadline(90), sync_deadline(240, to=[...])]``.
    """
    if minutes <= 0:
        raise ValueError(f"sync_deadline needs a positive number of minutes, got {minutes!r}")
    kwargs: dict[str, Any] = {"slack_conn_id": slack_conn_id, "smtp_conn_id": smtp_conn_id}
    if to:
        kwargs["to"] = list(to)
    return DeadlineAlert(
        reference=reference,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(notify_deadline_missed, kwargs=kwargs),
        name="apisync sync deadline",
    )
