"""A stream's interval coverage for display: the ledger's windows counted and merged per state.

The ledger (:mod:`apisync.coverage.ledger`) is the one definition of synced / failed / never ran /
in progress / not due; this reads it for one stream target (its DAG's timetable and start) and
turns it into what a bar and a list can show: counts per state and the merged ranges of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from apisync.coverage.check import StreamTarget
from apisync.coverage.ledger import Ledger, Window, WindowState, read_ledger

__all__ = ["IntervalCoverage", "Segment", "interval_coverage"]


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


def interval_coverage(
    engine: sa.Engine,
    target: StreamTarget,
    *,
    now: datetime,
    in_progress: Sequence[Window] = (),
    db_schema: str | None = None,
) -> IntervalCoverage:
    """The ledger of ``target`` up to ``now`` (windows of queued/running runs are ``in_progress``)."""
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
    return IntervalCoverage(target.stream, target.dag_id, ledger)
