"""The audit table ``sync_runs``: one row per run attempt (quarantined rows are quality's table).

``sync_runs`` makes every run accountable: pulled (every record that arrived) = inserted +
updated + unchanged + deduped + quarantined + repeated (byte-identical repeats the paginator
dropped before staging) + out_of_window (other windows' records the server sent too), plus the
API cost: calls, 429s, seconds waiting for the rate limiter (``throttled_seconds``) and backing
off after errors (``backoff_seconds``), the p50/p95 request latency (from the hook's latency
histogram, kept as ``latency_histogram`` JSON so that the rows of a window's slices merge
exactly: :func:`apisync.http.latency.merge_histograms`, then ``latency_percentile``), bytes
received, the count of each HTTP status (``status_counts``, JSON: ``{"200": 40, "429": 3,
"error": 1}``, "error" = no status, a network error), ``api_errors`` (network errors and
4xx/5xx other than 429) and ``api_not_modified`` (pages a conditional request found unchanged, a
304: their body was replayed from staging). Failed attempts are recorded too. Every column added
since the first release is nullable: a table of an older release gains them (``ALTER TABLE ...
ADD COLUMN``) on the first write, and its old rows read NULL there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from apisync.redaction import cut_redacted
from apisync.staging.logical_types import ROW_ID_TYPE
from apisync.staging.tables import ensure_table_columns

__all__ = ["SYNC_RUNS_TABLE", "RunRecord", "insert_run", "record_run", "sync_runs_table"]

SYNC_RUNS_TABLE = "sync_runs"
MAX_ERROR_CHARS = 4000


def sync_runs_table(db_schema: str | None = None) -> sa.Table:
    return sa.Table(
        SYNC_RUNS_TABLE,
        sa.MetaData(schema=db_schema),
        sa.Column("id", ROW_ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("destination_table", sa.Text()),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("records_pulled", sa.BigInteger()),
        sa.Column("records_deduped", sa.BigInteger()),
        sa.Column("records_repeated", sa.BigInteger()),
        sa.Column("records_quarantined", sa.BigInteger()),
        sa.Column("records_inserted", sa.BigInteger()),
        sa.Column("records_updated", sa.BigInteger()),
        sa.Column("records_unchanged", sa.BigInteger()),
        sa.Column("records_out_of_window", sa.BigInteger()),
        sa.Column("api_calls", sa.BigInteger()),
        sa.Column("api_429s", sa.BigInteger()),
        sa.Column("throttled_seconds", sa.Float()),
        sa.Column("backoff_seconds", sa.Float()),
        sa.Column("latency_p50_ms", sa.Float()),
        sa.Column("latency_p95_ms", sa.Float()),
        sa.Column("bytes_received", sa.BigInteger()),
        sa.Column("status_counts", sa.Text()),
        sa.Column("api_errors", sa.BigInteger()),
        sa.Column("latency_histogram", sa.Text()),
        sa.Column("api_not_modified", sa.BigInteger()),
        sa.Column("gx_seconds", sa.Float()),
        sa.Column("duration_seconds", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


@dataclass
class RunRecord:
    stream: str
    interval_start: datetime
    interval_end: datetime
    run_id: str
    status: str
    destination_table: str | None = None
    records_pulled: int | None = None
    records_deduped: int | None = None
    records_repeated: int | None = None
    records_quarantined: int | None = None
    records_inserted: int | None = None
    records_updated: int | None = None
    records_unchanged: int | None = None
    records_out_of_window: int | None = None
    api_calls: int | None = None
    api_429s: int | None = None
    throttled_seconds: float | None = None
    backoff_seconds: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    bytes_received: int | None = None
    status_counts: str | None = None  # JSON object: HTTP status -> count, "error" for network errors
    api_errors: int | None = None
    latency_histogram: str | None = (
        None  # JSON {bucket: count}: merge rows (slices) exactly, see http.latency
    )
    api_not_modified: int | None = None  # 304s to conditional page requests
    gx_seconds: float | None = None
    duration_seconds: float | None = None
    error: str | None = None
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def insert_run(conn: sa.Connection, run: RunRecord, db_schema: str | None = None) -> None:
    """Append the run's audit row in the caller's transaction: a successful load's own, so the
    changes and their audit row commit together. Creates ``sync_runs`` when missing and adds the
    columns an older release's table lacks."""
    values: dict[str, Any] = asdict(run)
    if values["error"]:  # redacted here, whoever wrote it, before it is cut
        values["error"] = cut_redacted(values["error"], MAX_ERROR_CHARS, "...")
    runs = sync_runs_table(db_schema)
    ensure_table_columns(conn, runs)
    conn.execute(runs.insert().values(**values))


def record_run(engine: sa.Engine, run: RunRecord, db_schema: str | None = None) -> None:
    """Append the run's audit row in its own transaction (a failed run's, when nothing was loaded)."""
    with engine.begin() as conn:
        insert_run(conn, run, db_schema)
