"""The data path without Airflow: pages -> raw files -> normalized -> validated -> warehouse.

The Airflow tasks call the same four steps one per task; tests and the benchmark call
:func:`run_window` directly. Every run ends with a ``sync_runs`` row and the accounting identity
pulled = inserted + updated + unchanged + deduped + quarantined, checked rather than assumed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from apisync.errors import AccountingError
from apisync.load import LoadResult, RunRecord, load, record_run
from apisync.pipeline.layout import RunPaths
from apisync.quality import QuarantineThresholdError, ValidationResult, check_threshold, validate
from apisync.quality.expectations import SuiteRunner
from apisync.spec import StreamSpec
from apisync.transform import Lineage, NormalizeResult, extract_to_files, normalize_files
from apisync.transform.raw_pages import PageLike

__all__ = ["RunPaths", "WindowRun", "account", "run_window"]

log = logging.getLogger(__name__)


@dataclass
class WindowRun:
    extracted: dict[str, Any]
    normalized: NormalizeResult
    validated: ValidationResult
    loaded: LoadResult
    seconds: dict[str, float]


def account(pulled: int, deduped: int, quarantined: int, loaded: LoadResult) -> None:
    """Every pulled record is inserted, updated, unchanged, deduplicated or quarantined."""
    total = loaded.inserted + loaded.updated + loaded.unchanged + deduped + quarantined
    if total != pulled:
        raise AccountingError(
            f"accounting mismatch for {loaded.table}: pulled {pulled} but inserted {loaded.inserted}"
            f" + updated {loaded.updated} + unchanged {loaded.unchanged} + deduped {deduped}"
            f" + quarantined {quarantined} = {total}"
        )


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
    record = RunRecord(
        stream=spec.name,
        interval_start=window[0],
        interval_end=window[1],
        run_id=run_id,
        status="running",
        destination_table=spec.destination.table,
    )
    try:
        t = time.perf_counter()
        if pages is not None:
            extracted = extract_to_files(pages, paths.raw, {"api": api_stats or {}})
        else:
            from apisync.transform.raw_pages import read_manifest

            extracted = read_manifest(paths.raw)
        seconds["extract"] = time.perf_counter() - t
        lineage = Lineage(source or spec.source.endpoint, run_id, window[0], window[1], datetime.now(UTC))
        t = time.perf_counter()
        normalized = normalize_files(spec, paths.raw, paths.normalized, lineage)
        seconds["normalize"] = time.perf_counter() - t
        record.records_pulled = normalized.pulled
        t = time.perf_counter()
        validated = validate(spec, paths.normalized, paths.raw, paths.validated, runner=runner)
        seconds["validate"] = time.perf_counter() - t
        seconds["gx"] = validated.gx_seconds
        record.records_quarantined, record.gx_seconds = validated.quarantined, validated.gx_seconds
        try:
            check_threshold(spec, validated.quarantined, validated.pulled, validated.failures)
        except QuarantineThresholdError:
            from apisync.load.warehouse import persist_quarantine

            persist_quarantine(engine, spec, paths.validated, window=window, db_schema=db_schema)
            raise
        t = time.perf_counter()
        loaded = load(spec, engine, paths.validated, window=window, run_id=run_id, db_schema=db_schema)
        seconds["load"] = time.perf_counter() - t
        deduped = normalized.deduped + loaded.deduped
        account(normalized.pulled, deduped, validated.quarantined, loaded)
        record.records_deduped = deduped
        record.records_inserted, record.records_updated = loaded.inserted, loaded.updated
        record.records_unchanged = loaded.unchanged
        record.status = "success"
    except Exception as exc:
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        stats = api_stats or {}
        record.api_calls, record.api_429s = stats.get("requests"), stats.get("r429")
        record.throttled_seconds = stats.get("throttled_s")
        record.duration_seconds = round(time.perf_counter() - started, 3)
        if record.status == "success":
            record_run(engine, record, db_schema)
        else:
            try:  # never let a broken audit write hide the error that failed the run
                record_run(engine, record, db_schema)
            except Exception:
                log.exception("could not record the failed run of %s in sync_runs", spec.name)
    return WindowRun(extracted, normalized, validated, loaded, seconds)
