"""sync_stream inside a real DAG run (dag.test): extract -> normalize -> validate -> load -> audit."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.http.conftest import dag_in_a_folder

pytestmark = pytest.mark.slow


DAG_FILE = """
from datetime import UTC, datetime

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from apisync.pipeline import sync_stream

with DAG(
    "test_apisync_sync_orders",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 12, 1, tzinfo=UTC),
    catchup=False,
    params={
        "window_start": Param(None, type=["null", "string"]),
        "window_end": Param(None, type=["null", "string"]),
        "replay_raw": Param(False, type="boolean"),
    },
) as dag:
    sync_stream("orders", source_conn_id="shop_api", warehouse_conn_id="warehouse_test")
"""


def _dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return dag_in_a_folder(tmp_path, monkeypatch, "apisync_test_orders.py", DAG_FILE)[0]


def _connect(box: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point shop_api at the sandbox and warehouse_test at a SQLite file; return that file."""
    source = {
        "conn_type": "http",
        "host": box.url,
        "password": "sandbox-key",
        "extra": {"auth": {"type": "api_key"}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_API", json.dumps(source))
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_TEST", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")
    return database


def test_dag_run_loads_the_data_interval_and_audits_it(
    airflow_db: Path,
    sandbox: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = sandbox(records=400, max_page_size=100)
    database = _connect(box, tmp_path, monkeypatch)

    dag = _dag(tmp_path, monkeypatch)
    load_task = dag.get_task("sync_orders.load")
    assert [outlet.uri for outlet in load_task.outlets] == ["warehouse://orders/"]

    run = dag.test(logical_date=datetime(2026, 1, 3, tzinfo=UTC))
    assert run.state == "success", [(ti.task_id, ti.state) for ti in run.get_task_instances()]
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        ids = {row[0] for row in conn.execute(sa.text("SELECT id FROM orders"))}
        audit = conn.execute(
            sa.text(
                "SELECT status, records_pulled, records_inserted, api_calls, interval_start, interval_end"
                " FROM sync_runs"
            )
        ).all()
    assert len(audit) == 1
    status, pulled, inserted, api_calls, interval_start, interval_end = audit[0]
    # A manual run at 2026-01-03 covers the last complete daily interval: [01-02, 01-03).
    assert (str(interval_start)[:19], str(interval_end)[:19]) == (
        "2026-01-02 00:00:00",
        "2026-01-03 00:00:00",
    )
    truth = box.truth("orders", updated_gte="2026-01-02T00:00:00Z", updated_lt="2026-01-03T00:00:00Z")
    assert ids == {record["id"] for record in truth} and ids
    assert (status, pulled, inserted) == ("success", len(truth), len(truth))
    assert api_calls >= 1
    # The run's extract attempt staged into a directory of its own: <window>/<run id>/try-1.
    window_dir = tmp_path / "staging" / "orders" / "20260102T000000Z_20260103T000000Z"
    assert [p.relative_to(window_dir).parts[1:] for p in window_dir.glob("*/*/raw/_extract.json")] == [
        ("try-1", "raw", "_extract.json")
    ]

    # Replay the same window from its raw files: no API call, the table is unchanged.
    before = box.stats()["requests"]
    replay = dag.test(
        logical_date=datetime(2026, 1, 3, 12, tzinfo=UTC),
        run_conf={
            "window_start": "2026-01-02T00:00:00Z",
            "window_end": "2026-01-03T00:00:00Z",
            "replay_raw": True,
        },
    )
    assert replay.state == "success"
    assert box.stats()["requests"] == before
    assert len(list(window_dir.glob("*/try-1/raw/_extract.json"))) == 2  # the replay's own copy
    with engine.connect() as conn:
        runs = conn.execute(
            sa.text("SELECT status, records_inserted, records_unchanged FROM sync_runs ORDER BY id")
        ).all()
    assert runs[-1] == ("success", 0, len(truth))
    engine.dispose()


def test_failed_load_is_audited_with_the_error(
    airflow_db: Path,
    sandbox: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = sandbox(records=200, max_page_size=100)
    database = _connect(box, tmp_path, monkeypatch)
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:  # someone else's table: amount is text, the stream delivers integers
        conn.execute(sa.text("CREATE TABLE orders (id TEXT PRIMARY KEY, amount TEXT)"))

    dag = _dag(tmp_path, monkeypatch)
    run = dag.test(logical_date=datetime(2026, 1, 3, tzinfo=UTC))
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "failed"
    assert states["sync_orders.load"] == "failed" and states["sync_orders.validate"] == "success"
    with engine.connect() as conn:
        audit = conn.execute(sa.text("SELECT status, records_pulled, api_calls, error FROM sync_runs")).all()
        assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == 0
    assert len(audit) == 1
    status, pulled, api_calls, error = audit[0]
    assert status == "failed" and pulled > 0 and api_calls >= 1
    assert "sync_orders.load: SchemaEvolutionError" in error and "'amount'" in error
    engine.dispose()


def test_case2_repeats_dropped_while_paging_are_counted_in_the_audit(
    airflow_db: Path,
    sandbox: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every page after the first starts with the previous page's last order again, byte for byte:
    # the paginator drops it, and the audit row counts it (extract -> XCom -> load).
    box = sandbox(records=2500, max_page_size=100, fault_repeat=1.0)
    database = _connect(box, tmp_path, monkeypatch)
    run = _dag(tmp_path, monkeypatch).test(logical_date=datetime(2026, 1, 3, tzinfo=UTC))
    assert run.state == "success", [(ti.task_id, ti.state) for ti in run.get_task_instances()]
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        audit = conn.execute(
            sa.text(
                "SELECT records_pulled, records_repeated, records_deduped, records_inserted,"
                " records_quarantined FROM sync_runs"
            )
        ).all()
    engine.dispose()
    truth = box.truth("orders", updated_gte="2026-01-02T00:00:00Z", updated_lt="2026-01-03T00:00:00Z")
    assert len(truth) > 200  # three pages or more
    [(pulled, repeated, deduped, inserted, quarantined)] = audit
    assert repeated == box.stats()["faults"]["repeat"] > 0
    assert (inserted, deduped, quarantined) == (len(truth), 0, 0)
    assert pulled == inserted + repeated
