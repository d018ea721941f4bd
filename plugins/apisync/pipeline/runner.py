"""The data path without Airflow: pages -> raw files -> normalized -> validated -> warehouse.

The Airflow tasks call the same steps (:mod:`apisync.pipeline.steps`), one per task; tests and the
benchmark call :func:`run_window` directly. Every run ends with a ``sync_runs`` row and the
accounting identity pulled = inserted + updated + unchanged + deduped + quarantined + repeated
+ out_of_window, checked rather than assumed (``pulled`` is every record that arrived;
``repeated``, the byte-identical repeats the paginator dropped before staging): both in the
load's transaction, so a mismatch loads nothing and a success is never committed without its row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from apisync.load import LoadResult, RunRecord, record_run
from apisync.pipeline import steps
from apisync.pipeline.api_cost import api_cost
from apisync.quality import ValidationResult
from apisync.quality.expectations import SuiteRunner
from apisync.quality.suites import suite_path
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

    def audit(status: str, **more: Any) -> RunRecord:
        return steps.run_record(
            spec,
            window,
            run_id,
            status,
            **{**counts, **more},  # the load's counts are the last word
            **(api_cost(api_stats) if api_stats else {}),
            duration_seconds=round(time.perf_counter() - started, 3),
        )

    if runner is None:  # GX's import and the suite's build run while the window is extracted
        SuiteRunner.prepare(suite_path(spec.quality.suite), spec.primary_key)
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
        repeated = int(extracted.get("repeated", 0))
        counts.update(
            records_pulled=normalized.pulled + repeated,
            records_repeated=repeated,
            records_out_of_window=normalized.out_of_window,
        )
        t = time.perf_counter()
        validated = steps.validate_step(spec, paths, runner=runner)
        seconds["validate"] = time.perf_counter() - t
        seconds["gx"] = validated.gx_seconds
        log.info("%s", steps.validation_line(spec.name, window, validated))
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
            out_of_window=normalized.out_of_window,
            repeated=repeated,
            audit=lambda window_load: audit("success", **window_load.counts()),  # in the load's transaction
        )
        seconds["load"] = time.perf_counter() - t
        log.info("%s", steps.load_line(spec.name, window_load.loaded, db_schema, seconds["load"]))
    except Exception as exc:
        try:  # never let a broken audit write hide the error that failed the run
            record_run(engine, audit("failed", error=f"{type(exc).__name__}: {exc}"), db_schema)
        except Exception:
            log.exception("could not record the failed run of %s in sync_runs", spec.name)
        raise
    return WindowRun(extracted, normalized, validated, window_load.loaded, seconds)
