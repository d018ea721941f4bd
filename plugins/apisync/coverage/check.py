"""The coverage check: each sync stream's ledger, the repair where the stream opts in, one alert.

For every stream a sync DAG syncs (a :class:`StreamTarget`, found by the pipeline in the DAGs
folder), the check asks Airflow which runs are queued or running (their windows are in progress,
not missing) and whether the DAG is paused, reads the ledger, and, when the stream's spec says
``coverage: {repair: backfill}`` and the DAG is not paused, creates the repair backfill. Every stream
with a missing window is then named in one alert on the usual channels (Slack, email), with its
missing ranges, whether its DAG is paused, and what the repair did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from apisync.alerts.channels import DEFAULT_SLACK_CONN_ID, DEFAULT_SMTP_CONN_ID, alert_channels, send_alert
from apisync.alerts.message import Alert, error_first_line
from apisync.coverage.ledger import Ledger, Window, read_ledger
from apisync.coverage.repair import AirflowApi, RepairOutcome, repair_missing
from apisync.errors import AirflowApiError
from apisync.redaction import redact

__all__ = ["StreamCoverage", "StreamTarget", "assess_stream", "coverage_alert", "send_coverage_alert"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamTarget:
    """One stream of one sync DAG: its schedule, where its ``sync_runs`` are, and its repair switch."""

    dag_id: str
    stream: str
    timetable: Any
    start: datetime
    end: datetime | None
    grace: timedelta
    warehouse_conn_id: str
    repair: str = "none"
    max_backfill_windows: int = 168


@dataclass(frozen=True)
class StreamCoverage:
    target: StreamTarget
    ledger: Ledger
    paused: bool
    repair: RepairOutcome | None = None

    def describe(self) -> str:
        """The alert line: the ledger's summary, then paused and repair facts."""
        parts = [self.ledger.summary()]
        if self.paused:
            parts.append("DAG is paused")
        if self.repair is not None:
            parts.append(f"repair: {self.repair.describe()}")
        elif self.ledger.missing:
            parts.append("repair off (the spec's coverage.repair is 'none')")
        return " | ".join(parts)


def assess_stream(
    target: StreamTarget,
    *,
    engine: sa.Engine,
    now: datetime,
    api: AirflowApi,
    db_schema: str | None = None,
) -> StreamCoverage:
    """The stream's ledger, and the repair backfill if the stream opts in and its DAG is not paused."""
    paused = api.is_paused(target.dag_id)
    in_progress: Sequence[Window] = [(run.start, run.end) for run in api.active_runs(target.dag_id)]
    ledger = read_ledger(
        engine,
        target.stream,
        timetable=target.timetable,
        start=target.start,
        end=target.end,
        now=now,
        grace=target.grace,
        in_progress=in_progress,
        db_schema=db_schema,
    )
    repair = None
    if target.repair == "backfill" and ledger.missing:
        if paused:
            repair = RepairOutcome(target.dag_id, skipped="the DAG is paused (unpause it to repair)")
        else:
            try:
                repair = repair_missing(api, target.dag_id, ledger, max_windows=target.max_backfill_windows)
            except AirflowApiError as error:  # the alert must still go out, naming why
                log.warning("coverage repair of %s failed: %s", target.dag_id, redact(str(error)))
                repair = RepairOutcome(target.dag_id, skipped=f"repair failed: {error_first_line(error)}")
    return StreamCoverage(target, ledger, paused, repair)


def coverage_alert(coverages: Sequence[StreamCoverage]) -> Alert | None:
    """One alert naming every stream with missing windows; ``None`` when every due window is synced."""
    gaps = [c for c in coverages if c.ledger.missing]
    if not gaps:
        return None
    windows = sum(len(c.ledger.missing_windows()) for c in gaps)
    streams = len(gaps)
    title = (
        f"apisync: {windows} window{'s' if windows != 1 else ''} not synced "
        f"in {streams} stream{'s' if streams != 1 else ''}"
    )
    fields = tuple((c.target.dag_id, c.describe()) for c in gaps)
    return Alert(title=redact(title), fields=tuple((name, redact(value)) for name, value in fields))


def send_coverage_alert(
    coverages: Sequence[StreamCoverage],
    context: Mapping[str, Any],
    *,
    slack_conn_id: str | None = DEFAULT_SLACK_CONN_ID,
    smtp_conn_id: str | None = DEFAULT_SMTP_CONN_ID,
    to: Sequence[str] = (),
) -> dict[str, bool]:
    """Send the coverage alert, if there is a gap, on the alert channels; which delivered.

    A missing channel is a warning, never an error. The alert is built after the channels'
    passwords are registered for redaction, like every other alert.
    """
    if coverage_alert(coverages) is None:
        return {}
    channels = alert_channels(slack_conn_id=slack_conn_id, smtp_conn_id=smtp_conn_id, to=to)
    return send_alert(channels, lambda: cast("Alert", coverage_alert(coverages)), context)
