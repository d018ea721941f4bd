"""Bad rows go to quarantine with raw record and reasons; too many of them fail the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apisync.quality import BatchValidationError, QuarantineThresholdError, validate
from apisync.spec import load_spec
from apisync.staging.raw_pages import extract_to_files, write_page
from apisync.transform import normalize_files
from tests.load.datapath_fixtures import WINDOW, Target, sync_records
from tests.transform.order_records import make_orders, pages_of


def test_quarantine_keeps_raw_record_and_failing_expectations(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders")
    records = make_orders(400)
    records[7]["customer"]["email"] = "not-an-email"
    records[7]["amount"] = -5
    records[123]["created"] = "yesterday"
    records[250]["id"] = None
    run = sync_records(spec, records, warehouse, tmp_path / "stage")
    assert run.validated.quarantined == 3
    rows = warehouse.rows(
        "SELECT record_key, raw_page, raw_line, raw_record, failures, run_id"
        f" FROM {warehouse.table('quarantine')} ORDER BY raw_page, raw_line"
    )
    assert len(rows) == 3
    by_line = {
        (page, line): (key, json.loads(raw), failures, run_id)
        for key, page, line, raw, failures, run_id in rows
    }
    key, raw, failures, run_id = by_line[(1, 7)]
    assert json.loads(key) == {"id": "ord_000008"}
    assert raw == records[7]
    assert run_id == "run-1"
    failures = failures if isinstance(failures, list) else json.loads(failures)
    assert {f["expectation"] for f in failures} == {
        "expect_column_values_to_match_regex",
        "expect_column_values_to_be_between",
    }
    assert any(f["value"] == "not-an-email" for f in failures)
    _, raw, failures, _ = by_line[(2, 23)]
    assert raw["created"] == "yesterday"
    failures = failures if isinstance(failures, list) else json.loads(failures)
    assert failures[0] == {"check": "coercion", "message": "created: not a epoch_s timestamp"}
    _, raw, failures, _ = by_line[(3, 50)]
    assert raw["id"] is None
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('orders')}") == 397

    # A replay of the window replaces (does not duplicate) its quarantine rows.
    sync_records(spec, records, warehouse, tmp_path / "stage", run_id="run-2")
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('quarantine')}") == 3


def test_quarantine_share_above_threshold_fails_but_keeps_the_evidence(
    warehouse: Target, tmp_path: Path
) -> None:
    spec = load_spec("orders")
    records = make_orders(100)
    for record in records[:6]:
        record["currency"] = "zzz"
    with pytest.raises(
        QuarantineThresholdError, match=r"6 of 100 records quarantined \(6.00%\), above"
    ) as info:
        sync_records(spec, records, warehouse, tmp_path / "stage")
    # What the alert lists: the failing expectation, its column and how many rows it rejected.
    assert {
        "expectation": "expect_column_values_to_be_in_set",
        "column": "currency",
        "unexpected_count": 6,
    } in (info.value.failures)
    from apisync.alerts import quality_failures

    assert any("currency" in line and "6" in line for line in quality_failures(info.value))
    assert not warehouse.has_table("orders")
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('quarantine')}") == 6
    status, quarantined, error = warehouse.rows(
        f"SELECT status, records_quarantined, error FROM {warehouse.table('sync_runs')}"
    )[0]
    assert (status, quarantined) == ("failed", 6)
    assert "QuarantineThresholdError" in error


def test_table_level_failure_fails_the_batch(tmp_path: Path) -> None:
    spec = load_spec("orders")
    suite = tmp_path / "orders.json"
    suite.write_text(
        json.dumps(
            {
                "name": "orders",
                "expectations": [
                    {
                        "type": "expect_table_row_count_to_be_between",
                        "kwargs": {"min_value": 1, "max_value": 10},
                    },
                ],
            }
        )
    )
    extract_to_files(pages_of(make_orders(50)), tmp_path / "raw")
    from datetime import UTC, datetime

    from apisync.transform import Lineage

    normalize_files(spec, tmp_path / "raw", tmp_path / "norm", Lineage("t", "r", *WINDOW, datetime.now(UTC)))
    with pytest.raises(
        BatchValidationError, match=r"expect_table_row_count_to_be_between.*observed 50"
    ) as info:
        validate(spec, tmp_path / "norm", tmp_path / "raw", tmp_path / "valid", suite_file=suite)
    assert [f["expectation"] for f in info.value.failures] == ["expect_table_row_count_to_be_between"]


def test_malformed_json_line_is_quarantined_not_dropped(warehouse: Target, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from apisync.load import load
    from apisync.quality.quarantine import quarantine_writer
    from apisync.staging.raw_pages import write_manifest
    from apisync.transform import Lineage

    spec = load_spec("orders")
    raw = tmp_path / "raw"
    write_page(raw, 1, make_orders(20))
    # A page whose second line is cut in half (what a truncated body would leave).
    import gzip

    lines = [json.dumps(r).encode() for r in make_orders(3, start=20)]
    lines[1] = lines[1][:40]
    (raw / "page-000002.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines)))
    write_manifest(raw)
    normalized = normalize_files(spec, raw, tmp_path / "norm", Lineage("t", "r", *WINDOW, datetime.now(UTC)))
    assert normalized.pulled == 23
    result = validate(spec, tmp_path / "norm", raw, tmp_path / "valid")
    assert (result.valid, result.quarantined) == (22, 1)
    writer = quarantine_writer(spec, tmp_path / "valid", window=WINDOW, db_schema=warehouse.db_schema)
    loaded = load(
        spec,
        warehouse.engine,
        tmp_path / "valid",
        window=WINDOW,
        run_id="r",
        db_schema=warehouse.db_schema,
        quarantine_writer=writer,
    )
    assert loaded.inserted == 22
    raw_record, failures = warehouse.rows(
        f"SELECT raw_record, failures FROM {warehouse.table('quarantine')}"
    )[0]
    assert raw_record == lines[1].decode()
    assert "invalid JSON" in str(failures)


def test_case10_quarantine_failures_are_a_json_array_in_postgres(
    postgres_url: str, pg_schema: str, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    target = Target(sa.create_engine(postgres_url), pg_schema)
    records = make_orders(100)
    records[3]["amount"] = -5
    sync_records(load_spec("orders"), records, target, tmp_path / "stage")
    rows = target.rows(
        f"SELECT jsonb_typeof(failures), failures->0->>'check', failures->0->>'expectation'"
        f" FROM {target.table('quarantine')}"
    )
    assert rows == [("array", "expectation", "expect_column_values_to_be_between")]
    target.engine.dispose()
