"""The real orders DAG against a hostile API: 0 lost, 0 duplicated.

The sandbox serves 10 % 5xx, 1 % hung requests (timeouts), 1 % truncated JSON pages, records
repeated across page boundaries, and a 429 storm opened by every 12th request (counted by the
sandbox, so storms hit however fast or slow the machine is). Three hourly runs
must leave the warehouse equal to the sandbox's ground truth for those hours.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scripts.localstack import run_dag_once

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIRST_INTERVAL = datetime(2026, 1, 4, 6, tzinfo=UTC)
HOURS = 3


def test_orders_dag_survives_faults_with_nothing_lost_or_duplicated(
    airflow_db: Path, sandbox: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = sandbox(
        records=250_000,  # ~1,500 orders an hour: about 15 pages per run, so the fault rates really bite
        rate=40,
        burst=10,
        ratelimit_headers="ietf",
        fault_5xx=0.10,
        fault_timeout=0.01,
        timeout_hang_s=4,
        fault_malformed=0.01,
        fault_repeat=0.10,
        storm_every=12,
        storm_s=1.5,
        seed=7,
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SHOP_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": box.url,
                "password": box.api_key,
                "extra": {
                    "auth": {"type": "bearer"},
                    "rate_limit_headers": "ietf",
                    "timeout": {"connect": 2, "read": 2},
                    "max_attempts": 12,
                },
            }
        ),
    )
    warehouse = tmp_path / "warehouse.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
    )
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(Path(__file__).parents[2] / "dags" / "orders_to_warehouse.py")).dags[
        "orders_to_warehouse"
    ]

    runs = [run_dag_once(dag, FIRST_INTERVAL + timedelta(hours=hour + 1)) for hour in range(HOURS)]
    assert [str(run.state) for run in runs] == ["success"] * HOURS

    end = FIRST_INTERVAL + timedelta(hours=HOURS)
    truth = box.truth("orders", updated_gte=FIRST_INTERVAL.isoformat(), updated_lt=end.isoformat())
    with sqlite3.connect(warehouse) as conn:
        rows = conn.execute("SELECT id, amount, status FROM orders").fetchall()
        audit = conn.execute(
            "SELECT sum(records_pulled), sum(records_deduped), sum(records_quarantined), sum(api_calls),"
            " sum(api_429s), sum(throttled_seconds) FROM sync_runs WHERE status = 'success'"
        ).fetchone()
    loaded = {row[0]: (row[1], row[2]) for row in rows}
    expected = {record["id"]: (record["amount"], record["status"]) for record in truth}
    lost = set(expected) - set(loaded)
    extra = set(loaded) - set(expected)
    duplicated = len(rows) - len(loaded)
    stats = box.stats()
    print(
        f"\nFAULTS pulled={audit[0]} deduped={audit[1]} quarantined={audit[2]} loaded={len(loaded)} "
        f"truth={len(expected)} lost={len(lost)} duplicated={duplicated} extra={len(extra)} "
        f"api_calls={audit[3]} r429_seen={audit[4]} throttled_s={audit[5]:.1f} "
        f"served={stats['requests']} by_status={stats['by_status']} faults={stats['faults']}"
    )
    assert len(expected) > 100, "too few records for the faults to matter"
    assert not lost and not extra and duplicated == 0
    assert loaded == expected
    assert stats["faults"].get("repeat", 0) > 0, "no page boundary repeated a record"
    served = stats["by_status"]
    assert int(served.get("429", 0)) > 0, "no 429 storm hit the run"
    assert sum(int(served.get(code, 0)) for code in ("500", "502", "503")) > 0
