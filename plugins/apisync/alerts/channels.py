"""The ways out for an alert: one sender per channel around the provider's notifier, the same code for
the task failure callback (in the task process) and the deadline callback (in the triggerer).

A channel does the part the providers leave to us: load its connection and register the password
with :mod:`apisync.redaction` *before* the message is built, turn a missing or broken connection
into a WARNING naming the channel and conn id, and never raise, so the other channel still goes
out. The transport is the provider notifier's ``notify``.

The deadline callback runs :func:`send_alert` in a worker thread rather than through a second,
async copy of it: Airflow 3.3's triggerer serves sync SDK calls (connections, Variables, secret
masking) from worker threads by bridging them to its event loop, and the thread keeps the loop free.

Provider modules are imported when a notifier is built, never at import time.
"""

from __future__ import annotations

import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, cast

from apisync.alerts.message import Alert, error_first_line
from apisync.redaction import redact, register_secret

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier, Connection, Context

__all__ = [
    "ALERT_EMAILS_VARIABLE",
    "DEFAULT_FROM_EMAIL",
    "DEFAULT_SLACK_CONN_ID",
    "DEFAULT_SMTP_CONN_ID",
    "SEND_TIMEOUT_S",
    "Channel",
    "EmailChannel",
    "SlackChannel",
    "alert_channels",
    "send_alert",
]

# One logger for the whole package: operators (and tests) filter on "apisync.alerts".
log = logging.getLogger("apisync.alerts")

DEFAULT_SLACK_CONN_ID = "slack_alerts"
DEFAULT_SMTP_CONN_ID = "smtp_alerts"
ALERT_EMAILS_VARIABLE = "apisync_alert_emails"
DEFAULT_FROM_EMAIL = "apisync-alerts@localhost"
SEND_TIMEOUT_S = 30  # Slack; SMTP takes its timeout from the connection extra "timeout"


@dataclass(frozen=True)
class Channel(ABC):
    """One channel: a connection id and the provider notifier that carries an :class:`Alert`."""

    name: ClassVar[str]
    conn_id: str

    @abstractmethod
    def notifier(self, alert: Alert, conn: Connection) -> BaseNotifier | None:
        """The provider notifier for ``alert``, or ``None`` (after a warning) if it cannot be sent."""

    def connect(self) -> Connection | None:
        """The channel's connection with its password registered for redaction, or ``None``."""
        return self.load()[0]

    def load(self) -> tuple[Connection | None, str]:
        """:meth:`connect`, with why not (redacted) when there is no usable connection."""
        from airflow.sdk import BaseHook

        try:
            conn = BaseHook.get_connection(self.conn_id)
        except Exception as error:
            self._warn_unusable(error)
            return None, self._unusable_reason(error)
        register_secret(conn.password)
        return conn, ""

    def send(self, alert: Alert, conn: Connection, context: Mapping[str, Any]) -> bool:
        """Send through the provider's ``notify``; whether it was delivered. Never raises."""
        return not self.deliver(alert, conn, context)

    def deliver(self, alert: Alert, conn: Connection, context: Mapping[str, Any]) -> str:
        """:meth:`send`, returning ``""`` when delivered, else why not (redacted). Never raises."""
        try:
            notifier = self.notifier(alert, conn)
            if notifier is None:
                return self.unsendable_reason(conn)
            notifier.notify(cast("Context", context))
        except Exception as error:
            self._failed(error)
            return redact(error_first_line(error))
        self._sent()
        return ""

    def unsendable_reason(self, conn: Connection) -> str:
        """Why :meth:`notifier` gave no notifier for ``conn``."""
        return f"{self.name} connection {self.conn_id!r} cannot carry an alert"

    def _unusable_reason(self, error: BaseException) -> str:
        if _is_missing_connection(error):
            return (
                f"connection {self.conn_id!r} is not defined (add it, or env var "
                f"AIRFLOW_CONN_{self.conn_id.upper()})"
            )
        return f"connection {self.conn_id!r} could not be loaded: {redact(error_first_line(error))}"

    def _warn_unusable(self, error: BaseException) -> None:
        """A missing or broken alert connection costs this channel only, and says so at run time."""
        if not _is_missing_connection(error):
            log.warning(
                "apisync alert: %s connection %r could not be loaded (%s); %s alert not sent.",
                self.name,
                self.conn_id,
                redact(error_first_line(error)),
                self.name,
            )
            return
        log.warning(
            "apisync alert: %s connection %r is not defined; %s alert not sent. "
            "Add the connection (or env var AIRFLOW_CONN_%s, valid JSON or URI) to receive it.",
            self.name,
            self.conn_id,
            self.name,
            self.conn_id.upper(),
        )

    def _failed(self, error: BaseException) -> bool:
        log.warning(
            "apisync alert: sending the %s alert via connection %r failed: %s",
            self.name,
            self.conn_id,
            redact(error_first_line(error)),
        )
        return False

    def _sent(self) -> bool:
        log.info("apisync alert: %s alert sent via connection %r", self.name, self.conn_id)
        return True


@dataclass(frozen=True)
class SlackChannel(Channel):
    """A ``slackwebhook`` connection (webhook token in the password) and ``SlackWebhookNotifier``."""

    name: ClassVar[str] = "slack"

    def notifier(self, alert: Alert, conn: Connection) -> BaseNotifier | None:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        # notify() renders no templates: text with "{{" goes out as it is.
        return SlackWebhookNotifier(
            slack_webhook_conn_id=self.conn_id, text=alert.as_slack(), timeout=SEND_TIMEOUT_S
        )


@dataclass(frozen=True)
class EmailChannel(Channel):
    """An ``smtp`` connection and ``SmtpNotifier``.

    Recipients: ``to``, else the Variable ``apisync_alert_emails``, else the connection extra
    ``"to"`` (a list or a comma-separated string). Sender: extra ``from_email``, else
    ``apisync-alerts@localhost``.
    """

    name: ClassVar[str] = "email"
    to: tuple[str, ...] = field(default_factory=tuple)

    def notifier(self, alert: Alert, conn: Connection) -> BaseNotifier | None:
        to = self.recipients(conn)
        if not to:
            log.warning(
                "apisync alert: no email recipients (set Variable %r or extra 'to' on connection %r); "
                "email alert not sent.",
                ALERT_EMAILS_VARIABLE,
                self.conn_id,
            )
            return None
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        # Every templated field is set, so the notifier renders nothing: error text that happens to
        # contain "{{" is sent as it is instead of being evaluated as Jinja.
        return SmtpNotifier(
            to=to,
            from_email=conn.extra_dejson.get("from_email") or DEFAULT_FROM_EMAIL,
            subject=alert.title,
            html_content=alert.as_html(),
            smtp_conn_id=self.conn_id,
        )

    def unsendable_reason(self, conn: Connection) -> str:
        return (
            f"no email recipients (set Variable {ALERT_EMAILS_VARIABLE!r} or extra 'to' on "
            f"connection {self.conn_id!r})"
        )

    def recipients(self, conn: Connection) -> list[str]:
        if self.to:
            return list(self.to)
        return _recipients_from_variable() or _parse_recipients(conn.extra_dejson.get("to"))


def alert_channels(
    *, slack_conn_id: str | None, smtp_conn_id: str | None, to: Sequence[str] = ()
) -> list[Channel]:
    """The configured channels; a ``None`` conn id disables that channel."""
    channels: list[Channel] = []
    if slack_conn_id:
        channels.append(SlackChannel(slack_conn_id))
    if smtp_conn_id:
        channels.append(EmailChannel(smtp_conn_id, to=tuple(to)))
    return channels


def send_alert(
    channels: Sequence[Channel], build_alert: Callable[[], Alert], context: Mapping[str, Any]
) -> dict[str, bool]:
    """Send one alert on every channel whose connection loads; which channels delivered."""
    connected = [(channel, conn) for channel in channels if (conn := channel.connect()) is not None]
    if not connected:
        return {}
    # Built once every connection's password is registered, so none can appear in the text.
    alert = build_alert()
    return {channel.name: channel.send(alert, conn, context) for channel, conn in connected}


def _is_missing_connection(error: BaseException) -> bool:
    from airflow.sdk.exceptions import AirflowNotFoundException, AirflowRuntimeError, ErrorType

    if isinstance(error, AirflowNotFoundException):
        return True
    return isinstance(error, AirflowRuntimeError) and error.error.error == ErrorType.CONNECTION_NOT_FOUND


def _recipients_from_variable() -> list[str]:
    from airflow.sdk import Variable

    try:
        return _parse_recipients(Variable.get(ALERT_EMAILS_VARIABLE, default=None))
    except Exception as error:  # a Variable backend hiccup must not cost the alert
        log.warning(
            "apisync alert: could not read Variable %r: %s", ALERT_EMAILS_VARIABLE, redact(str(error))
        )
        return []


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
