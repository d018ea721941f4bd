"""The quarantine browser's pages, on SQLite and PostgreSQL, with the table as quality creates it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from apisync.quality.quarantine import quarantine_table
from apisync.report.quarantine import read_quarantine

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


def _fill(warehouse, rows: int) -> None:
    table = quarantine_table(warehouse.db_schema)
    table.create(warehouse.engine)
    failures = [{"check": "expect_column_values_to_match_regex", "column": "email"}]
    sqlite = warehouse.engine.dialect.name == "sqlite"  # JSON is text there, jsonb on PostgreSQL
    with warehouse.engine.begin() as conn:
        for i in range(rows):
            conn.execute(
                table.insert().values(
                    stream="customers" if i % 2 == 0 else "orders",
                    run_id=f"run-{i % 4}",
                    interval_start=T0,
                    interval_end=T0 + timedelta(hours=1),
                    record_key=json.dumps({"id": str(i)}),
                    raw_page=0,
                    raw_line=i,
                    page_url="http://127.0.0.1:8903/api/customers?offset=0",
                    raw_record=json.dumps({"id": i, "email": "not-an-email", "session": f"Bearer {JWT}"}),
                    failures=json.dumps(failures) if sqlite else failures,
                    quarantined_at=T0 + timedelta(minutes=i),
                )
            )


def test_pages_newest_first_with_the_total_reasons_parsed_and_credentials_masked(warehouse) -> None:
    _fill(warehouse, 9)  # customers: rows 0, 2, 4, 6, 8
    first = read_quarantine(warehouse.engine, "customers", db_schema=warehouse.db_schema, limit=2)
    assert first.total == 5 and [json.loads(r.raw_record)["id"] for r in first.rows] == [8, 6]
    second = read_quarantine(warehouse.engine, "customers", db_schema=warehouse.db_schema, limit=2, offset=4)
    assert [json.loads(r.raw_record)["id"] for r in second.rows] == [0]
    row = first.rows[0]
    assert row.failures == [{"check": "expect_column_values_to_match_regex", "column": "email"}]
    assert JWT not in row.raw_record and "not-an-email" in row.raw_record
    assert (
        row.run_id == "run-0" and row.interval_start == T0 and row.quarantined_at == T0 + timedelta(minutes=8)
    )
    assert row.as_dict()["page_url"] == "http://127.0.0.1:8903/api/customers?offset=0"
    one_run = read_quarantine(warehouse.engine, "customers", db_schema=warehouse.db_schema, run_id="run-2")
    assert one_run.total == 2 and {r.run_id for r in one_run.rows} == {"run-2"}


def test_no_quarantine_table_is_an_empty_page_and_bad_paging_is_named(warehouse) -> None:
    page = read_quarantine(warehouse.engine, "customers", db_schema=warehouse.db_schema)
    assert page.total == 0 and page.rows == ()
    with pytest.raises(ValueError, match="limit must be between 1 and 500, got 0"):
        read_quarantine(warehouse.engine, "customers", db_schema=warehouse.db_schema, limit=0)
    with pytest.raises(ValueError, match="offset must be 0 or more, got -1"):
        read_quarantine(warehouse.engine, "customers", db_schema=warehouse.db_schema, offset=-1)
