"""Replay one window from its staged raw files: clear its DAG run from normalize onward.

The use case: a window was quarantined (or failed to load) because of a bad expectation suite or
mapping; the user fixes the file and replays. The extract task of the window's run is **not**
cleared, so its XCom keeps naming the attempt directory it staged (``staging_dir``, see
:mod:`apisync.pipeline.staging`) and the re-run normalize, validate and load read exactly those
raw pages: no request reaches the source API. The load merges (or replaces the window), so the
warehouse gets no duplicate, and writes a new ``sync_runs`` row for the run.

Everything goes through Airflow's REST API (:class:`~apisync.coverage.repair.AirflowApi`), as the
logged-in user when the view calls it, so a replay needs the same permission as the UI's *Clear*:

1. the window's run: every run whose effective window, the run conf's ``window_start`` /
   ``window_end`` or else its data interval (as the tasks resolve it), equals the window; the
   newest of them (by ``run_after``) is replayed. None → :class:`NoRunForWindowError`; queued or
   running → :class:`RunStillActiveError`;
2. its raw files: each extract task instance's XCom (every map index of a sliced stream) must
   name a directory whose ``raw/_extract.json`` (the manifest an extraction writes last) still
   exists; otherwise :class:`RawFilesMissingError`, which says a fresh run or backfill is needed;
3. ``POST /dags/{dag_id}/clearTaskInstances`` with the run's ``…normalize`` tasks (every stream
   group of the DAG, all map indexes), ``include_downstream`` (validate, load) and ``only_failed``
   off (a successful window can be replayed too), then ``PATCH`` the run to ``queued`` so the
   scheduler runs the cleared tasks.

Why not the clear's own ``reset_dag_runs``: in Airflow 3.3.2 it recalculates the run's
``DAGRUN_QUEUED_AT`` deadlines and fails with HTTP 500 (``TypeError: unsupported type for
timedelta seconds component: dict``, apache/airflow#70368) whenever such a deadline is not yet
missed: every sync DAG has one (``sync_deadline``), so a run that failed minutes ago could not be
cleared. Queuing the run by ``PATCH`` leaves its deadline where it was (queued at + the interval).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from apisync.coverage.ledger import Window, as_utc, format_range
from apisync.coverage.repair import ACTIVE_RUN_STATES, PAGE_LIMIT, AirflowApi
from apisync.errors import (
    AirflowApiError,
    NoRunForWindowError,
    RawFilesMissingError,
    ReplayError,
    RunStillActiveError,
)
from apisync.staging.raw_pages import MANIFEST_NAME

__all__ = [
    "FINISHED_RUN_STATES",
    "ReplayOutcome",
    "WindowRun",
    "find_window_run",
    "replay_window",
    "run_window",
    "wait_for_run",
]

FINISHED_RUN_STATES = ("success", "failed")
NORMALIZE_TASK = "normalize"
EXTRACT_TASK = "extract"
REPLAY_NOTE = "apisync replay: normalize, validate and load re-run from the staged raw files"


@dataclass(frozen=True)
class WindowRun:
    """A DAG run and the window its tasks sync (conf window, else data interval)."""

    run_id: str
    window: Window
    state: str
    run_after: str


@dataclass(frozen=True)
class ReplayOutcome:
    """What :func:`replay_window` cleared: the run, its tasks, the raw directories they re-read."""

    dag_id: str
    run_id: str
    task_ids: tuple[str, ...]
    window: Window
    raw_dirs: tuple[str, ...] = ()
    previous_state: str = ""
    paused: bool = False
    cleared: int = 0  # task instances, every map index counted
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        text = (
            f"replaying {self.dag_id} run {self.run_id} ({format_range(self.window)}, was "
            f"{self.previous_state or 'unknown'}): cleared {self.cleared} task instances of "
            f"{', '.join(self.task_ids)} to re-run from {len(self.raw_dirs)} staged raw "
            f"extraction{'s' if len(self.raw_dirs) != 1 else ''}, no call to the source API"
        )
        if self.paused:
            text += "; the DAG is paused: the run continues once it is unpaused"
        return text


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str) and value:
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _effective_window(run: Mapping[str, Any]) -> Window | None:
    """The window the run's tasks sync: ``conf.window_start/_end`` override the data interval
    (:func:`apisync.pipeline.staging.resolve_window`)."""
    conf = run.get("conf") or {}
    start = _moment(conf.get("window_start")) or _moment(run.get("data_interval_start"))
    end = _moment(conf.get("window_end")) or _moment(run.get("data_interval_end"))
    return (start, end) if start is not None and end is not None else None


def _pages(api: AirflowApi, path: str, key: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        body = api.call("GET", path, params={**params, "limit": PAGE_LIMIT, "offset": offset}) or {}
        items = body.get(key) or []
        yield from items
        offset += len(items)
        if not items or offset >= int(body.get("total_entries") or 0):
            return


def run_window(api: AirflowApi, dag_id: str, run_id: str) -> Window:
    """The window the run ``run_id``'s tasks sync, all its slices together (conf window, else data
    interval): what a quarantined row of one slice replays (the row carries its slice's window)."""
    path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
    window = _effective_window(api.call("GET", path) or {})
    if window is None:
        raise ReplayError(f"{dag_id} run {run_id} has no window (no data interval, no conf window)")
    return window


def find_window_run(api: AirflowApi, dag_id: str, start: datetime, end: datetime) -> WindowRun:
    """The newest run of ``dag_id`` whose tasks sync exactly ``[start, end)``.

    Looked up among the runs with a logical date inside the window (scheduled and backfill runs of
    an interval timetable) and the manual runs since ``start`` (a conf window, or a triggered
    interval)."""
    window = (as_utc(start), as_utc(end))
    if window[0] >= window[1]:
        raise ReplayError(f"window {format_range(window)} is empty: its end must be after its start")
    path = f"/dags/{quote(dag_id, safe='')}/dagRuns"
    queries: Sequence[Mapping[str, Any]] = (
        {"logical_date_gte": window[0].isoformat(), "logical_date_lte": window[1].isoformat()},
        {"run_type": "manual", "run_after_gte": window[0].isoformat()},
    )
    found: dict[str, WindowRun] = {}
    for params in queries:
        for run in _pages(api, path, "dag_runs", params):
            if _effective_window(run) == window:
                found[str(run["dag_run_id"])] = WindowRun(
                    run_id=str(run["dag_run_id"]),
                    window=window,
                    state=str(run.get("state")),
                    run_after=str(run.get("run_after") or ""),
                )
    if not found:
        raise NoRunForWindowError(
            f"{dag_id}: no DAG run has the window {format_range(window)} (as data interval or as "
            "window_start/window_end in its conf); trigger a run or a backfill for it instead"
        )
    return max(found.values(), key=lambda run: (run.run_after, run.run_id))


def _task_instances(api: AirflowApi, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    return list(_pages(api, path, "task_instances", {}))


def _is_step(task_id: str, step: str) -> bool:
    return task_id == step or task_id.endswith(f".{step}")


def _xcom_value(api: AirflowApi, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    path = (
        f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
        f"{quote(task_id, safe='')}/xcomEntries/return_value"
    )
    try:
        body = api.call("GET", path, params={"map_index": map_index})
    except AirflowApiError as error:
        if error.status == 404:
            return None
        raise
    value = (body or {}).get("value")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value


def _staged_raw_dirs(
    api: AirflowApi, dag_id: str, run: WindowRun, tis: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Each extract task instance's raw directory; :class:`RawFilesMissingError` for the first
    whose extraction did not complete or whose files are gone."""
    from airflow.sdk import ObjectStoragePath

    extracts = sorted(
        (
            (str(ti["task_id"]), int(ti.get("map_index", -1)))
            for ti in tis
            if _is_step(str(ti["task_id"]), EXTRACT_TASK)
        ),
    )
    if not extracts:
        raise RawFilesMissingError(f"{dag_id} run {run.run_id}: has no extract task instance to replay from")
    fresh = (
        "trigger a fresh run of the window (conf window_start/window_end) or a backfill; "
        "the replay re-reads staged raw files only"
    )
    raw_dirs = []
    for task_id, map_index in extracts:
        slice_name = f"{task_id}[{map_index}]" if map_index >= 0 else task_id
        value = _xcom_value(api, dag_id, run.run_id, task_id, map_index)
        staging_dir = value.get("staging_dir") if isinstance(value, dict) else None
        if not staging_dir:
            raise RawFilesMissingError(
                f"{dag_id} run {run.run_id}: {slice_name} staged no raw files (its extraction did not "
                f"complete); {fresh}"
            )
        raw = ObjectStoragePath(str(staging_dir)) / "raw"
        if not (raw / MANIFEST_NAME).exists():
            raise RawFilesMissingError(
                f"{dag_id} run {run.run_id}: the raw files {slice_name} staged are gone ({raw} has no "
                f"{MANIFEST_NAME}); {fresh}"
            )
        raw_dirs.append(str(raw))
    return raw_dirs


def _pipeline_order(task_id: str) -> tuple[str, int, str]:
    """Group, then the data path's order (normalize, validate, load), then anything after."""
    group, _, step = task_id.rpartition(".")
    steps = (NORMALIZE_TASK, "validate", "load")
    return (group, steps.index(step) if step in steps else len(steps), step)


def replay_window(api: AirflowApi, dag_id: str, start: datetime, end: datetime) -> ReplayOutcome:
    """Re-run the window ``[start, end)`` of ``dag_id`` from its staged raw files (module docstring).

    Returns once the tasks are cleared (the scheduler then runs them); :func:`wait_for_run` waits
    for the outcome. Raises a :class:`~apisync.errors.ReplayError` naming why a window cannot be
    replayed, :class:`~apisync.errors.AirflowApiError` when the API refuses a call."""
    run = find_window_run(api, dag_id, start, end)
    if run.state in ACTIVE_RUN_STATES:
        raise RunStillActiveError(
            f"{dag_id} run {run.run_id} of {format_range(run.window)} is still {run.state}: "
            "wait for it to finish, then replay"
        )
    tis = _task_instances(api, dag_id, run.run_id)
    normalize = sorted({str(ti["task_id"]) for ti in tis if _is_step(str(ti["task_id"]), NORMALIZE_TASK)})
    if not normalize:
        raise ReplayError(f"{dag_id} run {run.run_id}: no normalize task: not a sync DAG of apisync")
    raw_dirs = _staged_raw_dirs(api, dag_id, run, tis)
    body = {
        "dry_run": False,
        "dag_run_id": run.run_id,
        "task_ids": normalize,
        "include_downstream": True,
        "include_upstream": False,
        "only_failed": False,
        "reset_dag_runs": False,  # see the module docstring: the PATCH below queues the run
        "note": REPLAY_NOTE,
    }
    cleared = api.call("POST", f"/dags/{quote(dag_id, safe='')}/clearTaskInstances", json=body) or {}
    run_path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run.run_id, safe='')}"
    api.call("PATCH", run_path, json={"state": "queued"})
    instances = cleared.get("task_instances") or []
    return ReplayOutcome(
        dag_id=dag_id,
        run_id=run.run_id,
        task_ids=tuple(sorted({str(ti["task_id"]) for ti in instances}, key=_pipeline_order)),
        window=run.window,
        raw_dirs=tuple(raw_dirs),
        previous_state=run.state,
        paused=api.is_paused(dag_id),
        cleared=len(instances),
    )


def wait_for_run(
    api: AirflowApi, dag_id: str, run_id: str, *, timeout_s: float = 1800, poll_s: float = 3
) -> str:
    """The run's final state (``success`` / ``failed``), polling the REST API; ``ReplayError`` on
    timeout. A cleared run is queued again first, so it is polled until it has finished."""
    path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
    deadline = time.monotonic() + timeout_s
    while True:
        state = str((api.call("GET", path) or {}).get("state"))
        if state in FINISHED_RUN_STATES:
            return state
        if time.monotonic() > deadline:
            raise ReplayError(f"{dag_id} run {run_id} still {state} after {timeout_s:.0f}s")
        time.sleep(poll_s)
