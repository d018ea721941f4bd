"""Case 1 of issue 9 on a real scheduler: windows that never got data, detected, alerted, filled.

A six-hour orders DAG (tests/e2e/dags/orders_coverage_e2e.py) gets a gap the way production
does: the run of 01:00 is marked success by hand (no task ran), then the UI's Backfill dialog
syncs 03:00 .. 06:00, and 00:00 and 02:00 never get a run. Nothing fails and nothing alerts. The
``sync_coverage`` DAG then names the gap on Slack and by email and, since the orders spec says
``coverage: {repair: backfill}``, backfills it through the REST API; afterwards the warehouse equals
the sandbox's ground truth for every one of the six windows, and a second check is silent.

(This stack's scheduler creates no scheduled runs, so the gap is made on demand; the scheduler's
own jump past the hours before a backfill is reproduced in test_catchup_jump.py, on a stack that
schedules.)
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.alerts.conftest import SLACK_TOKEN, SMTP_PASSWORD, slack_receiver, smtp_server
from tests.e2e.conftest import iso, wait_until
from tests.e2e.test_backfill import warehouse_orders

__all__ = ["slack_receiver", "smtp_server"]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "orders_coverage_e2e"
DAY = datetime(2026, 1, 7, tzinfo=UTC)
HOUR = timedelta(hours=1)
WINDOWS = [(DAY + h * HOUR, DAY + (h + 1) * HOUR) for h in range(6)]


def run_coverage_check(stack, dag_id: str = DAG_ID) -> dict[str, Any]:
    """A manual ``sync_coverage`` run checking ``dag_id`` only; waits until it succeeded."""
    response = stack.api(
        "POST", "/dags/sync_coverage/dagRuns", json={"logical_date": None, "conf": {"dag_ids": [dag_id]}}
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]

    def finished() -> dict[str, Any] | None:
        run = stack.api("GET", f"/dags/sync_coverage/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    run = wait_until(finished, f"sync_coverage run {run_id}", timeout_s=600)
    assert run["state"] == "success", run
    return run


def ledger(stack, last_logical_date: datetime = WINDOWS[-1][0]) -> Any:
    """The orders ledger of the stack's warehouse for the hourly windows from 00:00 on that day."""
    import sqlalchemy as sa
    from airflow.sdk import CronDataIntervalTimetable

    from apisync.coverage import read_ledger

    engine = sa.create_engine(f"sqlite:///{stack.home / 'warehouse.db'}")
    try:
        return read_ledger(
            engine,
            "orders",
            timetable=CronDataIntervalTimetable("@hourly", timezone="UTC"),
            start=DAY,
            end=last_logical_date,
            now=datetime.now(UTC),
            grace=timedelta(0),
        )
    finally:
        engine.dispose()


def add_alert_connections(stack, smtp, slack) -> None:
    connections = [
        {
            "connection_id": "slack_alerts",
            "conn_type": "slackwebhook",
            "host": slack.url,
            "password": SLACK_TOKEN,
        },
        {
            "connection_id": "smtp_alerts",
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": smtp.port,
            "login": "alerts-bot",
            "password": SMTP_PASSWORD,
            "extra": json.dumps(
                {
                    "disable_tls": True,
                    "disable_ssl": True,
                    "from_email": "airflow-alerts@example.test",
                    "to": "oncall@example.test",
                    "timeout": 10,
                    "retry_limit": 0,
                }
            ),
        },
    ]
    for body in connections:
        stack.api("DELETE", f"/connections/{body['connection_id']}")
        response = stack.api("POST", "/connections", json=body)
        assert response.status_code in (200, 201), response.text


def assert_warehouse_equals_truth(stack, windows: list[tuple[datetime, datetime]]) -> None:
    """Window by window, the warehouse's orders equal the sandbox's ground truth; no duplicates."""
    shop = stack.sandbox_urls["shop"]
    for start, end in windows:
        truth = requests.get(
            f"{shop}/_sandbox/truth/orders",
            params={"updated_gte": iso(start), "updated_lt": iso(end)},
            timeout=30,
        ).json()["records"]
        assert truth, f"the sandbox has no orders in {start:%H:%M}: the test would prove nothing"
        loaded = warehouse_orders(stack, iso(start)[:-1], iso(end)[:-1])
        assert [(r[0], r[1], r[2]) for r in loaded] == sorted(
            (r["id"], r["amount"], r["status"]) for r in truth
        ), f"window {start:%H:%M} differs from ground truth"
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        assert conn.execute("SELECT count(*) - count(DISTINCT id) FROM orders").fetchone()[0] == 0


@pytest.mark.timeout(1800)  # Airflow's start, two backfills and two checks on a loaded 2-core machine
def assert_one_coverage_alert(smtp, slack, *, windows: int, summary: str, dag_id: str) -> None:
    """Exactly one coverage alert on each channel, naming the gap, its DAG and the repair, and no
    credential."""
    assert len(slack.posts) == 1 and len(smtp.messages) == 1
    email = smtp.messages[0]
    for text in (email.subject + "\n" + email.body, json.dumps(slack.posts[0].json, ensure_ascii=False)):
        assert f"{windows} windows not synced in 1 stream" in text
        assert summary in text
        assert dag_id in text and "repair: backfill" in text
        assert SLACK_TOKEN not in text and SMTP_PASSWORD not in text


def repair_backfill(stack, dag_id: str, first_backfill: int) -> dict[str, Any]:
    """The one backfill the coverage check created (every backfill of the DAG but the test's own)."""
    backfills = stack.api("GET", "/backfills", params={"dag_id": dag_id}).json()["backfills"]
    repairs = [b for b in backfills if b["id"] != first_backfill]
    assert len(repairs) == 1, backfills
    return repairs[0]


def test_case1_windows_that_never_ran_are_detected_alerted_and_backfilled(
    airflow_stack, smtp_server, slack_receiver
) -> None:
    stack = airflow_stack
    stack.wait_for_dag(DAG_ID)
    stack.wait_for_dag("sync_coverage")
    add_alert_connections(stack, smtp_server, slack_receiver)
    try:
        _reproduce_detect_and_repair(stack, smtp_server, slack_receiver)
    finally:
        for conn_id in ("slack_alerts", "smtp_alerts"):
            stack.api("DELETE", f"/connections/{conn_id}")


def _reproduce_detect_and_repair(stack, smtp, slack) -> None:
    # The gap. While the DAG is paused, a run of 01:00 is created and marked success by hand.
    assert stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True}).status_code == 200
    marked = stack.api(
        "POST",
        f"/dags/{DAG_ID}/dagRuns",
        json={
            "dag_run_id": "marked_success_by_hand",
            "logical_date": iso(WINDOWS[1][0]),
            "data_interval_start": iso(WINDOWS[1][0]),
            "data_interval_end": iso(WINDOWS[1][1]),
        },
    )
    assert marked.status_code == 200, marked.text
    patched = stack.api("PATCH", f"/dags/{DAG_ID}/dagRuns/marked_success_by_hand", json={"state": "success"})
    assert patched.status_code == 200, patched.text
    # Then the UI's Backfill dialog: three hourly intervals, 03:00 .. 05:00.
    assert stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
    backfill = stack.api(
        "POST",
        "/backfills",
        json={
            "dag_id": DAG_ID,
            "from_date": iso(WINDOWS[3][0]),
            "to_date": iso(WINDOWS[5][0]),
            "reprocess_behavior": "none",
            "max_active_runs": 3,
        },
    )
    assert backfill.status_code == 200, backfill.text
    first_backfill = backfill.json()["id"]
    stack.wait_for_backfill(first_backfill)
    runs = stack.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]
    assert {r["state"] for r in runs} == {"success"}, [(r["dag_run_id"], r["state"]) for r in runs]

    # Every run is green, and nothing said a word. The ledger knows better.
    before = ledger(stack)
    assert before.summary() == "orders: 3 windows never ran, 2026-01-07T00:00Z → 2026-01-07T03:00Z"
    assert smtp.messages == [] and slack.posts == []

    # Detected and alerted ...
    assert stack.api("PATCH", "/dags/sync_coverage", json={"is_paused": False}).status_code == 200
    run_coverage_check(stack)
    assert_one_coverage_alert(
        smtp,
        slack,
        windows=3,
        summary="orders: 3 windows never ran, 2026-01-07T00:00Z → 2026-01-07T03:00Z",
        dag_id=DAG_ID,
    )

    # ... and repaired: one backfill of the gap, through the REST API.
    repair = repair_backfill(stack, DAG_ID, first_backfill)
    assert repair["from_date"].startswith("2026-01-07T00:00") and repair["to_date"].startswith(
        "2026-01-07T02:00"
    )
    # The 01:00 run is success in Airflow without a synced window: "none" would skip it.
    assert repair["reprocess_behavior"] == "completed"
    stack.wait_for_backfill(repair["id"])

    # Filled: every window synced, and the warehouse equals the ground truth window by window.
    after = ledger(stack)
    assert after.summary() == "orders: 6/6 windows synced", after.summary()
    assert_warehouse_equals_truth(stack, WINDOWS)

    # A second check finds nothing to say.
    run_coverage_check(stack)
    assert len(slack.posts) == 1 and len(smtp.messages) == 1
