"""Bookkeeping tables: ``sync_runs`` (one row per run attempt) and ``quarantine`` (rejected rows).

``sync_runs`` makes every run accountable: pulled = inserted + updated + unchanged + deduped +
quarantined, plus the API cost (calls, 429s, seconds throttled). Failed attempts are recorded too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = [
    "SYNC_RUNS_TABLE",
    "RunRecord",
    "bookkeeping_ddl",
    "quarantine_table",
    "record_run",
    "sync_runs_table",
]

SYNC_RUNS_TABLE = "sync_runs"
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")


def sync_runs_table(db_schema: str | None = None) -> sa.Table:
    return sa.Table(
        SYNC_RUNS_TABLE,
        sa.MetaData(schema=db_schema),
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("destination_table", sa.Text()),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("records_pulled", sa.BigInteger()),
        sa.Column("records_deduped", sa.BigInteger()),
        sa.Column("records_quarantined", sa.BigInteger()),
        sa.Column("records_inserted", sa.BigInteger()),
        sa.Column("records_updated", sa.BigInteger()),
        sa.Column("records_unchanged", sa.BigInteger()),
        sa.Column("api_calls", sa.BigInteger()),
        sa.Column("api_429s", sa.BigInteger()),
        sa.Column("throttled_seconds", sa.Float()),
        sa.Column("gx_seconds", sa.Float()),
        sa.Column("duration_seconds", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def quarantine_table(db_schema: str | None = None) -> sa.Table:
    return sa.Table(
        "quarantine",
        sa.MetaData(schema=db_schema),
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_key", sa.Text()),
        sa.Column("raw_page", sa.BigInteger()),
        sa.Column("raw_line", sa.BigInteger()),
        sa.Column("raw_record", sa.Text(), nullable=False),
        sa.Column("failures", _JSON, nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_quarantine_stream_interval", "stream", "interval_start", "interval_end"),
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
    records_quarantined: int | None = None
    records_inserted: int | None = None
    records_updated: int | None = None
    records_unchanged: int | None = None
    api_calls: int | None = None
    api_429s: int | None = None
    throttled_seconds: float | None = None
    gx_seconds: float | None = None
    duration_seconds: float | None = None
    error: str | None = None
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def ensure_bookkeeping(conn: sa.Connection, db_schema: str | None) -> tuple[sa.Table, sa.Table]:
    runs, quarantine = sync_runs_table(db_schema), quarantine_table(db_schema)
    runs.create(conn, checkfirst=True)
    quarantine.create(conn, checkfirst=True)
    return runs, quarantine


def record_run(engine: sa.Engine, run: RunRecord, db_schema: str | None = None) -> None:
    """Append the run's audit row in its own transaction (also used when a task failed)."""
    values: dict[str, Any] = asdict(run)
    if values["error"] and len(values["error"]) > 4000:
        values["error"] = values["error"][:4000] + "..."
    with engine.begin() as conn:
        runs, _ = ensure_bookkeeping(conn, db_schema)
        conn.execute(runs.insert().values(**values))


def bookkeeping_ddl(dialect_name: str) -> str:
    """DDL of the bookkeeping tables, as checked in under include/sql/bookkeeping.<dialect>.sql."""
    from sqlalchemy.dialects import registry
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = registry.load(dialect_name)()
    parts = [
        "-- Bookkeeping tables of the data path (generated from apisync.load.audit.bookkeeping_ddl;\n"
        "-- the pipeline creates them itself when missing; kept here for DBAs and migrations).\n"
    ]
    for table in (sync_runs_table(), quarantine_table()):
        parts.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";\n")
        parts.extend(
            str(CreateIndex(index).compile(dialect=dialect)).strip() + ";\n" for index in table.indexes
        )
    return "\n".join(parts)
