"""The interval ledger of one stream: every window of its schedule, and whether it was synced.

Airflow knows which DAG runs exist, not which windows of data arrived: a backfill that moves the
scheduler past forty intervals, ``catchup=False``, a pause, a run marked success by hand or a failed
run nobody cleared all leave windows that never got data, and nothing says so. ``sync_runs`` (one
row per attempt and slice) is the source of truth for what did arrive:

- a window is **synced** when successful rows cover it entirely (mapped slices each write a row
  with their own slice), even if a later attempt failed;
- **failed** when rows touch it but the successful ones do not cover it;
- **never ran** when no row touches it (a run marked success by hand wrote none);
- **in progress** when a queued or running DAG run holds it, **not due** while it is younger than
  one interval plus the grace (the deadline), so a run that is merely late is not yet missing.

The expected windows come from the DAG's own timetable (``next_dagrun_info`` with a
``TimeRestriction``), so a cron, a delta or a custom timetable are read the same way Airflow reads them.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from apisync.load.audit import SYNC_RUNS_TABLE, sync_runs_table

__all__ = [
    "SUCCESS_STATUS",
    "Attempt",
    "Ledger",
    "LedgerWindow",
    "Window",
    "WindowState",
    "as_utc",
    "build_ledger",
    "expected_windows",
    "format_range",
    "merge_ranges",
    "read_attempts",
    "read_ledger",
]

SUCCESS_STATUS = "success"
MAX_LISTED_RANGES = 10

Window = tuple[datetime, datetime]
"""A half-open interval ``[start, end)`` in UTC."""


class WindowState(enum.Enum):
    SYNCED = "synced"
    FAILED = "failed"
    NEVER_RAN = "never ran"
    IN_PROGRESS = "in progress"
    NOT_DUE = "not due"


MISSING_STATES = (WindowState.FAILED, WindowState.NEVER_RAN)


@dataclass(frozen=True)
class Attempt:
    """One ``sync_runs`` row, reduced to what the ledger needs."""

    start: datetime
    end: datetime
    status: str


@dataclass(frozen=True)
class LedgerWindow:
    start: datetime
    end: datetime
    state: WindowState


@dataclass(frozen=True)
class Ledger:
    """Every expected window of one stream with its state, oldest first."""

    stream: str
    windows: tuple[LedgerWindow, ...]

    @property
    def expected(self) -> int:
        """Windows that should be synced by now (the ones not yet due are not counted)."""
        return sum(1 for w in self.windows if w.state is not WindowState.NOT_DUE)

    def count(self, state: WindowState) -> int:
        return sum(1 for w in self.windows if w.state is state)

    def ranges(self, *states: WindowState) -> list[Window]:
        """The windows in ``states``, adjacent ones merged: ``[(start, end), ...]``."""
        return merge_ranges((w.start, w.end) for w in self.windows if w.state in states)

    @property
    def missing(self) -> list[Window]:
        """Ranges that failed or never ran: what an alert names and a repair backfills."""
        return self.ranges(*MISSING_STATES)

    def missing_windows(self) -> list[LedgerWindow]:
        return [w for w in self.windows if w.state in MISSING_STATES]

    def summary(self) -> str:
        """``orders: 41 windows never ran, 2026-01-06T03:00Z → 2026-01-07T20:00Z`` (or all synced)."""
        parts = []
        for state in MISSING_STATES:
            count = self.count(state)
            if count:
                noun = "window" if count == 1 else "windows"
                parts.append(f"{count} {noun} {state.value}, {_listed(self.ranges(state))}")
        if not parts:
            return f"{self.stream}: {self.count(WindowState.SYNCED)}/{self.expected} windows synced"
        return f"{self.stream}: " + "; ".join(parts)


def format_range(window: Window) -> str:
    return f"{_stamp(window[0])} → {_stamp(window[1])}"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _listed(ranges: Sequence[Window]) -> str:
    listed = ", ".join(format_range(r) for r in ranges[:MAX_LISTED_RANGES])
    more = len(ranges) - MAX_LISTED_RANGES
    return f"{listed} and {more} more ranges" if more > 0 else listed


def merge_ranges(windows: Iterable[Window]) -> list[Window]:
    """Sort and merge overlapping or touching intervals."""
    merged: list[list[datetime]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def as_utc(moment: Any) -> datetime:
    """An aware UTC stdlib datetime (SQLite hands back naive UTC; pendulum gives its own type)."""
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, got {moment!r}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(moment.timestamp(), UTC)


def _core_timetable(timetable: Any) -> Any:
    """The scheduler's timetable object for a DAG's SDK timetable (the one with ``next_dagrun_info``)."""
    if hasattr(timetable, "next_dagrun_info"):
        return timetable
    # What the dag-processor does when it serializes a DAG; Airflow has no public name for it yet.
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(timetable)


def expected_windows(
    timetable: Any, *, start: datetime, end: datetime | None, until: datetime
) -> list[Window]:
    """The data intervals the timetable schedules from ``start`` (to ``end``, inclusive as in
    Airflow), whose interval has ended by ``until``."""
    import pendulum
    from airflow.timetables.base import TimeRestriction

    core = _core_timetable(timetable)
    # The core timetables compute with pendulum's DateTime (``in_timezone``), as the scheduler does.
    restriction = TimeRestriction(
        earliest=pendulum.instance(as_utc(start)),
        latest=pendulum.instance(as_utc(end)) if end is not None else None,
        catchup=True,
    )
    windows: list[Window] = []
    last = None
    while True:
        info = core.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None or info.data_interval is None:
            break
        window = (as_utc(info.data_interval.start), as_utc(info.data_interval.end))
        if window[1] > until or (windows and window[0] <= windows[-1][0]):
            break
        windows.append(window)
        last = info.data_interval
    return windows


def read_attempts(
    engine: sa.Engine,
    stream: str,
    *,
    since: datetime,
    until: datetime,
    db_schema: str | None = None,
) -> list[Attempt]:
    """The stream's ``sync_runs`` rows touching ``[since, until)``; none when the table is not there yet."""
    if not sa.inspect(engine).has_table(SYNC_RUNS_TABLE, schema=db_schema):
        return []
    runs = sync_runs_table(db_schema)
    query = sa.select(runs.c.interval_start, runs.c.interval_end, runs.c.status).where(
        runs.c.stream == stream,
        runs.c.interval_end > since.astimezone(UTC),
        runs.c.interval_start < until.astimezone(UTC),
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [Attempt(as_utc(row.interval_start), as_utc(row.interval_end), str(row.status)) for row in rows]


class _Cover:
    """Disjoint sorted ranges, asked whether they cover or touch a window (bisect, not a scan)."""

    def __init__(self, windows: Iterable[Window]) -> None:
        self._ranges = merge_ranges(windows)
        self._starts = [start for start, _ in self._ranges]

    def _before(self, moment: datetime, *, inclusive: bool) -> Window | None:
        index = (bisect.bisect_right if inclusive else bisect.bisect_left)(self._starts, moment) - 1
        return self._ranges[index] if index >= 0 else None

    def covers(self, window: Window) -> bool:
        found = self._before(window[0], inclusive=True)
        return found is not None and found[1] >= window[1]

    def touches(self, window: Window) -> bool:
        found = self._before(window[1], inclusive=False)
        return found is not None and found[1] > window[0]


def build_ledger(
    stream: str,
    windows: Sequence[Window],
    attempts: Sequence[Attempt],
    *,
    now: datetime,
    grace: timedelta,
    in_progress: Sequence[Window] = (),
) -> Ledger:
    """Each expected window's state from the attempts, the runs in progress and the clock."""
    synced = _Cover((a.start, a.end) for a in attempts if a.status == SUCCESS_STATUS)
    attempted = _Cover((a.start, a.end) for a in attempts)
    running = _Cover(in_progress)
    states = []
    for window in windows:
        if synced.covers(window):
            state = WindowState.SYNCED
        elif running.touches(window):
            state = WindowState.IN_PROGRESS
        elif window[1] + (window[1] - window[0]) + grace > now:
            state = WindowState.NOT_DUE
        elif attempted.touches(window):
            state = WindowState.FAILED
        else:
            state = WindowState.NEVER_RAN
        states.append(LedgerWindow(window[0], window[1], state))
    return Ledger(stream, tuple(states))


def read_ledger(
    engine: sa.Engine,
    stream: str,
    *,
    timetable: Any,
    start: datetime,
    end: datetime | None,
    now: datetime,
    grace: timedelta,
    in_progress: Sequence[Window] = (),
    db_schema: str | None = None,
) -> Ledger:
    """The stream's ledger from its DAG's schedule (``start``..``end``) and its ``sync_runs`` rows."""
    windows = expected_windows(timetable, start=start, end=end, until=now)
    if not windows:
        return Ledger(stream, ())
    attempts = read_attempts(engine, stream, since=windows[0][0], until=windows[-1][1], db_schema=db_schema)
    return build_ledger(stream, windows, attempts, now=now, grace=grace, in_progress=in_progress)
