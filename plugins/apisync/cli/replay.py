"""``replay STREAM WINDOW``: re-run one window of a stream from its staged raw files.

For a window quarantined or failed because of a suite or mapping since fixed: its DAG run is
cleared from normalize onward (:func:`apisync.coverage.replay.replay_window`), so the window is
normalized, validated and loaded again from the raw pages its extraction staged, with no call to
the source API. WINDOW is ``START/END`` (ISO 8601, UTC unless an offset is given) or ``START``,
meaning the interval of the stream's schedule that starts there.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from apisync.cli.output import print_error, print_table
from apisync.cli.targets import UnknownStreamError, connect_api, pick_target, sync_targets_of_dags_folder
from apisync.coverage import DEFAULT_API_CONN_ID
from apisync.coverage.check import StreamTarget
from apisync.coverage.ledger import Window, as_utc, expected_windows, format_range
from apisync.errors import ApisyncError

__all__ = ["WindowArgumentError", "parse_window", "register", "run_replay"]


class WindowArgumentError(ValueError):
    """WINDOW is not ``START/END`` or a ``START`` of the schedule: a usage error."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="re-run one window from its staged raw files (no API call)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stream", help="the stream, e.g. orders")
    parser.add_argument("window", help="START/END, or START for the schedule's interval starting there")
    parser.add_argument("--dag", dest="dag_id", help="the DAG, when several sync the stream")
    parser.add_argument("--wait", action="store_true", help="wait for the run and report how it ended")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds --wait waits [1800]")
    parser.add_argument("--api-conn-id", default=DEFAULT_API_CONN_ID, help="Airflow REST API connection")
    parser.set_defaults(func=run_replay)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise WindowArgumentError(f"{text!r} is not an ISO 8601 moment (e.g. 2026-01-03T10:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else as_utc(moment)


def parse_window(text: str, target: StreamTarget) -> Window:
    """``START/END``, or ``START``: the interval of ``target``'s schedule beginning at START."""
    if "/" in text:
        start_text, end_text = text.split("/", 1)
        window = (_moment(start_text), _moment(end_text))
        if window[0] >= window[1]:
            raise WindowArgumentError(f"window {text!r}: END must be after START")
        return window
    start = _moment(text)
    # The schedule's first interval from START (a month ahead is enough for any sync schedule).
    found = expected_windows(target.timetable, start=start, end=None, until=start + timedelta(days=62))
    if not found or found[0][0] != start:
        nearest = f" (the next one starts {found[0][0].isoformat()})" if found else ""
        raise WindowArgumentError(
            f"{start.isoformat()} is not the start of an interval of {target.dag_id}'s schedule{nearest}; "
            "give START/END"
        )
    return found[0]


def run_replay(args: argparse.Namespace) -> int:
    from apisync.coverage.replay import replay_window, wait_for_run

    try:
        target = pick_target(sync_targets_of_dags_folder(), args.stream, args.dag_id)
        window = parse_window(args.window, target)
    except (UnknownStreamError, WindowArgumentError) as error:
        print_error(str(error))
        return 2
    try:
        api = connect_api(args.api_conn_id)
        outcome = replay_window(api, target.dag_id, *window)
    except ApisyncError as error:
        print_error(f"cannot replay {args.stream} {format_range(window)}: {error}")
        return 1
    print(outcome.describe())
    print_table(
        "replay",
        ["stream", "dag", "run", "window", "cleared tasks", "raw extractions"],
        [
            [
                args.stream,
                outcome.dag_id,
                outcome.run_id,
                format_range(window),
                ", ".join(outcome.task_ids),
                len(outcome.raw_dirs),
            ]
        ],
    )
    if not args.wait:
        return 0
    try:
        state = wait_for_run(api, outcome.dag_id, outcome.run_id, timeout_s=args.timeout)
    except ApisyncError as error:
        print_error(str(error))
        return 1
    print(f"run {outcome.run_id} ended {state}")
    return 0 if state == "success" else 1
