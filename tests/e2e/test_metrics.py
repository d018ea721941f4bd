"""A real scheduler's task processes send apisync's metrics through Airflow's StatsD client and
write the progress, validate and load lines into the task log files (issue 11).

``airflow standalone`` with ``[metrics] statsd_on`` pointing at a UDP listener of this test: every
task process picks the StatsD backend from that config at start, as in production. One run of a
customers sync (offset pagination with a total, OAuth2) is checked against the sandbox's own
count of the requests it served.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import iso, running_airflow, throwaway_database, wait_until
from tests.statsd_listener import StatsdListener

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "metrics_customers_e2e"
DAG_FILE = f'''"""Customers, daily, one slice: the metrics e2e test's DAG."""

from datetime import UTC, datetime

from airflow.sdk import DAG, CronDataIntervalTimetable

from apisync.pipeline import sync_stream

with DAG(
    "{DAG_ID}",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    sync_stream("customers", source_conn_id="accounts_api", warehouse_conn_id="warehouse_default")
'''
INTERVAL_END = datetime(2026, 1, 4, tzinfo=UTC)


def _task_log(home: Path, task: str) -> str:
    logs = sorted((home / "logs").glob(f"dag_id={DAG_ID}/**/task_id=sync_customers.{task}/**/*.log"))
    logs += sorted((home / "logs").glob(f"dag_id={DAG_ID}/**/task_id=sync_customers.{task}*.log"))
    assert logs, f"no task log of {task} under {home / 'logs'}"
    return "\n".join(path.read_text(errors="replace") for path in logs)


@pytest.mark.timeout(1800)
def test_task_processes_send_metrics_to_statsd_and_log_what_they_did(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = StatsdListener()
    for key, value in {
        "STATSD_ON": "True",
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(listener.port),
        "STATSD_PREFIX": "airflow",
    }.items():
        monkeypatch.setenv(f"AIRFLOW__METRICS__{key}", value)  # running_airflow passes os.environ on
    dag_file = tmp_path / "metrics_dags" / "metrics_customers_e2e.py"
    dag_file.parent.mkdir()
    dag_file.write_text(DAG_FILE)
    home = tmp_path / "home"
    home.mkdir()
    try:
        with (
            throwaway_database(postgres_url) as metadata_url,
            running_airflow(
                home,
                metadata_url,
                dag_files=[dag_file],
                scheduled_runs=False,
                connection_extras={"accounts_api": {"progress_every_pages": 1}},
            ) as stack,
        ):
            stack.wait_for_dag(DAG_ID)
            assert stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
            response = stack.api(
                "POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": iso(INTERVAL_END), "conf": {}}
            )
            assert response.status_code in (200, 201), response.text
            run_id = response.json()["dag_run_id"]

            def finished() -> str | None:
                state = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}").json().get("state")
                return state if state in ("success", "failed") else None

            assert wait_until(finished, f"{DAG_ID} to finish", 900) == "success"
            served = requests.get(f"{stack.sandbox_urls['accounts']}/_sandbox/stats", timeout=30).json()
            extract_log, validate_log, load_log = (
                _task_log(home, t) for t in ("extract", "validate", "load")
            )
            with sqlite3.connect(home / "warehouse.db") as conn:
                conn.row_factory = sqlite3.Row
                row = conn.execute("SELECT * FROM sync_runs").fetchone()
                loaded = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
    finally:
        listener.close()

    pages = served["by_path"]["source"]  # the API's requests (the OAuth2 token calls are "oauth")
    assert pages >= 3 and row["api_calls"] == pages and json.loads(row["status_counts"]) == {"200": pages}
    assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"] and row["bytes_received"] > 0

    counters, timings = listener.counters(), listener.timings()
    assert counters.get("airflow.apisync.requests") == pages, sorted(counters)
    assert counters[f"airflow.apisync.requests.{DAG_ID}.customers"] == pages
    assert counters["airflow.apisync.http_status.200"] == pages
    assert counters["airflow.apisync.bytes"] == row["bytes_received"]
    assert len(timings["airflow.apisync.request_latency_ms"]) == pages
    assert counters["airflow.apisync.records_loaded"] == loaded
    assert counters.get("airflow.apisync.records_quarantined", 0) == row["records_quarantined"]

    # The task log files (JSON lines: a non-ASCII arrow may be escaped).
    progress = re.findall(
        r"customers: page (\d+), [\d,]+ of ([\d,]+) records \(\d+%\), [\d.]+ pages/s, ETA", extract_log
    )
    assert [int(page) for page, _ in progress] == list(range(1, pages + 1)), extract_log[-2000:]
    assert re.search(
        rf"validate customers \S+: {row['records_pulled']} rows checked, {loaded} passed, "
        rf"{row['records_quarantined']} quarantined",
        validate_log,
    ), validate_log[-2000:]
    assert re.search(
        rf"load customers: {loaded} rows (?:→|\\\\u2192) customers \({loaded} inserted", load_log
    ), load_log[-2000:]
