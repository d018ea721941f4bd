"""Backfills through the REST API, exactly as the UI does them, against a real scheduler.

Three hourly intervals of `orders_to_warehouse` are backfilled; the warehouse must then equal the
sandbox's ground truth for those intervals. A second backfill that reprocesses the completed
intervals must change nothing: no duplicates, same content.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from datetime import datetime

import pytest
import requests

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "orders_to_warehouse"
FROM_DATE = "2026-01-02T09:00:00Z"
TO_DATE = "2026-01-02T11:00:00Z"


def _epoch(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def run_backfill(stack, reprocess_behavior: str, timeout_s: float = 900) -> list[dict]:
    response = stack.api(
        "POST",
        "/backfills",
        json={
            "dag_id": DAG_ID,
            "from_date": FROM_DATE,
            "to_date": TO_DATE,
            "reprocess_behavior": reprocess_behavior,
            "max_active_runs": 3,
        },
    )
    assert response.status_code == 200, response.text
    backfill_id = response.json()["id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stack.api("GET", f"/backfills/{backfill_id}").json().get("completed_at"):
            break
        time.sleep(3)
    else:
        pytest.fail(f"backfill {backfill_id} not completed within {timeout_s}s")
    runs = stack.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100, "run_type": "backfill"})
    runs.raise_for_status()
    return [r for r in runs.json()["dag_runs"] if r.get("backfill_id") in (backfill_id, None)]


def warehouse_orders(stack, start: str, end: str) -> list[tuple]:
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        return conn.execute(
            "SELECT id, amount, status, updated FROM orders WHERE updated >= ? AND updated < ? ORDER BY id",
            (start.replace("T", " ").rstrip("Z"), end.replace("T", " ").rstrip("Z")),
        ).fetchall()


def test_backfill_three_hours_equals_ground_truth_and_reprocessing_changes_nothing(airflow_stack) -> None:
    stack = airflow_stack
    stack.wait_for_dag(DAG_ID)
    assert stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200

    runs = run_backfill(stack, "none")
    assert len(runs) == 3, runs
    assert {r["state"] for r in runs} == {"success"}, [(r["run_id"], r["state"]) for r in runs]
    start = min(r["data_interval_start"] for r in runs)
    end = max(r["data_interval_end"] for r in runs)
    assert start.startswith("2026-01-02T09:00") and end.startswith("2026-01-02T12:00"), (start, end)

    shop = stack.sandbox_urls["shop"]
    truth = requests.get(
        f"{shop}/_sandbox/truth/orders",
        params={"updated_gte": "2026-01-02T09:00:00Z", "updated_lt": "2026-01-02T12:00:00Z"},
        timeout=30,
    ).json()["records"]
    assert truth, "the sandbox has no orders in the backfilled window: the test would prove nothing"
    expected = sorted((r["id"], r["amount"], r["status"], r["updated"]) for r in truth)
    loaded = warehouse_orders(stack, "2026-01-02T09:00:00", "2026-01-02T12:00:00")
    assert [row[0] for row in loaded] == [row[0] for row in expected], "ids differ from ground truth"
    assert [(r[1], r[2]) for r in loaded] == [(e[1], e[2]) for e in expected]
    assert all(
        _epoch(r[3].replace(" ", "T")[:19] + "Z") == e[3] for r, e in zip(loaded, expected, strict=True)
    )

    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        before = conn.execute("SELECT * FROM orders ORDER BY id").fetchall()
        before_items = conn.execute("SELECT count(*) FROM order_items").fetchone()[0]
    digest_before = hashlib.sha256(repr([row[:15] for row in before]).encode()).hexdigest()

    rerun = run_backfill(stack, "completed")
    assert {r["state"] for r in rerun} == {"success"}
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        after = conn.execute("SELECT * FROM orders ORDER BY id").fetchall()
        after_items = conn.execute("SELECT count(*) FROM order_items").fetchone()[0]
        duplicates = conn.execute("SELECT count(*) - count(DISTINCT id) FROM orders").fetchone()[0]
    assert duplicates == 0
    assert len(after) == len(before) and after_items == before_items
    # Business columns identical (lineage columns like _run_id legitimately move to the new run).
    assert hashlib.sha256(repr([row[:15] for row in after]).encode()).hexdigest() == digest_before
