"""``gaps [STREAM]``: the interval ledger of each sync stream, the windows never ran or failed.

Reads the ledger exactly as the ``sync_coverage`` check does (:func:`apisync.coverage.assess_stream`:
the DAG's schedule, ``sync_runs``, the runs Airflow has queued or running), but never repairs:
the command only looks. Exit code 1 when a stream has a missing window.
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime
from typing import Any

from apisync.cli.output import print_error, print_table
from apisync.cli.targets import UnknownStreamError, connect_api, pick_target, sync_targets_of_dags_folder
from apisync.coverage import DEFAULT_API_CONN_ID
from apisync.coverage.ledger import MISSING_STATES, WindowState
from apisync.errors import ApisyncError

__all__ = ["register", "run_gaps"]

STAMP = "%Y-%m-%dT%H:%MZ"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "gaps",
        help="windows of each stream that never ran or failed (the coverage ledger)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stream", nargs="?", help="one stream (default: every sync stream)")
    parser.add_argument("--dag", dest="dag_id", help="the DAG, when several sync the stream")
    parser.add_argument("--api-conn-id", default=DEFAULT_API_CONN_ID, help="Airflow REST API connection")
    parser.set_defaults(func=run_gaps)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP)


def run_gaps(args: argparse.Namespace) -> int:
    from apisync.coverage.check import assess_stream
    from apisync.load import warehouse_from_connection

    targets = sync_targets_of_dags_folder()
    try:
        if args.stream:
            targets = [pick_target(targets, args.stream, args.dag_id)]
    except UnknownStreamError as error:
        print_error(str(error))
        return 2
    now = datetime.now(UTC)
    try:
        api = connect_api(args.api_conn_id)
        warehouses: dict[str, Any] = {}
        coverages = []
        for target in targets:
            if target.warehouse_conn_id not in warehouses:
                warehouses[target.warehouse_conn_id] = warehouse_from_connection(target.warehouse_conn_id)
            warehouse = warehouses[target.warehouse_conn_id]
            looked_at = dataclasses.replace(target, repair="none")  # gaps only looks
            coverages.append(
                assess_stream(
                    looked_at, engine=warehouse.engine, now=now, api=api, db_schema=warehouse.db_schema
                )
            )
    except ApisyncError as error:
        print_error(str(error))
        return 1
    print_table(
        f"coverage at {_stamp(now)}",
        ["stream", "dag", "expected", "synced", "failed", "never ran", "in progress", "paused"],
        (
            [
                c.target.stream,
                c.target.dag_id,
                c.ledger.expected,
                c.ledger.count(WindowState.SYNCED),
                c.ledger.count(WindowState.FAILED),
                c.ledger.count(WindowState.NEVER_RAN),
                c.ledger.count(WindowState.IN_PROGRESS),
                "yes" if c.paused else "no",
            ]
            for c in coverages
        ),
    )
    rows = []
    for coverage in coverages:
        for state in MISSING_STATES:
            for start, end in coverage.ledger.ranges(state):
                windows = sum(
                    1 for w in coverage.ledger.windows if w.state is state and start <= w.start < end
                )
                rows.append([coverage.target.stream, state.value, _stamp(start), _stamp(end), windows])
    if not rows:
        print("no gaps: every due window is synced")
        return 0
    rows.sort(key=lambda row: (row[0], row[2]))
    print_table(
        "missing ranges (replay a failed window: python -m apisync replay STREAM START/END)",
        ["stream", "state", "from", "to", "windows"],
        rows,
    )
    return 1
