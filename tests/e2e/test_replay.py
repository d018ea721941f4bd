"""Replay a window from its staged raw files, and the CLI around it, on a real scheduler.

``python -m apisync replay`` clears the window's run from normalize onward: the run succeeds
again, the sandbox sees no new request, the warehouse keeps its rows (no duplicate) and the run
gets a new ``sync_runs`` row. A run with a data interval (a backfill of orders, ``START`` form)
and a run with a conf window of the sliced customers stream (four mapped slices, ``START/END``)
are replayed; a window without a run, a run still queued and a run whose raw files were deleted
are refused, each saying why. ``gaps`` lists the ledger around the synced window (on a stack of
its own, so that no other test's run is in it). On another stack of its own, the use case whole:
a too-strict suite quarantines a window, the suite is fixed, the replay loads the window.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.alerts.conftest import SLACK_TOKEN, slack_receiver
from tests.cli.conftest import CliResult, run_cli
from tests.e2e.conftest import E2E_DAGS, REPO_ROOT, running_airflow, throwaway_database, wait_until

__all__ = ["slack_receiver"]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

START, END = "2026-01-03T10:00:00Z", "2026-01-03T11:00:00Z"


def _cli(stack, *args: str) -> CliResult:
    result = run_cli(*args, env=stack.env, timeout_s=1200)
    print(f"$ python -m apisync {' '.join(args)}  # exit {result.code}\n{result.output}")  # shown by -s
    return result


def _finished_run(stack, dag_id: str, run_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        run = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    return wait_until(finished, f"{dag_id} run {run_id} to finish", timeout_s=900)


def _sandbox_requests(stack, source: str) -> int:
    return int(requests.get(f"{stack.sandbox_urls[source]}/_sandbox/stats", timeout=30).json()["requests"])


def _rows(stack, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        return conn.execute(sql, params).fetchall()


def _sync_runs(stack, stream: str, run_id: str | None = None) -> list[tuple]:
    """The stream's ``sync_runs`` rows (only ``run_id``'s when given), oldest first."""
    sql = "SELECT run_id, status, records_pulled FROM sync_runs WHERE stream = ?"
    if run_id is None:
        return _rows(stack, f"{sql} ORDER BY id", stream)
    return _rows(stack, f"{sql} AND run_id = ? ORDER BY id", stream, run_id)


def _business_rows(stack, table: str) -> list[tuple]:
    """Every row without the lineage columns (``_run_id``, ``_loaded_at``... move to the replay)."""
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        columns = [
            row[1] for row in conn.execute(f"PRAGMA table_info({table})") if not row[1].startswith("_")
        ]
        return sorted(conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)


def _staging_dir_of(stack, dag_id: str, run_id: str, task_id: str) -> Path:
    entry = stack.api(
        "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    ).json()
    return Path(str(entry["value"]["staging_dir"]).removeprefix("file://"))


@pytest.fixture
def orders_stack(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Any]:
    """A stack of its own for the orders replay: its ledger and ``sync_runs`` hold only this
    test's runs (on the shared stack other tests backfill orders windows too). The e2e coverage
    DAG is there as the second DAG syncing orders."""
    home = tmp_path_factory.mktemp("airflow-home-orders-replay")
    dag_files = [REPO_ROOT / "dags" / "orders_to_warehouse.py", E2E_DAGS / "orders_coverage_e2e.py"]
    with (
        throwaway_database(postgres_url) as metadata_url,
        running_airflow(home, metadata_url, dag_files=dag_files, scheduled_runs=False) as stack,
    ):
        yield stack


@pytest.mark.timeout(2400)
def test_replay_of_a_backfilled_orders_window_calls_no_api_and_duplicates_nothing(orders_stack) -> None:
    stack = orders_stack
    dag_id = "orders_to_warehouse"
    stack.wait_for_dag(dag_id)
    assert stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).status_code == 200
    backfill = stack.api(
        "POST",
        "/backfills",
        json={"dag_id": dag_id, "from_date": START, "to_date": START, "reprocess_behavior": "none"},
    )
    assert backfill.status_code == 200, backfill.text
    stack.wait_for_backfill(backfill.json()["id"])
    runs = stack.api("GET", f"/dags/{dag_id}/dagRuns", params={"run_type": "backfill"}).json()["dag_runs"]
    (run,) = [r for r in runs if r["data_interval_start"].startswith("2026-01-03T10:00")]
    assert run["state"] == "success", run
    run_id = run["dag_run_id"]

    requests_before = _sandbox_requests(stack, "shop")
    orders_before, items_before = _business_rows(stack, "orders"), _business_rows(stack, "order_items")
    audit_before = _sync_runs(stack, "orders")
    assert orders_before and audit_before == [(run_id, "success", audit_before[0][2])]

    # Two DAGs of this stack sync orders (the e2e coverage DAG too): the CLI asks which.
    ambiguous = _cli(stack, "replay", "orders", START)
    assert ambiguous.code == 2 and "--dag" in ambiguous.stderr, ambiguous.output

    # Paused, the cleared run stays queued: a second replay is refused until it has run.
    assert stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True}).status_code == 200
    replayed = _cli(stack, "replay", "orders", START, "--dag", dag_id)
    assert replayed.code == 0, replayed.output
    assert run_id in replayed.stdout and "the DAG is paused" in replayed.stdout
    for task in ("sync_orders.normalize", "sync_orders.validate", "sync_orders.load"):
        assert task in replayed.stdout
    assert "sync_orders.extract" not in replayed.stdout
    again = _cli(stack, "replay", "orders", f"{START}/{END}", "--dag", dag_id)
    assert again.code == 1 and "is still queued" in again.stderr, again.output
    assert stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).status_code == 200
    assert _finished_run(stack, dag_id, run_id)["state"] == "success"

    assert _sandbox_requests(stack, "shop") == requests_before, "the replay called the source API"
    assert _business_rows(stack, "orders") == orders_before
    assert _business_rows(stack, "order_items") == items_before
    assert _rows(stack, "SELECT count(*) - count(DISTINCT id) FROM orders") == [(0,)]
    assert _sync_runs(stack, "orders") == [*audit_before, (run_id, "success", audit_before[0][2])]

    # The ledger: this window synced, the hours around it never ran; exit code 1 (gaps exist).
    gaps = _cli(stack, "gaps", "orders", "--dag", dag_id)
    assert gaps.code == 1, gaps.output
    assert "never ran" in gaps.stdout
    assert "2026-01-01T00:00Z   2026-01-03T10:00Z" in gaps.stdout, gaps.stdout
    assert "2026-01-03T11:00Z" in gaps.stdout
    summary = next(line for line in gaps.stdout.splitlines() if line.strip().startswith("orders "))
    assert summary.split()[1] == dag_id and summary.split()[3] == "1", summary  # 1 window synced

    nothing = _cli(stack, "replay", "orders", "2026-01-03T12:00:00Z", "--dag", dag_id)
    assert nothing.code == 1 and "no DAG run has the window" in nothing.stderr, nothing.output

    shutil.rmtree(_staging_dir_of(stack, dag_id, run_id, "sync_orders.extract"))
    gone = _cli(stack, "replay", "orders", START, "--dag", dag_id)
    assert gone.code == 1, gone.output
    assert "are gone" in gone.stderr and "fresh run" in gone.stderr and "backfill" in gone.stderr
    assert _finished_run(stack, dag_id, run_id)["state"] == "success"  # nothing was cleared


def _trigger_window(stack: Any, dag_id: str) -> str:
    """A manual run of ``dag_id`` over START..END (the window as conf, no logical date)."""
    triggered = stack.api(
        "POST",
        f"/dags/{dag_id}/dagRuns",
        json={"logical_date": None, "conf": {"window_start": START, "window_end": END}},
    )
    assert triggered.status_code == 200, triggered.text
    return str(triggered.json()["dag_run_id"])


@pytest.mark.timeout(2400)
def test_replay_of_a_sliced_conf_window_reruns_every_slice_from_its_raw_pages(airflow_stack) -> None:
    stack = airflow_stack
    dag_id = "customers_to_warehouse"
    stack.wait_for_dag(dag_id)
    stack.api("POST", "/pools", json={"name": "accounts_api", "slots": 2})  # what `make run` imports
    assert stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).status_code == 200
    run_id = _trigger_window(stack, dag_id)
    assert _finished_run(stack, dag_id, run_id)["state"] == "success"

    requests_before = _sandbox_requests(stack, "accounts")
    customers_before = _business_rows(stack, "customers")
    quarantine_before = _rows(stack, "SELECT count(*) FROM quarantine")
    audit_before = _sync_runs(stack, "customers", run_id)
    assert customers_before and len(audit_before) == 4  # one row per slice

    replayed = _cli(stack, "replay", "customers", f"{START}/{END}", "--wait")
    assert replayed.code == 0, replayed.output
    assert f"run {run_id} ended success" in replayed.stdout
    assert "cleared 12 task instances" in replayed.stdout  # 4 slices x normalize, validate, load
    assert "from 4 staged raw extractions" in replayed.stdout

    assert _sandbox_requests(stack, "accounts") == requests_before, "the replay called the source API"
    assert _business_rows(stack, "customers") == customers_before
    assert _rows(stack, "SELECT count(*) FROM quarantine") == quarantine_before
    audit_after = _sync_runs(stack, "customers", run_id)
    assert audit_after[:4] == audit_before
    assert sorted(audit_after[4:]) == sorted(audit_before)  # a new row per slice, same counts


def test_test_alert_reads_a_connection_added_in_airflow(airflow_stack, slack_receiver) -> None:
    """A channel defined in the metadata DB (the UI's Connections page), not in the environment."""
    stack = airflow_stack
    body = {
        "connection_id": "slack_alerts",
        "conn_type": "slackwebhook",
        "host": slack_receiver.url,
        "password": SLACK_TOKEN,
    }
    stack.api("DELETE", "/connections/slack_alerts")
    assert stack.api("POST", "/connections", json=body).status_code in (200, 201)
    try:
        result = _cli(stack, "test-alert", "--smtp-conn-id", "")
    finally:
        stack.api("DELETE", "/connections/slack_alerts")
    assert result.code == 0, result.output
    assert "delivered" in result.stdout and SLACK_TOKEN not in result.output
    assert len(slack_receiver.posts) == 1


@pytest.fixture(scope="module")
def stack_with_own_include(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Any]:
    """A stack of its own (orders only) whose specs and suites are a copy the test may edit."""
    include = tmp_path_factory.mktemp("include") / "include"
    shutil.copytree(REPO_ROOT / "include", include)
    home = tmp_path_factory.mktemp("airflow-home-replay")
    with pytest.MonkeyPatch.context() as patch, throwaway_database(postgres_url) as metadata_url:
        patch.setenv("APISYNC_INCLUDE_DIR", str(include))
        dag_files = [REPO_ROOT / "dags" / "orders_to_warehouse.py"]
        with running_airflow(home, metadata_url, dag_files=dag_files, scheduled_runs=False) as stack:
            stack.include = include  # type: ignore[attr-defined]
            yield stack


@pytest.mark.timeout(2400)
def test_a_window_quarantined_by_a_bad_suite_loads_after_the_fix_and_a_replay(stack_with_own_include) -> None:
    """The use case: a too-strict suite quarantines most of a window (the run fails on its
    threshold, nothing is loaded); the suite is fixed; the replay loads the window, from the raw
    pages the failed run staged, equal to the sandbox's ground truth."""
    stack = stack_with_own_include
    dag_id = "orders_to_warehouse"
    suite = stack.include / "expectations" / "orders.json"
    good = suite.read_text()
    strict = json.loads(good)
    for expectation in strict["expectations"]:
        if expectation["kwargs"].get("column") == "currency":
            expectation["kwargs"]["value_set"] = ["usd"]  # the mistake: one currency only
    suite.write_text(json.dumps(strict))
    stack.wait_for_dag(dag_id)
    assert stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).status_code == 200
    run_id = _trigger_window(stack, dag_id)
    assert _finished_run(stack, dag_id, run_id)["state"] == "failed"
    assert _sync_runs(stack, "orders") == [
        (run_id, "quarantine_threshold_exceeded", _sync_runs(stack, "orders")[0][2])
    ]
    assert (
        _rows(stack, "SELECT count(*) FROM sqlite_master WHERE name = 'orders'") == [(0,)]
        or not _rows(stack, "SELECT count(*) FROM orders")[0][0]
    )
    quarantined = _rows(stack, "SELECT count(*) FROM quarantine")[0][0]
    assert quarantined > 0
    failed = _cli(stack, "gaps", "orders")
    assert "failed" in failed.stdout and "2026-01-03T10:00Z   2026-01-03T11:00Z" in failed.stdout, (
        failed.output
    )

    suite.write_text(good)  # the fix
    requests_before = _sandbox_requests(stack, "shop")
    replayed = _cli(stack, "replay", "orders", START, "--wait")
    assert replayed.code == 0, replayed.output
    assert "was failed" in replayed.stdout and f"run {run_id} ended success" in replayed.stdout

    assert _sandbox_requests(stack, "shop") == requests_before, "the replay called the source API"
    assert [row[1] for row in _sync_runs(stack, "orders")] == ["quarantine_threshold_exceeded", "success"]
    truth = requests.get(
        f"{stack.sandbox_urls['shop']}/_sandbox/truth/orders",
        params={"updated_gte": START, "updated_lt": END},
        timeout=30,
    ).json()["records"]
    loaded = _rows(stack, "SELECT id, amount, status FROM orders ORDER BY id")
    assert loaded == sorted((r["id"], r["amount"], r["status"]) for r in truth)
    # The window's quarantine rows are the fixed suite's now (the load replaces the window's rows).
    assert _rows(stack, "SELECT count(*) FROM quarantine")[0][0] < quarantined
    after = _cli(stack, "gaps", "orders")
    summary = next(line for line in after.stdout.splitlines() if line.strip().startswith("orders "))
    assert summary.split()[3:5] == ["1", "0"], summary  # 1 synced, 0 failed
