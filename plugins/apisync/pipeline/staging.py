"""Where a stream window's files live, and which window a task run covers.

Root: env APISYNC_STAGING_URL (any ObjectStoragePath URL, e.g. s3://bucket/apisync), default
``file://$AIRFLOW_HOME/staging``. Layout: ``<root>/<stream>/<start>_<end>/{raw,normalized,validated}``
so a retried task or a replayed window finds (and overwrites) the same files.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from apisync.errors import WindowError
from apisync.staging.layout import RunPaths, window_key

__all__ = ["WindowError", "partition_window", "resolve_window", "staging_paths", "staging_root_url"]


def staging_root_url(override: str | None = None) -> str:
    if override:
        return override
    if os.environ.get("APISYNC_STAGING_URL"):
        return os.environ["APISYNC_STAGING_URL"]
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return f"file://{os.path.abspath(home)}/staging"


def staging_paths(stream: str, window: tuple[datetime, datetime], root_url: str | None = None) -> RunPaths:
    from airflow.sdk import ObjectStoragePath

    root = ObjectStoragePath(staging_root_url(root_url))
    return RunPaths(root / stream / window_key(*window))


def _moment(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise WindowError(f"param {name}={value!r} is not an ISO-8601 timestamp") from exc
    else:
        raise WindowError(
            f"no {name}: run on a data interval (CronDataIntervalTimetable) or pass params.{name}"
        )
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
    """The run's data interval (or its slice); ``params.window_start``/``window_end`` override it."""
    params = context.get("params") or {}
    start = params.get("window_start") or context.get("data_interval_start")
    end = params.get("window_end") or context.get("data_interval_end")
    window = (_moment(start, "window_start"), _moment(end, "window_end"))
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
