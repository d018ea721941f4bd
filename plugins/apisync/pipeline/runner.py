"""The data path without Airflow: pages -> raw files -> normalized -> validated -> warehouse.

The Airflow tasks call the same steps (:mod:`apisync.pipeline.steps`), one per task; tests and the
benchmark call :func:`run_window` directly. Every run ends with a ``sync_runs`` row and the
accounting identity pulled = inserted + updated + unchanged + deduped + quarantined, checked
rather than assumed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from apisync.load import LoadResult, record_run
from apisync.pipeline import steps
from apisync.quality import ValidationResult
from apisync.quality.expectations import SuiteRunner
from apisync.spec import StreamSpec
from apisync.staging.layout import RunPaths
from apisync.staging.raw_pages import PageLike, extract_to_files, read_manifest
from apisync.transform import NormalizeResult

__all__ = ["RunPaths", "WindowRun", "run_window"]

log = logging.getLogger(__name__)


@dataclass
class WindowRun:
    extracted: dict[str, Any]
    normalized: NormalizeResult
    validated: ValidationResult
    loaded: LoadResult
    seconds: dict[str, float]


def run_window(
    spec: StreamSpec,
    pages: Iterable[PageLike] | None,
    paths: RunPaths,
    engine: sa.Engine,
    *,
    window: tuple[datetime, datetime],
    run_id: str,
    source: str = "",
    db_schema: str | None = None,
    runner: SuiteRunner | None = None,
    api_stats: dict[str, Any] | None = None,
) -> WindowRun:
    """Run the whole data path for one window; ``pages=None`` replays the staged raw files."""
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    counts: dict[str, Any] = {}
    status = "running"
    try:
        t = time.perf_counter()
        if pages is not None:
            extracted = extract_to_files(pages, paths.raw, {"api": api_stats or {}})
        else:
            extracted = read_manifest(paths.raw)
        seconds["extract"] = time.perf_counter() - t
        t = time.perf_counter()
        normalized = steps.normalize_step(
            spec,
            paths,
            window=window,
            run_id=run_id,
            source=source or spec.source.endpoint,
            columns=steps.known_columns(spec, engine, db_schema),
        )
        seconds["normalize"] = time.perf_counter() - t
        counts["records_pulled"] = normalized.pulled
        t = time.perf_counter()
        validated = steps.validate_step(spec, paths, runner=runner)
        seconds["validate"] = time.perf_counter() - t
        seconds["gx"] = validated.gx_seconds
        counts.update(records_quarantined=validated.quarantined, gx_seconds=validated.gx_seconds)
        steps.quarantine_gate(spec, validated, engine, paths, window=window, db_schema=db_schema)
        t = time.perf_counter()
        window_load = steps.load_step(
            spec,
            engine,
            paths,
            window=window,
            run_id=run_id,
            db_schema=db_schema,
            pulled=normalized.pulled,
            deduped=normalized.deduped,
            quarantined=validated.quarantined,
        )
        seconds["load"] = time.perf_counter() - t
        counts.update(window_load.counts())
        status = "success"
    except Exception as exc:
        status = "failed"
        counts["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        stats = api_stats or {}
        record = steps.run_record(
            spec,
            window,
            run_id,
            status,
            **counts,
            api_calls=stats.get("requests"),
            api_429s=stats.get("r429"),
            throttled_seconds=stats.get("throttled_s"),
            duration_seconds=round(time.perf_counter() - started, 3),
        )
        if status == "success":
            record_run(engine, record, db_schema)
        else:
            try:  # never let a broken audit write hide the error that failed the run
                record_run(engine, record, db_schema)
            except Exception:
                log.exception("could not record the failed run of %s in sync_runs", spec.name)
    return WindowRun(extracted, normalized, validated, window_load.loaded, seconds)
