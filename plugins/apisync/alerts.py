"""Failure and lateness alerts for sync DAGs, configured in one place.

A DAG opts in with one line::

    from apisync.alerts import alert_default_args, sync_deadline

    @dag(..., default_args=alert_default_args({"retries": 3}), deadline=sync_deadline(90))

Channels (both optional; a missing connection is a WARNING at run time, never an error):

- Slack: a ``slackwebhook`` connection, default id ``slack_alerts`` (webhook token in the password).
- Email: an ``smtp`` connection, default id ``smtp_alerts``. Recipients: the ``to`` argument, else
  the Airflow Variable ``apisync_alert_emails``, else the connection extra ``"to"`` (a list or a
  comma-separated string). Sender: connection extra ``from_email``, else ``apisync-alerts@localhost``.

Failure alerts go through ``on_failure_callback``, which the task runner calls only once a task is
FAILED for good (retries exhausted); ``on_retry_callback`` is a separate hook and is not used here.

Data-quality protocol: any exception (or one in its ``__cause__``/``__context__`` chain) that has
an attribute ``failures`` — a list of dicts with keys ``"expectation"``, ``"column"`` and
``"unexpected_count"`` — is listed expectation by expectation in the alert, e.g.::

    class DataQualityError(Exception):
        def __init__(self, message, failures):
            super().__init__(message)
            self.failures = failures  # [{"expectation": ..., "column": ..., "unexpected_count": 3}]

Secrets: nothing from a connection is ever put in a message, and every message passes through the
Airflow secrets masker (``redact``) plus a few patterns for credential-looking text, after the alert
connections' passwords have been registered with the masker.

Lateness: ``sync_deadline(minutes)`` is an Airflow 3 ``DeadlineAlert`` (DAG argument ``deadline=``).
Airflow 3.3 only accepts ``AsyncCallback`` (run in the triggerer) or ``SyncCallback`` (run by an
executor) there, given as an importable path plus JSON kwargs, and passes the callable a small
context (``dag_run`` as the REST API's dict, ``deadline`` with ``deadline_time``), not a task
context. A notifier class could be the callback itself, but then one alert feeds one channel and a
missing connection fails the callback; ``notify_deadline_missed`` fans out to both channels through
the notifiers' ``async_notify`` with the same warning rules. Deadlines of runs that succeed are
pruned; missed ones are queued by the scheduler, so a triggerer must be running and able to import
``apisync``.

Provider notifiers are imported when an alert is sent, not when a DAG file imports this module
(the Slack provider alone costs ~250 ms of imports).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

if TYPE_CHECKING:
    from airflow.sdk import BaseDeadlineReference

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
    "scrub",
    "sync_deadline",
]

log = logging.getLogger(__name__)

DEFAULT_SLACK_CONN_ID = "slack_alerts"
DEFAULT_SMTP_CONN_ID = "smtp_alerts"
ALERT_EMAILS_VARIABLE = "apisync_alert_emails"
DEFAULT_FROM_EMAIL = "apisync-alerts@localhost"
MAX_LISTED_FAILURES = 25
MAX_ERROR_CHARS = 500
SEND_TIMEOUT_S = 30

_CREDENTIAL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host
    (re.compile(r"(?P<p>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE), r"\g<p>***:***@"),
    # Authorization: Bearer xyz / Basic xyz
    (re.compile(r"(?P<p>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE), r"\g<p>***"),
    # password=..., api_key: ..., token=..., "secret": "..."
    (
        re.compile(
            r"""(?P<p>\b[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key)"""
            r"""["']?\s*[=:]\s*["']?)[^\s"'&,;}]+""",
            re.IGNORECASE,
        ),
        r"\g<p>***",
    ),
    # Slack incoming-webhook paths carry the token itself.
    (re.compile(r"(?P<p>hooks\.slack\.com/services/)\S+", re.IGNORECASE), r"\g<p>***"),
)


def scrub(text: str) -> str:
    """Mask registered secrets (Airflow's masker) and anything shaped like a credential."""
    from airflow.sdk.log import redact

    redacted = redact(text)
    cleaned = redacted if isinstance(redacted, str) else str(redacted)
    for pattern, replacement in _CREDENTIAL_PATTERNS:
        cleaned = pattern.sub(replacement, cleaned)
    return cleaned


@dataclass(frozen=True)
class Alert:
    """One alert, already scrubbed of secrets, rendered per channel."""

    title: str
    fields: tuple[tuple[str, str], ...]
    quality_failures: tuple[str, ...] = ()
    link: str | None = None
    omitted_failures: int = 0
    link_label: str = "Log"

    def as_text(self) -> str:
        lines = [self.title, *(f"{name}: {value}" for name, value in self.fields)]
        lines.extend(self._quality_lines())
        if self.link:
            lines.append(f"{self.link_label}: {self.link}")
        return "\n".join(lines)

    def as_slack(self) -> str:
        lines = [f"*{_slack_escape(self.title)}*"]
        lines.extend(f"*{name}:* {_slack_escape(value)}" for name, value in self.fields)
        lines.extend(_slack_escape(line) for line in self._quality_lines())
        if self.link:
            lines.append(f"*{self.link_label}:* {_slack_escape(self.link)}")
        return "\n".join(lines)

    def as_html(self) -> str:
        rows = "".join(
            f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
            for name, value in self.fields
        )
        parts = [f"<h3>{html.escape(self.title)}</h3>", f"<table>{rows}</table>"]
        if self.quality_failures:
            items = "".join(f"<li>{html.escape(item)}</li>" for item in self.quality_failures)
            more = f"<p>... and {self.omitted_failures} more</p>" if self.omitted_failures else ""
            parts.append(f"<p>Failing expectations:</p><ul>{items}</ul>{more}")
        if self.link:
            link = html.escape(self.link, quote=True)
            parts.append(f'<p>{html.escape(self.link_label)}: <a href="{link}">{link}</a></p>')
        return "".join(parts)

    def _quality_lines(self) -> list[str]:
        if not self.quality_failures:
            return []
        lines = ["Failing expectations:", *(f"  - {item}" for item in self.quality_failures)]
        if self.omitted_failures:
            lines.append(f"  ... and {self.omitted_failures} more")
        return lines


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error_first_line(error: BaseException | str | None) -> str:
    """``Type: first line of the message`` — the full traceback belongs in the log, not the alert."""
    if error is None:
        return "(no exception in context: failed outside the task process, e.g. heartbeat timeout)"
    if isinstance(error, BaseException):
        message = str(error).strip()
        first = message.splitlines()[0] if message else ""
        line = f"{type(error).__name__}: {first}" if first else type(error).__name__
    else:
        text = str(error).strip()
        line = text.splitlines()[0] if text else "(empty error)"
    # A response body dumped into one line must not swamp the message (Slack caps text length).
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


def quality_failures(error: BaseException | None) -> list[str]:
    """Lines for the failing expectations of a data-quality error (see the module docstring)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        failures = getattr(current, "failures", None)
        if isinstance(failures, (list, tuple)):
            return [_format_failure(item) for item in failures]
        current = current.__cause__ or current.__context__
    return []


def _format_failure(item: object) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    expectation = item.get("expectation") or "(unnamed expectation)"
    column = item.get("column")
    count = item.get("unexpected_count")
    where = f" on column {column}" if column else ""
    counted = f": {count} unexpected" if count is not None else ""
    return f"{expectation}{where}{counted}"


def _when(value: object) -> str:
    if value is None:
        return "-"
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def failure_alert(context: Mapping[str, Any]) -> Alert:
    """Build the alert for a task that failed for good, from the task's runtime context."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    error = context.get("exception")
    try:
        link = getattr(ti, "log_url", None)
    except Exception:  # log_url reads config; an alert without a link beats no alert
        link = None

    task_label = f"{task_id}[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else task_id
    fields = (
        ("DAG", str(dag_id)),
        ("Task", str(task_label)),
        ("Run", str(run_id)),
        (
            "Interval",
            f"{_when(context.get('data_interval_start'))} → {_when(context.get('data_interval_end'))}",
        ),
        ("Try", str(getattr(ti, "try_number", "?"))),
        ("Error", error_first_line(error)),
    )
    failures = quality_failures(error if isinstance(error, BaseException) else None)
    return _scrubbed_alert(
        title=f"apisync: task {dag_id}.{task_label} failed",
        fields=fields,
        failures=failures,
        link=link,
    )


def deadline_alert(context: Mapping[str, Any]) -> Alert:
    """Build the alert for a run that missed its deadline, from the triggerer's simple context."""
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id = run.get("dag_id", "?")
    fields = (
        ("DAG", str(dag_id)),
        ("Run", str(run.get("dag_run_id") or run.get("run_id") or "?")),
        ("Interval", f"{_when(run.get('data_interval_start'))} → {_when(run.get('data_interval_end'))}"),
        ("State", str(run.get("state", "?"))),
        ("Queued at", _when(run.get("queued_at"))),
        ("Started at", _when(run.get("start_date"))),
        ("Deadline", _when(deadline.get("deadline_time"))),
    )
    run_id = run.get("dag_run_id") or run.get("run_id")
    return _scrubbed_alert(
        # Airflow prunes deadlines only for runs that succeed: a run that already failed still
        # reports here (it may have failed without a task failure alert, e.g. dagrun_timeout).
        title=f"apisync: sync {dag_id} is late (deadline missed, run {run.get('state', 'unknown')})",
        fields=fields,
        link=_run_url(str(dag_id), str(run_id)) if run_id else None,
        link_label="Run page",
    )


def _run_url(dag_id: str, run_id: str) -> str | None:
    """The run's page in the UI, built the way Airflow builds ``ti.log_url``."""
    try:
        from airflow.sdk.configuration import conf

        base_url = conf.get("api", "base_url", fallback="http://localhost:8080/")
    except Exception:
        return None
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def _scrubbed_alert(
    *,
    title: str,
    fields: Sequence[tuple[str, str]],
    failures: Sequence[str] = (),
    link: str | None = None,
    link_label: str = "Log",
) -> Alert:
    listed = failures[:MAX_LISTED_FAILURES]
    return Alert(
        title=scrub(title),
        fields=tuple((name, scrub(value)) for name, value in fields),
        quality_failures=tuple(scrub(item) for item in listed),
        link=scrub(link) if link else None,
        omitted_failures=len(failures) - len(listed),
        link_label=link_label,
    )


def _parse_recipients(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return _parse_recipients(json.loads(text))
            except ValueError:
                pass
        return [part.strip() for part in re.split(r"[,;\s]+", text) if part.strip()]
    if isinstance(value, Iterable):
        return [str(item).strip() for item in value if str(item).strip()]
    return []


def _is_missing_connection(error: BaseException) -> bool:
    from airflow.sdk.exceptions import AirflowNotFoundException, AirflowRuntimeError, ErrorType

    if isinstance(error, AirflowNotFoundException):
        return True
    return isinstance(error, AirflowRuntimeError) and error.error.error == ErrorType.CONNECTION_NOT_FOUND


def _register_connection_secrets(conn: Any) -> None:
    """Make sure the masker knows this connection's secrets before any message is built."""
    from airflow.sdk.log import mask_secret

    if password := getattr(conn, "password", None):
        mask_secret(password)


async def _aregister_connection_secrets(conn: Any) -> None:
    # The sync mask_secret would talk to the supervisor with a blocking call from the event loop.
    from airflow.sdk.log import amask_secret

    if password := getattr(conn, "password", None):
        await amask_secret(password)


def _warn_unusable_connection(channel: str, conn_id: str, error: BaseException) -> None:
    """A missing or broken alert connection costs that channel only, and says so at run time."""
    if not _is_missing_connection(error):
        log.warning(
            "apisync alert: %s connection %r could not be loaded (%s); %s alert not sent.",
            channel,
            conn_id,
            scrub(error_first_line(error)),
            channel,
        )
        return
    log.warning(
        "apisync alert: %s connection %r is not defined; %s alert not sent. "
        "Add the connection (or env var AIRFLOW_CONN_%s, valid JSON or URI) to receive it.",
        channel,
        conn_id,
        channel,
        conn_id.upper(),
    )


def _warn_failed(channel: str, conn_id: str, error: BaseException) -> None:
    log.warning(
        "apisync alert: sending the %s alert via connection %r failed: %s",
        channel,
        conn_id,
        scrub(error_first_line(error)),
    )


def _recipients_from_variable() -> list[str]:
    from airflow.sdk import Variable

    try:
        return _parse_recipients(Variable.get(ALERT_EMAILS_VARIABLE, default=None))
    except Exception as error:  # a Variable backend hiccup must not cost the alert
        log.warning("apisync alert: could not read Variable %r: %s", ALERT_EMAILS_VARIABLE, scrub(str(error)))
        return []


def _email_recipients(explicit: Sequence[str], conn: Any, from_variable: list[str]) -> list[str]:
    if explicit:
        return list(explicit)
    if from_variable:
        return from_variable
    return _parse_recipients(conn.extra_dejson.get("to"))


def _email_notifier(alert: Alert, conn: Any, conn_id: str, to: list[str]) -> Any:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    # Every templated field is set, so the notifier renders nothing: error text that happens to
    # contain "{{" is sent as it is instead of being evaluated as Jinja.
    return SmtpNotifier(
        to=to,
        from_email=conn.extra_dejson.get("from_email") or DEFAULT_FROM_EMAIL,
        subject=alert.title,
        html_content=alert.as_html(),
        smtp_conn_id=conn_id,
    )


def _slack_notifier(alert: Alert, conn_id: str) -> Any:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    return SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=alert.as_slack(), timeout=SEND_TIMEOUT_S)


@dataclass
class FailureAlert:
    """``on_failure_callback`` that posts to Slack and emails; it never raises.

    Each channel is tried on its own: a missing connection logs a WARNING and skips that channel,
    a transport error logs a WARNING (scrubbed) and the other channel still goes out.
    """

    slack_conn_id: str | None = DEFAULT_SLACK_CONN_ID
    smtp_conn_id: str | None = DEFAULT_SMTP_CONN_ID
    to: Sequence[str] = field(default_factory=tuple)

    def __call__(self, context: Mapping[str, Any]) -> None:
        try:
            self.send(context)
        except Exception as error:  # the last line of defence: an alert must never break a task
            log.warning("apisync alert: could not build or send the failure alert: %s", scrub(str(error)))

    def send(self, context: Mapping[str, Any]) -> dict[str, bool]:
        """Send to every configured channel; returns which channels delivered."""
        from airflow.sdk import BaseHook

        connections: dict[str, Any] = {}
        for channel, conn_id in (("slack", self.slack_conn_id), ("email", self.smtp_conn_id)):
            if not conn_id:
                continue
            try:
                connections[channel] = BaseHook.get_connection(conn_id)
            except Exception as error:
                _warn_unusable_connection(channel, conn_id, error)
                continue
            _register_connection_secrets(connections[channel])

        if not connections:
            return {}
        alert = failure_alert(context)
        delivered: dict[str, bool] = {}
        if "slack" in connections and self.slack_conn_id:
            delivered["slack"] = self._deliver(
                "slack", self.slack_conn_id, lambda: _slack_notifier(alert, self.slack_conn_id), context
            )
        if "email" in connections and self.smtp_conn_id:
            conn = connections["email"]
            to = _email_recipients(self.to, conn, [] if self.to else _recipients_from_variable())
            if not to:
                log.warning(
                    "apisync alert: no email recipients (set Variable %r or extra 'to' on connection %r); "
                    "email alert not sent.",
                    ALERT_EMAILS_VARIABLE,
                    self.smtp_conn_id,
                )
                delivered["email"] = False
            else:
                smtp_conn_id = self.smtp_conn_id
                delivered["email"] = self._deliver(
                    "email", smtp_conn_id, lambda: _email_notifier(alert, conn, smtp_conn_id, to), context
                )
        return delivered

    @staticmethod
    def _deliver(channel: str, conn_id: str, build: Callable[[], Any], context: Mapping[str, Any]) -> bool:
        try:
            build().notify(context)
        except Exception as error:
            _warn_failed(channel, conn_id, error)
            return False
        log.info("apisync alert: %s alert sent via connection %r", channel, conn_id)
        return True


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
    """Deadline-missed callback, run by the triggerer (``AsyncCallback``); never raises.

    Uses the notifiers' ``async_notify`` so nothing blocks the triggerer's event loop.
    """
    try:
        return await _send_deadline_alert(
            context or {}, slack_conn_id=slack_conn_id, smtp_conn_id=smtp_conn_id, to=list(to)
        )
    except Exception as error:
        log.warning("apisync alert: could not build or send the deadline alert: %s", scrub(str(error)))
        return {}


async def _send_deadline_alert(
    context: Mapping[str, Any], *, slack_conn_id: str | None, smtp_conn_id: str | None, to: list[str]
) -> dict[str, bool]:
    from airflow.sdk import BaseHook

    connections: dict[str, Any] = {}
    for channel, conn_id in (("slack", slack_conn_id), ("email", smtp_conn_id)):
        if not conn_id:
            continue
        try:
            connections[channel] = await BaseHook.aget_connection(conn_id)
        except Exception as error:
            _warn_unusable_connection(channel, conn_id, error)
            continue
        await _aregister_connection_secrets(connections[channel])
    if not connections:
        return {}

    alert = deadline_alert(context)
    delivered: dict[str, bool] = {}
    if "slack" in connections and slack_conn_id:
        delivered["slack"] = await _adeliver("slack", slack_conn_id, _slack_notifier(alert, slack_conn_id))
    if "email" in connections and smtp_conn_id:
        conn = connections["email"]
        from_variable = [] if to else await asyncio.to_thread(_recipients_from_variable)
        recipients = _email_recipients(to, conn, from_variable)
        if recipients:
            notifier = _email_notifier(alert, conn, smtp_conn_id, recipients)
            delivered["email"] = await _adeliver("email", smtp_conn_id, notifier)
        else:
            log.warning("apisync alert: no email recipients; deadline email not sent.")
            delivered["email"] = False
    return delivered


async def _adeliver(channel: str, conn_id: str, notifier: Any) -> bool:
    try:
        await asyncio.wait_for(notifier.async_notify({}), timeout=SEND_TIMEOUT_S * 2)
    except Exception as error:
        _warn_failed(channel, conn_id, error)
        return False
    log.info("apisync alert: %s deadline alert sent via connection %r", channel, conn_id)
    return True


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
    already an interval in the past, and for backfills far older). The callback runs in the
    triggerer, which must be able to import ``apisync`` (plugins folder).
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
