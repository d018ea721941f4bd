"""Per-stream run history from ``sync_runs``: the last run's numbers and a series for the charts.

``sync_runs`` holds one row per outcome of a window and slice: a window split into mapped slices
writes one row per slice, and a run cleared and run again writes a newer row for the same slice.
A :class:`RunPoint` is one DAG run of one stream: the newest row of each of its slices, counts
added up. Latency percentiles cannot be added up across slices, but the latency histograms behind
them can: when every slice's row has its ``latency_histogram`` (JSON log buckets), the run's
p50/p95 are the percentiles of the merged histogram (:mod:`apisync.http.latency`: all the run's
requests, at the buckets' resolution). Without it (an older warehouse lacks the column, an older
row has NULL) they fall back to the slowest slice's (the highest of the slices' values), an upper
bound that is exact for an unsliced stream. Columns missing from an older warehouse, or NULL in
older rows, are ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from apisync.coverage.ledger import SUCCESS_STATUS, as_utc
from apisync.http.latency import latency_percentile, merge_histograms
from apisync.load.audit import SYNC_RUNS_TABLE
from apisync.report.reflect import optional, reflected_table

__all__ = ["RunPoint", "StreamSummary", "read_runs", "recorded_streams", "stream_summaries"]

MAX_ERROR_CHARS = 300
# Rows read per run asked for: enough for every slice of a sliced stream and a few re-runs.
ROWS_PER_RUN = 16

_COUNTS = (
    "records_pulled",
    "records_inserted",
    "records_updated",
    "records_unchanged",
    "records_quarantined",
    "api_calls",
    "api_429s",
    "api_errors",
    "bytes_received",
)
_SECONDS = ("throttled_seconds", "backoff_seconds", "duration_seconds")
_LATENCIES = ("latency_p50_ms", "latency_p95_ms")
_OPTIONAL_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    **{name: sa.BigInteger() for name in _COUNTS},
    **{name: sa.Float() for name in (*_SECONDS, *_LATENCIES)},
    "status_counts": sa.Text(),
    "latency_histogram": sa.Text(),
    "error": sa.Text(),
}


@dataclass(frozen=True)
class RunPoint:
    """One DAG run of one stream, its slices' newest rows combined (see the module docstring)."""

    stream: str
    run_id: str
    status: str
    interval_start: datetime
    interval_end: datetime
    recorded_at: datetime
    slices: int = 1
    records_pulled: int | None = None
    records_inserted: int | None = None
    records_updated: int | None = None
    records_unchanged: int | None = None
    records_quarantined: int | None = None
    api_calls: int | None = None
    api_429s: int | None = None
    api_errors: int | None = None
    bytes_received: int | None = None
    throttled_seconds: float | None = None
    backoff_seconds: float | None = None
    duration_seconds: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    status_counts: dict[str, int] | None = None
    error: str | None = None

    @property
    def records_loaded(self) -> int | None:
        """Rows the load merged into the destination: inserted + updated + unchanged, as the
        ``apisync.records_loaded`` metric counts them — a rerun or replay of a window already
        loaded loads its rows again (unchanged), it does not load "0"."""
        parts = (self.records_inserted, self.records_updated, self.records_unchanged)
        if all(part is None for part in parts):
            return None
        return sum(part or 0 for part in parts)

    @property
    def error_rate(self) -> float | None:
        """``api_errors / api_calls`` (network errors and 4xx/5xx other than 429), when both are known."""
        if self.api_errors is None or not self.api_calls:
            return None
        return self.api_errors / self.api_calls

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: moments as ISO 8601 in UTC, the derived numbers included."""
        values: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("interval_start", "interval_end", "recorded_at"):
            values[name] = values[name].isoformat()
        values["records_loaded"] = self.records_loaded
        values["error_rate"] = self.error_rate
        return values


@dataclass(frozen=True)
class StreamSummary:
    """A stream's last run and its recent runs, oldest first (what the charts draw)."""

    stream: str
    runs: tuple[RunPoint, ...] = field(default_factory=tuple)

    @property
    def last(self) -> RunPoint | None:
        return self.runs[-1] if self.runs else None

    @property
    def failed_runs(self) -> int:
        return sum(1 for run in self.runs if run.status != SUCCESS_STATUS)


def _status_counts(text: Any) -> dict[str, int] | None:
    if text is None:
        return None
    try:
        parsed = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    return {str(key): int(value) for key, value in parsed.items() if isinstance(value, int | float)}


def _sum(values: Iterable[Any]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _max(values: Iterable[Any]) -> Any:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _histogram(text: Any) -> dict[str, int] | None:
    """A row's ``latency_histogram`` ({bucket: count}), or None when absent or not one."""
    counts = _status_counts(text)  # the same shape: a JSON object of counts
    if counts is None:
        return None
    try:
        return {str(int(bucket)): count for bucket, count in counts.items()}
    except ValueError:
        return None


def _latencies(rows: Sequence[Any]) -> tuple[float | None, float | None]:
    """p50/p95 of the rows' merged histograms; the highest of the rows' own values when a row has
    no histogram (the merge would leave its requests out)."""
    histograms = [_histogram(row.latency_histogram) for row in rows]
    if rows and all(h is not None for h in histograms):
        merged = merge_histograms(*histograms)
        if merged:
            return latency_percentile(merged, 0.5), latency_percentile(merged, 0.95)
    return _max(row.latency_p50_ms for row in rows), _max(row.latency_p95_ms for row in rows)


def _merged_counts(rows: Sequence[Any]) -> dict[str, int] | None:
    merged: dict[str, int] = {}
    seen = False
    for row in rows:
        counts = _status_counts(row.status_counts)
        if counts is not None:
            seen = True
            for key, value in counts.items():
                merged[key] = merged.get(key, 0) + value
    return merged if seen else None


def _first_line(error: str | None) -> str | None:
    if not error:
        return None
    line = error.strip().splitlines()[0] if error.strip() else ""
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


def _run_point(rows: Sequence[Any]) -> RunPoint:
    """One run from its rows, newest first: the newest row per slice, combined."""
    latest: dict[tuple[datetime, datetime], Any] = {}
    for row in rows:
        latest.setdefault((as_utc(row.interval_start), as_utc(row.interval_end)), row)
    slices = list(latest.values())
    failed = [row for row in slices if row.status != SUCCESS_STATUS]
    counts = {name: _sum(getattr(row, name) for row in slices) for name in (*_COUNTS, *_SECONDS)}
    # A run's duration is its slowest slice's (slices run side by side), not their sum.
    counts["duration_seconds"] = _max(row.duration_seconds for row in slices)
    p50, p95 = _latencies(slices)
    return RunPoint(
        stream=str(rows[0].stream),
        run_id=str(rows[0].run_id),
        status=str(failed[0].status) if failed else str(slices[0].status),
        interval_start=min(start for start, _ in latest),
        interval_end=max(end for _, end in latest),
        recorded_at=max(as_utc(row.recorded_at) for row in slices),
        slices=len(slices),
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        status_counts=_merged_counts(slices),
        error=_first_line(next((row.error for row in failed if row.error), None)),
        **counts,
    )


def read_runs(
    engine: sa.Engine, stream: str, *, db_schema: str | None = None, limit: int = 100
) -> list[RunPoint]:
    """The stream's ``limit`` most recent runs, oldest first; none when ``sync_runs`` is not there."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    table = reflected_table(engine, SYNC_RUNS_TABLE, db_schema)
    if table is None:
        return []
    columns = [
        table.c.id,
        table.c.stream,
        table.c.run_id,
        table.c.status,
        table.c.interval_start,
        table.c.interval_end,
        table.c.recorded_at,
        *(optional(table, name, type_) for name, type_ in _OPTIONAL_TYPES.items()),
    ]
    query = (
        sa.select(*columns)
        .where(table.c.stream == stream)
        .order_by(table.c.recorded_at.desc(), table.c.id.desc())
        .limit(limit * ROWS_PER_RUN)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    by_run: dict[str, list[Any]] = {}
    for row in rows:  # newest first, so each run's first row is its newest
        by_run.setdefault(str(row.run_id), []).append(row)
    runs = [_run_point(run_rows) for run_rows in list(by_run.values())[:limit]]
    return sorted(runs, key=lambda run: (run.recorded_at, run.interval_start))


def recorded_streams(engine: sa.Engine, *, db_schema: str | None = None) -> list[str]:
    """Every stream with at least one ``sync_runs`` row."""
    table = reflected_table(engine, SYNC_RUNS_TABLE, db_schema)
    if table is None:
        return []
    with engine.connect() as conn:
        return [str(s) for s in conn.execute(sa.select(table.c.stream).distinct()).scalars()]


def stream_summaries(
    engine: sa.Engine,
    *,
    db_schema: str | None = None,
    streams: Sequence[str] = (),
    limit: int = 100,
) -> list[StreamSummary]:
    """One summary per stream: ``streams`` (also those without a run yet) and every recorded one."""
    names = sorted({*streams, *recorded_streams(engine, db_schema=db_schema)})
    return [
        StreamSummary(name, tuple(read_runs(engine, name, db_schema=db_schema, limit=limit)))
        for name in names
    ]
