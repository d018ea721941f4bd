"""The one sequence of a stream window, as steps that the runner and the Airflow tasks both call.

The stored column mapping -> normalize -> validate -> quarantine gate (the threshold; over it,
the quarantine rows are stored before the run fails, so the evidence survives) -> load, and in the
load's transaction: the window's quarantine rows, the new column-mapping entries, the accounting
check and the ``sync_runs`` row. :func:`apisync.pipeline.runner.run_window` calls them in one
process; each Airflow task of :mod:`apisync.pipeline.tasks` calls one of them and passes the
counts on through XCom. No step imports Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from apisync.errors import AccountingError, QuarantineThresholdError
from apisync.load import InTransaction, LoadResult, RunRecord, insert_run, load
from apisync.load.column_map import column_map_writer, read_column_maps
from apisync.naming import SourcePath
from apisync.quality import ValidationResult, check_threshold, validate
from apisync.quality.expectations import SuiteRunner
from apisync.quality.quarantine import persist_quarantine, quarantine_writer
from apisync.spec import StreamSpec
from apisync.staging.layout import RunPaths
from apisync.staging.manifests import read_normalized_manifest
from apisync.transform import Lineage, NormalizeResult, normalize_files

__all__ = [
    "WindowLoad",
    "account",
    "known_columns",
    "load_line",
    "load_step",
    "normalize_step",
    "quarantine_gate",
    "run_record",
    "validate_step",
    "validation_line",
]


def known_columns(
    spec: StreamSpec, engine: sa.Engine, db_schema: str | None
) -> dict[str, dict[SourcePath, str]]:
    """The source-key -> column mapping stored with the stream's tables, for :func:`normalize_step`."""
    return read_column_maps(engine, spec, db_schema)


def normalize_step(
    spec: StreamSpec,
    paths: RunPaths,
    *,
    window: tuple[datetime, datetime],
    run_id: str,
    source: str,
    columns: Mapping[str, Mapping[SourcePath, str]] | None = None,
) -> NormalizeResult:
    """Raw pages -> normalized parts, every row stamped with this run's lineage; ``columns`` is the
    stored mapping (:func:`known_columns`), so keys land in the columns they were first given."""
    lineage = Lineage(source, run_id, window[0], window[1], datetime.now(UTC))
    return normalize_files(spec, paths.raw, paths.normalized, lineage, known_columns=columns)


def validate_step(
    spec: StreamSpec, paths: RunPaths, *, runner: SuiteRunner | None = None
) -> ValidationResult:
    """Normalized parts -> good parts and quarantine parts (see :func:`quarantine_gate` for the threshold)."""
    return validate(spec, paths.normalized, paths.raw, paths.validated, runner=runner)


def quarantine_gate(
    spec: StreamSpec,
    validated: ValidationResult,
    engine: sa.Engine,
    paths: RunPaths,
    *,
    window: tuple[datetime, datetime],
    db_schema: str | None,
) -> None:
    """Raise :class:`~apisync.errors.QuarantineThresholdError` when too much was quarantined, after
    storing the quarantine rows on their own (the batch is not loaded, the evidence stays)."""
    try:
        check_threshold(spec, validated.quarantined, validated.in_window, validated.failures)
    except QuarantineThresholdError:
        persist_quarantine(engine, spec, paths.validated, window=window, db_schema=db_schema)
        raise


def account(
    pulled: int,
    deduped: int,
    quarantined: int,
    loaded: LoadResult,
    repeated: int = 0,
    *,
    out_of_window: int = 0,
) -> None:
    """Every record that arrived (``pulled``, repeats included) is inserted, updated, unchanged,
    deduplicated, quarantined, a byte-identical repeat the paginator dropped, or another window's
    (``out_of_window``, dropped by normalize)."""
    total = loaded.merged + deduped + quarantined + repeated + out_of_window
    if total != pulled:
        raise AccountingError(
            f"accounting mismatch for {loaded.table}: pulled {pulled} but inserted {loaded.inserted}"
            f" + updated {loaded.updated} + unchanged {loaded.unchanged} + deduped {deduped}"
            f" + quarantined {quarantined} + repeated {repeated} + out_of_window {out_of_window} = {total}"
        )


@dataclass(frozen=True)
class WindowLoad:
    """What the load of a window did, with the records deduplicated along the whole path."""

    loaded: LoadResult
    deduped: int  # within normalize's chunks + across parts in the load
    pulled: int = 0  # every record that arrived: staged + repeated
    repeated: int = 0  # byte-identical repeats the paginator dropped (never staged)

    def counts(self) -> dict[str, Any]:
        """The ``sync_runs`` columns the load knows."""
        return {
            "records_pulled": self.pulled,
            "records_repeated": self.repeated,
            "records_deduped": self.deduped,
            "records_inserted": self.loaded.inserted,
            "records_updated": self.loaded.updated,
            "records_unchanged": self.loaded.unchanged,
        }


def load_step(
    spec: StreamSpec,
    engine: sa.Engine,
    paths: RunPaths,
    *,
    window: tuple[datetime, datetime],
    run_id: str,
    db_schema: str | None,
    pulled: int,
    deduped: int,
    quarantined: int,
    out_of_window: int = 0,
    repeated: int = 0,
    audit: Callable[[WindowLoad], RunRecord] | None = None,
    in_transaction: Sequence[InTransaction] = (),
) -> WindowLoad:
    """Load the validated window with its quarantine rows in one transaction, and before it
    commits: check the accounting (``pulled``, ``deduped``, ``out_of_window`` and ``quarantined``
    as normalize and validate counted them; ``repeated`` as the extraction's manifest did: records
    that arrived but were never staged; a mismatch rolls the load back), run ``in_transaction``,
    and insert the ``sync_runs`` row that ``audit`` makes of the counts. Changes and audit row
    commit together."""

    def window_load(loaded: LoadResult) -> WindowLoad:
        return WindowLoad(loaded, deduped + loaded.deduped, pulled + repeated, repeated)

    def checked(conn: sa.Connection, loaded: LoadResult) -> None:
        done = window_load(loaded)
        account(done.pulled, done.deduped, quarantined, loaded, repeated, out_of_window=out_of_window)

    def audited(conn: sa.Connection, loaded: LoadResult) -> None:
        if audit is not None:  # quarantine and sync_runs live in the connection's schema
            insert_run(conn, audit(window_load(loaded)), db_schema)

    # quarantine (and sync_runs, apisync_columns) live in the connection's schema, not the destination's
    quarantine = quarantine_writer(spec, paths.validated, window=window, db_schema=db_schema)
    columns = _column_map_writer(spec, paths, run_id=run_id, db_schema=db_schema)

    def with_columns(conn: sa.Connection) -> int:
        columns(conn)
        return quarantine(conn)

    loaded = load(
        spec,
        engine,
        paths.validated,
        window=window,
        run_id=run_id,
        db_schema=db_schema,
        quarantine_writer=with_columns,
        in_transaction=[checked, *in_transaction, audited],
    )
    return window_load(loaded)


def _column_map_writer(
    spec: StreamSpec, paths: RunPaths, *, run_id: str, db_schema: str | None
) -> Callable[[sa.Connection], None]:
    """Stores the mapping entries normalize added (in its manifest) on the load's connection."""
    added = read_normalized_manifest(paths.normalized).get("column_map", {})
    return column_map_writer(spec, added, run_id=run_id, db_schema=db_schema)


def run_record(
    spec: StreamSpec, window: tuple[datetime, datetime], run_id: str, status: str, **counts: Any
) -> RunRecord:
    """The ``sync_runs`` row of this stream window; callers pass only the counts they know."""
    return RunRecord(
        stream=spec.name,
        interval_start=window[0],
        interval_end=window[1],
        run_id=run_id,
        status=status,
        **{"destination_table": spec.destination.table, **counts},
    )


def _window_text(window: tuple[datetime, datetime]) -> str:
    return "→".join(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ") for moment in window)


def validation_line(stream: str, window: tuple[datetime, datetime], validated: ValidationResult) -> str:
    """What validate did, in one log line: ``validate orders 2026-01-07T03:00Z→2026-01-07T04:00Z:
    27 rows checked, 25 passed, 2 quarantined (expect_column_values_to_not_be_null: customer_id 2
    rows)``."""
    checked = validated.valid + validated.quarantined
    line = (
        f"validate {stream} {_window_text(window)}: {checked} rows checked, {validated.valid} passed, "
        f"{validated.quarantined} quarantined"
    )
    reasons = "; ".join(
        f"{failure['expectation']}: {failure['column']} {failure['unexpected_count']} "
        f"row{'' if failure['unexpected_count'] == 1 else 's'}"
        if failure["column"]
        else f"{failure['expectation']} {failure['unexpected_count']} rows"
        for failure in validated.failures
    )
    return f"{line} ({reasons})" if reasons else line


def load_line(stream: str, loaded: LoadResult, db_schema: str | None, seconds: float) -> str:
    """What load did, in one log line: ``load orders: 25 rows → analytics.orders (3 inserted,
    22 updated, 0 unchanged) in 0.4 s``."""
    table = f"{db_schema}.{loaded.table}" if db_schema and "." not in loaded.table else loaded.table
    deleted = f", {loaded.deleted} deleted" if loaded.deleted else ""
    return (
        f"load {stream}: {loaded.merged} rows → {table} ({loaded.inserted} inserted, "
        f"{loaded.updated} updated, {loaded.unchanged} unchanged{deleted}) in {seconds:.1f} s"
    )
