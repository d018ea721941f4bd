"""A stream's interval coverage for display: the ledger's windows counted and merged per state.

The ledger (:mod:`apisync.coverage.ledger`) is the one definition of synced / failed / never ran /
in progress / not due; this reads it for one stream target (its DAG's timetable and start) and
turns it into what a bar and a list can show: counts per state and the merged ranges of each.

Walking a timetable is slow (an hourly DAG since January is 8,000 cron steps, seconds of CPU), and
a page asks for every stream's ledger on each load. So the expected windows are kept per target
(DAG, stream, start, end, schedule) and only the windows that ended since are computed again.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from apisync.coverage.check import StreamTarget
from apisync.coverage.ledger import (
    Ledger,
    Window,
    WindowState,
    as_utc,
    build_ledger,
    expected_windows,
    read_attempts,
)

__all__ = ["IntervalCoverage", "Segment", "cached_expected_windows", "interval_coverage"]


@dataclass(frozen=True)
class Segment:
    """Adjacent windows in one state: one stretch of the coverage bar."""

    state: WindowState
    start: datetime
    end: datetime
    windows: int


@dataclass(frozen=True)
class IntervalCoverage:
    stream: str
    dag_id: str
    ledger: Ledger

    @property
    def counts(self) -> dict[str, int]:
        """Windows per state, every state named (zero included)."""
        return {state.value: self.ledger.count(state) for state in WindowState}

    @property
    def missing(self) -> list[Window]:
        """Failed and never-ran windows, merged: what "Backfill gaps" backfills."""
        return self.ledger.missing

    def segments(self) -> list[Segment]:
        """The windows in time order, adjacent windows of one state run together."""
        segments: list[Segment] = []
        for window in self.ledger.windows:
            last = segments[-1] if segments else None
            if last is not None and last.state is window.state and last.end == window.start:
                segments[-1] = Segment(last.state, last.start, window.end, last.windows + 1)
            else:
                segments.append(Segment(window.state, window.start, window.end, 1))
        return segments

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "dag_id": self.dag_id,
            "expected": self.ledger.expected,
            "counts": self.counts,
            "missing": [[start.isoformat(), end.isoformat()] for start, end in self.missing],
            "segments": [
                {
                    "state": s.state.value,
                    "start": s.start.isoformat(),
                    "end": s.end.isoformat(),
                    "windows": s.windows,
                }
                for s in self.segments()
            ],
            "summary": self.ledger.summary(),
        }


_windows_lock = threading.Lock()
_windows: dict[tuple[Any, ...], list[Window]] = {}


def _target_key(target: StreamTarget) -> tuple[Any, ...]:
    timetable = target.timetable
    schedule = getattr(timetable, "summary", None) or repr(timetable)
    return (target.dag_id, target.stream, target.start, target.end, type(timetable).__name__, schedule)


def cached_expected_windows(target: StreamTarget, *, until: datetime) -> list[Window]:
    """:func:`~apisync.coverage.ledger.expected_windows` of the target up to ``until``, extending
    the windows computed before instead of walking the timetable from its start again."""
    key = _target_key(target)
    with _windows_lock:
        known = list(_windows.get(key, ()))
    if known and known[-1][1] > until:  # asked about an earlier moment: compute it afresh
        known = []
    if known:
        after = known[-1][1]
        more = expected_windows(target.timetable, start=after, end=target.end, until=until)
        known.extend(w for w in more if w[0] >= after)
    else:
        known = expected_windows(target.timetable, start=target.start, end=target.end, until=until)
    with _windows_lock:
        _windows[key] = known
    return list(known)


def interval_coverage(
    engine: sa.Engine,
    target: StreamTarget,
    *,
    now: datetime,
    in_progress: Sequence[Window] = (),
    db_schema: str | None = None,
) -> IntervalCoverage:
    """The ledger of ``target`` up to ``now`` (windows of queued/running runs are ``in_progress``),
    exactly as :func:`~apisync.coverage.ledger.read_ledger` builds it."""
    now = as_utc(now)
    windows = cached_expected_windows(target, until=now)
    if not windows:
        return IntervalCoverage(target.stream, target.dag_id, Ledger(target.stream, ()))
    attempts = read_attempts(
        engine, target.stream, since=windows[0][0], until=windows[-1][1], db_schema=db_schema
    )
    ledger = build_ledger(
        target.stream, windows, attempts, now=now, grace=target.grace, in_progress=in_progress
    )
    return IntervalCoverage(target.stream, target.dag_id, ledger)
