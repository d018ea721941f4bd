"""A test alert on every configured channel, and per channel whether it arrived and why not.

The same channels, connections and provider notifiers as a real failure alert
(:mod:`.channels`), so a test that went through proves the failure alert would too: the
connection loads, the password is accepted, the server takes the message. Why a channel did not
deliver is the error's first line, redacted (a missing connection, a refused connection, a
rejected login, an HTTP error from the webhook, no email recipients).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apisync.alerts.channels import (
    DEFAULT_SLACK_CONN_ID,
    DEFAULT_SMTP_CONN_ID,
    Channel,
    alert_channels,
)
from apisync.alerts.message import Alert
from apisync.redaction import redact

__all__ = ["ChannelCheck", "probe_alert", "send_test_alert"]


@dataclass(frozen=True)
class ChannelCheck:
    """One channel's outcome: ``problem`` is ``""`` when the test message was delivered."""

    channel: str
    conn_id: str
    problem: str = ""

    @property
    def delivered(self) -> bool:
        return not self.problem


def probe_alert(now: datetime | None = None) -> Alert:
    """The test message: says it is a test, from which host and when, and that nothing failed."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return Alert(
        title="apisync test alert: this channel works",
        fields=(
            ("Sent by", redact(f"python -m apisync test-alert on {socket.gethostname()}")),
            ("Sent at", moment.strftime("%Y-%m-%dT%H:%M:%SZ")),
            ("Meaning", "nothing failed; failure, deadline and coverage alerts arrive here the same way"),
        ),
    )


def send_test_alert(
    channels: Sequence[Channel] | None = None, context: Mapping[str, Any] | None = None
) -> list[ChannelCheck]:
    """Send :func:`probe_alert` on each channel (default: the ``slack_alerts`` and ``smtp_alerts``
    channels every sync DAG alerts on); one :class:`ChannelCheck` per channel, in order."""
    if channels is None:
        channels = alert_channels(slack_conn_id=DEFAULT_SLACK_CONN_ID, smtp_conn_id=DEFAULT_SMTP_CONN_ID)
    loaded = [(channel, *channel.load()) for channel in channels]
    # Built once every loadable connection's password is registered, like every other alert.
    alert = probe_alert()
    checks = []
    for channel, conn, problem in loaded:
        if conn is not None:
            problem = channel.deliver(alert, conn, context or {})
        checks.append(ChannelCheck(channel.name, channel.conn_id, problem))
    return checks
