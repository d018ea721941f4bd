"""``status`` through its argparse registration, against a real SQLite warehouse and the project DAGs."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from apisync.cli.status import HEADERS, register
from apisync.load.audit import RunRecord, record_run

T0 = datetime(2026, 1, 2, 9, tzinfo=UTC)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m apisync")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["status", *argv])


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path) -> sa.Engine:
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    engine = sa.create_engine(f"sqlite:///{path}")
    for hour, (status, pulled) in enumerate([("success", 30), ("success", 42)]):
        record_run(
            engine,
            RunRecord(
                "orders",
                T0 + hour * timedelta(hours=1),
                T0 + (hour + 1) * timedelta(hours=1),
                f"backfill__{hour}",
                status,
                records_pulled=pulled,
                records_inserted=pulled - 5,
                records_updated=3,
                records_quarantined=2,
                api_calls=7,
                api_429s=hour,
                throttled_seconds=1.25,
            ),
        )
    record_run(engine, RunRecord("contacts_to_crm", T0, T0 + timedelta(hours=1), "m", "failed", error="boom"))
    yield engine
    engine.dispose()


def test_status_prints_the_last_run_of_each_stream_and_fails_while_windows_are_missing(
    warehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parse()
    assert args.func(args) == 1  # most windows since START_DATE never ran, and the CRM push failed
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("stream"))
    assert all(name in header for name in HEADERS)
    orders = next(line for line in lines if line.lstrip().startswith("orders "))
    cells = orders.split()
    assert cells[:3] == ["orders", "orders_to_warehouse", cells[2]]
    assert "success" in cells and "2026-01-02T10:00Z" in cells and "2026-01-02T11:00Z" in cells
    # pulled 42, loaded 37 + 3, quarantined 2, 7 calls, one 429, 1.2 s throttled, no latency columns
    numbers = cells[cells.index("2026-01-02T11:00Z") + 1 :]
    assert numbers[:9] == ["42", "40", "2", "7", "1", "1.2", "—", "—", "—"], orders
    assert numbers[9] == "0/2" and numbers[10] == "2"  # failed/recent runs; windows synced
    crm = next(line for line in lines if line.lstrip().startswith("contacts_to_crm"))
    assert "failed" in crm.split() and "—" in crm.split()
    issues = next(line for line in lines if line.lstrip().startswith("issues "))
    assert "never ran" in issues


def test_status_json_for_one_stream_and_an_unknown_stream_is_named(warehouse, capsys) -> None:
    args = _parse("orders", "--json")
    assert args.func(args) == 1
    (orders,) = json.loads(capsys.readouterr().out)
    assert orders["last_run"]["records_pulled"] == 42 and orders["last_run"]["records_loaded"] == 40
    assert orders["runs"] == 2 and orders["coverage"]["synced"] == 2 and orders["coverage"]["never ran"] > 0
    args = _parse("ordrs")
    assert args.func(args) == 2
    assert "no such stream: ordrs" in capsys.readouterr().err
