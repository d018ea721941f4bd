"""Small-window latency: one ~100-record orders window through the real DAG, trigger to success.

A real Airflow (``airflow standalone``: scheduler with the executor ``make run`` uses,
dag-processor, triggerer, api-server; metadata on a throwaway PostgreSQL database) runs
``orders_to_warehouse`` against the sandbox, started the way the end-to-end tests start it
(``tests/e2e/conftest.py``). Each run is triggered through the REST API with a window holding
``--records`` orders (the sandbox's ground truth picks its end). ``seconds`` runs from the POST to
the run's ``end_date``; the task durations are the task instances' as the API reports them, and
``between_tasks_s`` is the rest (the scheduler's hops: trigger to the first task, task to task,
the last task to the run's end). The first run pays the cold start (the api-server's first
execution-API call, disk caches); the later ones, on other windows, are the hourly case. Prints,
per run and then the median of the runs after the first::

    BENCH dagrun_small run=1 records=100 seconds=… validate_s=… extract_s=… … between_tasks_s=…
    BENCH dagrun_small run=median records=100 seconds=… validate_s=… …

Run: ``.venv/bin/python benchmarks/bench_dagrun.py [--runs 3] [--records 100]`` (needs
PostgreSQL on 127.0.0.1:5432, ``APISYNC_TEST_POSTGRES_URL`` to override).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "plugins"), str(REPO_ROOT)]

from tests.e2e.conftest import AirflowStack, iso, running_airflow, throwaway_database  # noqa: E402

DAG_ID = "orders_to_warehouse"
GROUP = "sync_orders"
POSTGRES_URL = os.environ.get(
    "APISYNC_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
FIRST_WINDOW_START = datetime(2026, 1, 2, tzinfo=UTC)


def window_holding(stack: AirflowStack, start: datetime, records: int) -> tuple[datetime, datetime]:
    """[start, end) holding exactly ``records`` orders by the sandbox's ground truth."""
    truth = requests.get(
        f"{stack.sandbox_urls['shop']}/_sandbox/truth/orders",
        params={"updated_gte": iso(start), "updated_lt": iso(start + timedelta(days=1))},
        timeout=30,
    ).json()["records"]
    if len(truth) <= records:
        raise SystemExit(f"the sandbox has only {len(truth)} orders in the day from {iso(start)}")
    # Ends at the first record after the window (epoch seconds; the window is half-open).
    end = datetime.fromtimestamp(truth[records]["updated"], UTC)
    return start, end


def finished_run(stack: AirflowStack, run_id: str, timeout_s: float = 600) -> dict[str, Any]:
    """Poll the run until it is done (every 0.5 s: the api-server also serves the tasks' calls)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            run = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}").json()
        except requests.RequestException:
            run = {}
        if run.get("state") in ("success", "failed"):
            return run
        time.sleep(0.5)
    raise TimeoutError(f"run {run_id} not finished within {timeout_s:.0f}s")


def task_seconds(stack: AirflowStack, run_id: str) -> dict[str, float]:
    """Each task's duration as the API reports it, by its short name (extract, validate, …)."""
    instances = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    return {ti["task_id"].rsplit(".", 1)[-1]: float(ti["duration"] or 0.0) for ti in instances}


def one_run(
    stack: AirflowStack, window: tuple[datetime, datetime]
) -> tuple[float, dict[str, Any], dict[str, float]]:
    """Trigger a run of ``window``; (seconds from the POST to the run's end_date, run, task durations)."""
    body = {
        "logical_date": datetime.now(UTC).isoformat(),
        "conf": {"window_start": iso(window[0]), "window_end": iso(window[1])},
    }
    triggered = datetime.now(UTC)
    response = stack.api("POST", f"/dags/{DAG_ID}/dagRuns", json=body)
    response.raise_for_status()
    run = finished_run(stack, response.json()["dag_run_id"])
    seconds = (datetime.fromisoformat(run["end_date"].replace("Z", "+00:00")) - triggered).total_seconds()
    return seconds, run, task_seconds(stack, run["dag_run_id"])


def bench_line(label: str, seconds: float, tasks: dict[str, float], records: int) -> str:
    durations = " ".join(f"{name}_s={tasks.get(name, 0.0):.2f}" for name in ("extract", "normalize", "load"))
    # What is not a task: the scheduler's hops between tasks, trigger to first task, last to done.
    between = seconds - sum(tasks.get(name, 0.0) for name in ("extract", "normalize", "validate", "load"))
    return (
        f"BENCH dagrun_small run={label} records={records} seconds={seconds:.2f} "
        f"validate_s={tasks.get('validate', 0.0):.2f} {durations} between_tasks_s={between:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=100)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench_dagrun_"))
    dag_files = [REPO_ROOT / "dags" / f"{DAG_ID}.py"]
    with (
        throwaway_database(POSTGRES_URL) as metadata_url,
        running_airflow(home, metadata_url, dag_files=dag_files, scheduled_runs=False) as stack,
    ):
        stack.wait_for_dag(DAG_ID)
        stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
        figures = []
        for number in range(1, args.runs + 1):
            window = window_holding(stack, FIRST_WINDOW_START + timedelta(hours=6 * number), args.records)
            seconds, run, tasks = one_run(stack, window)
            if run["state"] != "success":
                raise SystemExit(f"run {run['dag_run_id']} {run['state']}; logs under {home / 'logs'}")
            print(bench_line(str(number), seconds, tasks, args.records), flush=True)
            figures.append((seconds, tasks))
    warm = figures[1:] or figures  # the first run pays the cold start
    names = ("extract", "normalize", "validate", "load")
    median = {name: statistics.median(tasks.get(name, 0.0) for _, tasks in warm) for name in names}
    print(bench_line("median", statistics.median(s for s, _ in warm), median, args.records), flush=True)


if __name__ == "__main__":
    main()
