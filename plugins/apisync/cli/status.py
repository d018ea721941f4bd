"""``python -m apisync status``: each stream's last run and coverage, the numbers of the Syncs view.

Per sync stream of the DAGs folder (and every other stream ``sync_runs`` records): the last run's
time, status and window, rows pulled / loaded (merged) / quarantined, API calls,
429s, seconds throttled, p50/p95 request latency, error rate, failed runs among the recent ones,
and the coverage counts (synced / failed / never ran). Read with :mod:`apisync.report`, which the
Syncs view reads with too. The warehouse is each stream DAG's own; streams without a DAG are looked
for in ``--warehouse`` (default ``warehouse_default``). Coverage without Airflow's REST API knows
no runs in progress: a window of a running run counts as failed or never ran until it ends.

Exit code 0 when every stream's last run succeeded and no window is missing, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apisync.cli.output import MISSING, print_error, print_table
from apisync.load.connection import DEFAULT_WAREHOUSE_CONN_ID
from apisync.redaction import redact

__all__ = ["HEADERS", "StreamStatus", "collect_status", "register", "run_status"]

HEADERS = (
    "stream",
    "dag",
    "last run",
    "status",
    "window",
    "pulled",
    "loaded",
    "quarantined",
    "api calls",
    "429s",
    "throttled s",
    "p50 ms",
    "p95 ms",
    "error rate",
    "failed runs",
    "synced",
    "failed",
    "never ran",
)


@dataclass(frozen=True)
class StreamStatus:
    stream: str
    dag_id: str | None
    last: Any  # apisync.report.runs.RunPoint | None
    runs: int
    failed_runs: int
    coverage: dict[str, int] | None
    problem: str | None = None

    @property
    def healthy(self) -> bool:
        if self.problem is not None:
            return False
        last_ok = self.last is None or self.last.status == "success"
        coverage = self.coverage or {}
        missing = coverage.get("failed", 0) + coverage.get("never ran", 0) > 0
        return last_ok and not missing

    def row(self) -> list[str]:
        last = self.last

        def number(value: Any, digits: int | None = None) -> str:
            if value is None:
                return MISSING
            return f"{value:.{digits}f}" if digits is not None else f"{value:,}"

        def stamp(moment: datetime) -> str:
            return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")

        coverage = self.coverage or {}
        return [
            self.stream,
            self.dag_id or MISSING,
            stamp(last.recorded_at) if last else MISSING,
            (last.status if last else "never ran") + (f" ({self.problem})" if self.problem else ""),
            f"{stamp(last.interval_start)} → {stamp(last.interval_end)}" if last else MISSING,
            number(last.records_pulled) if last else MISSING,
            number(last.records_loaded) if last else MISSING,
            number(last.records_quarantined) if last else MISSING,
            number(last.api_calls) if last else MISSING,
            number(last.api_429s) if last else MISSING,
            number(last.throttled_seconds, 1) if last else MISSING,
            number(last.latency_p50_ms, 0) if last else MISSING,
            number(last.latency_p95_ms, 0) if last else MISSING,
            f"{100 * last.error_rate:.1f}%" if last and last.error_rate is not None else MISSING,
            f"{self.failed_runs}/{self.runs}",
            *(
                str(coverage[key]) if key in coverage else MISSING
                for key in ("synced", "failed", "never ran")
            ),
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "dag_id": self.dag_id,
            "last_run": self.last.as_dict() if self.last else None,
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "coverage": self.coverage,
            "problem": self.problem,
        }


def collect_status(
    *, warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN_ID, streams: Sequence[str] = (), recent: int = 100
) -> list[StreamStatus]:
    """Every stream's status (only ``streams`` when given), sorted by name."""
    from apisync.load.connection import warehouse_from_connection
    from apisync.pipeline.coverage import find_sync_streams
    from apisync.report.intervals import interval_coverage
    from apisync.report.runs import stream_summaries

    found, _errors = find_sync_streams()
    now = datetime.now(UTC)
    by_conn: dict[str, list[Any]] = {warehouse_conn_id: []}
    for sync in found:
        by_conn.setdefault(sync.target.warehouse_conn_id, []).append(sync)
    known = {s.target.stream for s in found}
    result: list[StreamStatus] = []
    for conn_id, members in sorted(by_conn.items()):
        try:
            warehouse = warehouse_from_connection(conn_id)
        except Exception as error:  # one warehouse that cannot be read must not hide the others
            problem = f"warehouse {conn_id}: {redact(str(error)).splitlines()[0]}"
            result.extend(
                StreamStatus(m.target.stream, m.target.dag_id, None, 0, 0, None, problem) for m in members
            )
            continue
        try:
            names = [m.target.stream for m in members]
            for summary in stream_summaries(
                warehouse.engine, db_schema=warehouse.db_schema, streams=names, limit=recent
            ):
                member = next((m for m in members if m.target.stream == summary.stream), None)
                if member is None and (conn_id != warehouse_conn_id or summary.stream in known):
                    continue  # recorded here, but its DAG writes to another warehouse
                coverage = None
                if member is not None:
                    coverage = interval_coverage(
                        warehouse.engine, member.target, now=now, db_schema=warehouse.db_schema
                    ).counts
                result.append(
                    StreamStatus(
                        summary.stream,
                        member.target.dag_id if member else None,
                        summary.last,
                        len(summary.runs),
                        summary.failed_runs,
                        coverage,
                    )
                )
        finally:
            warehouse.engine.dispose()
    if streams:
        result = [s for s in result if s.stream in streams]
    return sorted(result, key=lambda s: s.stream)


def run_status(args: argparse.Namespace) -> int:
    """The ``status`` command: a table (or ``--json``); 1 when a stream needs attention."""
    # Airflow logs to stdout (DagBag's "Filling up the DagBag ..."): stdout is the table or the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        statuses = collect_status(
            warehouse_conn_id=args.warehouse, streams=args.stream or (), recent=args.recent
        )
    missing = sorted(set(args.stream or ()) - {s.stream for s in statuses})
    if missing:
        print_error(f"no such stream: {', '.join(missing)}")
        return 2
    if args.json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        print_table(None, HEADERS, [s.row() for s in statuses])
    return 0 if all(s.healthy for s in statuses) else 1


def register(subparsers: Any) -> None:
    """Add ``status`` to the CLI (CONTRACT item 5)."""
    parser = subparsers.add_parser(
        "status",
        help="each stream's last run and coverage (the Syncs view's numbers)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("stream", nargs="*", help="only these streams (default: every stream)")
    parser.add_argument(
        "--warehouse",
        default=DEFAULT_WAREHOUSE_CONN_ID,
        help="warehouse connection of streams no DAG syncs any more (default: %(default)s)",
    )
    parser.add_argument(
        "--recent", type=int, default=100, help="runs counted in 'failed runs' (default: 100)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_status)
