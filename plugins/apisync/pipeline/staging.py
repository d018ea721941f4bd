"""Where a run attempt's files live, and which window a task run covers.

Root: env APISYNC_STAGING_URL (any ObjectStoragePath URL, e.g. s3://bucket/apisync), default
``file://$AIRFLOW_HOME/staging``. Layout:
``<root>/<stream>/<start>_<end>/<run id>/try-<extract try>/{raw,normalized,validated}``: every
extract attempt stages into a directory of its own, so two runs of one window (a rerun next to
the scheduled run, a backfill) never read or overwrite each other's files. The extract's XCom
names that directory (``staging_dir``) and every later task of the run reads it, so a retried
load reuses its run's files without calling the API again. A replay (``params.replay_raw``)
copies the newest complete extraction of the window into its own attempt.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import UTC, datetime
from typing import Any

from apisync.errors import WindowError
from apisync.staging.layout import RunPaths, window_key
from apisync.staging.raw_pages import MANIFEST_NAME, PAGE_VALIDATORS, read_manifest
from apisync.window_params import declared_max_days, requested_window

# A mapped slice's map_index_template: the window label_slice() put in the task's context, so the
# UI lists each slice, and a failure alert names it, by its window. Empty until a task has set it.
SLICE_LABEL = "apisync_slice"
SLICE_LABEL_TEMPLATE = "{{ " + SLICE_LABEL + " | default('') }}"

__all__ = [
    "SLICE_LABEL_TEMPLATE",
    "WindowError",
    "attempt_key",
    "label_slice",
    "newest_extraction",
    "partition_window",
    "resolve_window",
    "staging_paths",
    "staging_root_url",
    "upstream_paths",
    "window_dir",
]


def staging_root_url(override: str | None = None) -> str:
    if override:
        return override
    if os.environ.get("APISYNC_STAGING_URL"):
        return os.environ["APISYNC_STAGING_URL"]
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return f"file://{os.path.abspath(home)}/staging"


def window_dir(stream: str, window: tuple[datetime, datetime], root_url: str | None = None) -> Any:
    """The directory of every attempt to stage this stream window (an ObjectStoragePath)."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(staging_root_url(root_url)) / stream / window_key(*window)


def attempt_key(run_id: str, try_number: int) -> str:
    """``<run id>/try-<n>`` as a path: the run id made path-safe, with a hash of the original so
    two run ids that differ only in unsafe characters stay apart."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")[:100] or "run"
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{safe}-{digest}/try-{try_number}"


def staging_paths(
    stream: str,
    window: tuple[datetime, datetime],
    root_url: str | None = None,
    *,
    run_id: str,
    try_number: int,
) -> RunPaths:
    """The staging directory of one extract attempt (run id + the extract's try number)."""
    return RunPaths(window_dir(stream, window, root_url) / attempt_key(run_id, try_number))


def upstream_paths(upstream: dict[str, Any]) -> RunPaths:
    """The staging attempt an upstream task's XCom names: exactly what this run extracted."""
    from airflow.sdk import ObjectStoragePath

    return RunPaths(ObjectStoragePath(upstream["staging_dir"]))


def newest_extraction(directory: Any, exclude: Any = None, *, with_validators: bool = False) -> Any:
    """The raw directory of the newest complete extraction of a window (by the manifest's
    ``extracted_at``; the window-level ``raw`` of older releases counts as oldest), or None.

    ``with_validators``: the newest of those whose pages kept validators (conditional requests).
    """
    candidates = [directory / "raw"]
    if directory.exists():
        for run in directory.iterdir():
            if run.is_dir() and run.name not in ("raw", "normalized", "validated"):
                candidates += [
                    attempt / "raw" for attempt in run.iterdir() if attempt.name.startswith("try-")
                ]
    manifests = [
        (read_manifest(raw), raw)
        for raw in candidates
        if (raw / MANIFEST_NAME).exists() and str(raw) != str(exclude)
    ]
    complete = [
        (manifest.get("extracted_at", ""), str(raw), raw)
        for manifest, raw in manifests
        if not with_validators or manifest.get(PAGE_VALIDATORS)
    ]
    return max(complete, key=lambda entry: entry[:2])[2] if complete else None


def _interval_moment(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise WindowError(
            "no window: the run has neither params window_start/window_end nor a data interval "
            "(a manual run triggered without a logical date has none); set both params, or "
            "trigger with a logical date to sync the schedule interval before it"
        )
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def partition_window(
    window: tuple[datetime, datetime], partition: int, partitions: int
) -> tuple[datetime, datetime]:
    """Slice ``partition`` of ``partitions`` equal, contiguous slices: together exactly the window.

    Mapped extract tasks each pull one slice, so a window's records are split between parallel
    workers (sharing the connection's rate budget) without overlap or gap.
    """
    if not 0 <= partition < partitions:
        raise WindowError(f"partition {partition} is outside 0..{partitions - 1}")
    start, end = window
    step = (end - start) / partitions
    return (start + step * partition, end if partition == partitions - 1 else start + step * (partition + 1))


def resolve_window(context: Any, partition: int = 0, partitions: int = 1) -> tuple[datetime, datetime]:
    """The run's data interval (or its slice), unless ``params.window_start``/``window_end`` ask
    for a window: both or neither, checked by :func:`apisync.window_params.requested_window`
    against the limit the run's DAG declares (a :class:`WindowError` naming the param)."""
    params = context.get("params") or {}
    requested = requested_window(params, max_days=declared_max_days(context.get("dag")))
    if requested is not None:
        window = requested
    else:
        window = (
            _interval_moment(context.get("data_interval_start")),
            _interval_moment(context.get("data_interval_end")),
        )
    if window[0] >= window[1]:
        raise WindowError(
            f"empty window {window[0].isoformat()} .. {window[1].isoformat()}: a plain cron schedule gives "
            "start == end; use CronDataIntervalTimetable or pass params window_start < window_end"
        )
    window = (
        datetime.fromtimestamp(window[0].timestamp(), UTC),
        datetime.fromtimestamp(window[1].timestamp(), UTC),
    )
    return window if partitions == 1 else partition_window(window, partition, partitions)


def label_slice(context: Any, window: tuple[datetime, datetime]) -> None:
    """Name the task run's window in its context, for :data:`SLICE_LABEL_TEMPLATE`."""
    start, end = (moment.isoformat().replace("+00:00", "Z") for moment in window)
    context[SLICE_LABEL] = f"{start} → {end}"
