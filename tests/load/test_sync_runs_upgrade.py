"""A ``sync_runs`` table created by the DDL of the release before issue 11 gains the request-metric
columns on the first write (ALTER TABLE ... ADD COLUMN), on PostgreSQL and SQLite alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from apisync.load import RunRecord, record_run
from tests.load.datapath_fixtures import Target

OLD_DDL = Path(__file__).with_name("sync_runs_before_issue11.{dialect}.sql")
ADDED = {
    "backoff_seconds",
    "latency_p50_ms",
    "latency_p95_ms",
    "bytes_received",
    "status_counts",
    "api_errors",
    "latency_histogram",
    "api_not_modified",  # issue 15: 304s to conditional page requests
}
MOMENT = datetime(2026, 1, 7, 3, tzinfo=UTC)


def _create_old_table(warehouse: Target) -> None:
    dialect = warehouse.engine.dialect.name
    ddl = Path(str(OLD_DDL).format(dialect=dialect)).read_text()
    with warehouse.engine.begin() as conn:
        if warehouse.db_schema:
            conn.execute(sa.text(f'SET LOCAL search_path TO "{warehouse.db_schema}"'))
        conn.execute(sa.text(ddl))
        conn.execute(
            sa.text(
                "INSERT INTO sync_runs (stream, interval_start, interval_end, run_id, status, api_calls,"
                " throttled_seconds, recorded_at) VALUES ('orders', :at, :at, 'old', 'success', 7, 1.5, :at)"
            ),
            {"at": MOMENT},
        )


def test_sync_runs_of_the_old_ddl_gains_the_request_metric_columns(warehouse: Target) -> None:
    _create_old_table(warehouse)
    with warehouse.engine.connect() as conn:
        before = {c["name"] for c in sa.inspect(conn).get_columns("sync_runs", schema=warehouse.db_schema)}
    assert not before & ADDED  # the old DDL really is the old one

    record = RunRecord("orders", MOMENT, MOMENT, "new", "success", api_calls=43, throttled_seconds=0.5)
    record.backoff_seconds, record.latency_p50_ms, record.latency_p95_ms = 2.0, 41.3, 180.0
    record.bytes_received, record.api_errors = 123456, 1
    record.status_counts = json.dumps({"200": 40, "429": 2, "error": 1})
    record_run(warehouse.engine, record, warehouse.db_schema)

    with warehouse.engine.connect() as conn:
        after = {c["name"] for c in sa.inspect(conn).get_columns("sync_runs", schema=warehouse.db_schema)}
    assert after == before | ADDED
    rows = warehouse.rows(
        "SELECT run_id, api_calls, throttled_seconds, backoff_seconds, latency_p50_ms, latency_p95_ms,"
        f" bytes_received, status_counts, api_errors FROM {warehouse.table('sync_runs')} ORDER BY id"
    )
    assert rows == [
        ("old", 7, 1.5, None, None, None, None, None, None),
        ("new", 43, 0.5, 2.0, 41.3, 180.0, 123456, '{"200": 40, "429": 2, "error": 1}', 1),
    ]
