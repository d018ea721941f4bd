"""The distributed stack, as `make cluster` runs it: CeleryExecutor with two workers, for real.

Metadata on the local PostgreSQL, Redis as the Celery broker and the shared rate budget, an
api-server, a scheduler, a dag-processor, a triggerer and two Celery workers, each its own process
(scripts/cluster.py, the launcher users run). A backfill of four hourly intervals of the partitioned
``customers_to_warehouse`` (four mapped slices a window) runs against the rate-limited accounts
sandbox, whose every 25th API request opens a 12 s 429 storm: longer than the connection's
``defer_after_s``, so extracts caught in it defer to the triggerer and resume on a worker.

Asserted: every run succeeds; tasks ran on both workers; the warehouse's rows plus the quarantined
records are exactly the sandbox's ground truth; no page was fetched twice (the sandbox served as
many pages as the extracts staged, so a resume continued from its saved cursor); at least one
extract deferred and resumed; outside the storms, 429s stay within the rate-limit bound.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from scripts.cluster import Cluster, running_cluster
from scripts.localstack import REPO_ROOT, free_port
from tests.e2e.conftest import (
    AirflowStack,
    assert_listening_on_loopback_only,
    iso,
    linked_dags_folder,
    logged_in_session,
    throwaway_database,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "customers_to_warehouse"
GROUP = "sync_customers"
FIRST = datetime(2026, 1, 3, 0, tzinfo=UTC)
HOURS = 4
WORKERS = ("worker-1", "worker-2")
STORM_EVERY = 25
STORM_S = 12
DEFER_AFTER_S = 3


@pytest.fixture(scope="module")
def warehouse_url(postgres_url: str) -> Iterator[str]:
    with throwaway_database(postgres_url) as url:
        yield url.replace("postgresql+psycopg2://", "postgresql://", 1)  # an Airflow connection URI


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str, warehouse_url: str
) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("cluster-home")
    with (
        throwaway_database(postgres_url) as metadata_url,
        running_cluster(
            home,
            metadata_url=metadata_url,
            redis_url=redis_url,
            workers=len(WORKERS),
            worker_concurrency=2,
            api_port=free_port(),
            ephemeral_ports=True,
            broker_prefix=f"apisync-e2e-{uuid.uuid4().hex[:8]}:",
            dags_folder=linked_dags_folder(home, [REPO_ROOT / "dags" / f"{DAG_ID}.py"]),
            # ~1,200 customers an hour: ~300 a slice, 3 pages of 100, so storms land mid-extraction.
            sandbox_overrides={
                "accounts": {"records": 200_000, "storm_every": STORM_EVERY, "storm_s": STORM_S}
            },
            connection_extras={"accounts_api": {"defer_after_s": DEFER_AFTER_S}},
            extra_env={
                "AIRFLOW_CONN_WAREHOUSE_DEFAULT": warehouse_url,
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the backfill's runs
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            },
        ) as running,
    ):
        yield running


def _stack(cluster: Cluster) -> AirflowStack:
    """The e2e tests' handle on a running Airflow, for this cluster."""
    return AirflowStack(
        api_url=cluster.api_url,
        home=cluster.home,
        sandbox_urls=cluster.sandbox_urls,
        session=logged_in_session(cluster.api_url, cluster.home),
        log=cluster.log("dag-processor"),
    )


def _backfill(cluster: Cluster, stack: AirflowStack, timeout_s: float = 1200) -> list[dict]:
    response = stack.api(
        "POST",
        "/backfills",
        json={
            "dag_id": DAG_ID,
            "from_date": iso(FIRST),
            "to_date": iso(FIRST + timedelta(hours=HOURS - 1)),
            "reprocess_behavior": "none",
            "max_active_runs": 2,
        },
    )
    assert response.status_code == 200, response.text
    backfill_id = response.json()["id"]

    def completed() -> bool:
        assert not cluster.exited(), f"components exited: {cluster.exited()}"
        return bool(stack.api("GET", f"/backfills/{backfill_id}").json().get("completed_at"))

    wait_until(completed, f"backfill {backfill_id} to complete", timeout_s)
    runs = stack.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]
    return [run for run in runs if run["run_type"] == "backfill"]  # the scheduler makes no other runs here


def _task_instances(stack: AirflowStack, run_id: str) -> list[dict]:
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
    return stack.api("GET", path, params={"limit": 200}).json()["task_instances"]


def _xcom(stack: AirflowStack, run_id: str, task_id: str, map_index: int) -> dict:
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    response = stack.api("GET", path, params={"map_index": map_index, "deserialize": True})
    response.raise_for_status()
    return response.json()["value"]


@pytest.mark.timeout(1800)  # eight components' start, 64 task instances and the storms on 2 loaded cores
def test_backfill_on_two_celery_workers_equals_ground_truth_through_a_deferring_storm(
    cluster: Cluster, warehouse_url: str
) -> None:
    stack = _stack(cluster)
    # `make cluster` answers this machine only (the scheduler's CeleryExecutor serves no logs).
    assert_listening_on_loopback_only(
        [proc.pid for proc in cluster.processes.values()],
        {
            "api-server": int(cluster.api_url.rsplit(":", 1)[1]),
            "triggerer log server": int(cluster.env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]),
        },
    )
    stack.wait_for_dag(DAG_ID, timeout_s=300)
    assert stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).ok

    started = time.monotonic()
    runs = _backfill(cluster, stack)
    seconds = time.monotonic() - started
    assert len(runs) == HOURS, [run["dag_run_id"] for run in runs]
    assert {run["state"] for run in runs} == {"success"}, [(run["dag_run_id"], run["state"]) for run in runs]
    assert min(run["data_interval_start"] for run in runs).startswith(iso(FIRST)[:16])
    assert max(run["data_interval_end"] for run in runs).startswith(iso(FIRST + timedelta(hours=HOURS))[:16])

    instances = [ti for run in runs for ti in _task_instances(stack, run["dag_run_id"])]
    by_worker = Counter(ti["hostname"] for ti in instances)
    assert set(WORKERS) <= set(by_worker), f"tasks by worker: {dict(by_worker)}"
    assert set(by_worker) <= set(WORKERS), f"tasks ran outside the Celery workers: {dict(by_worker)}"

    extracts = [
        _xcom(stack, ti["dag_run_id"], ti["task_id"], ti["map_index"])
        for ti in instances
        if ti["task_id"] == f"{GROUP}.extract"
    ]
    assert len(extracts) == HOURS * 4
    deferred = [extract for extract in extracts if extract["deferrals"] > 0]
    assert deferred, "no extract deferred: the storm never outlasted defer_after_s"

    accounts = cluster.sandbox_urls["accounts"]
    end = FIRST + timedelta(hours=HOURS)
    truth = requests.get(
        f"{accounts}/_sandbox/truth/customers",
        params={"updated_gte": iso(FIRST), "updated_lt": iso(end)},
        timeout=30,
    ).json()["records"]
    engine = sa.create_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            loaded = [row[0] for row in conn.execute(sa.text("SELECT id FROM customers"))]
            quarantined = [  # record_key is the primary key as JSON: {"id": "..."}
                json.loads(row[0])["id"]
                for row in conn.execute(
                    sa.text("SELECT record_key FROM quarantine WHERE stream = 'customers'")
                )
            ]
            audit = conn.execute(
                sa.text(
                    "SELECT count(*), sum(api_calls), sum(api_429s) FROM sync_runs WHERE status = 'success'"
                )
            ).one()
    finally:
        engine.dispose()
    stats = requests.get(f"{accounts}/_sandbox/stats", timeout=30).json()
    served = stats["by_status"]
    storm_429s = stats["faults"].get("storm", 0)
    rate_429s = int(served.get("429", 0)) - storm_429s
    print(
        f"\nCLUSTER runs={len(runs)} seconds={seconds:.0f} tasks_by_worker={dict(by_worker)} "
        f"extracts={len(extracts)} deferred={len(deferred)} truth={len(truth)} loaded={len(loaded)} "
        f"quarantined={len(quarantined)} sync_runs={audit[0]} api_calls={audit[1]} api_429s={audit[2]} "
        f"served={stats['by_path']} by_status={served} storm_429s={storm_429s} rate_429s={rate_429s}"
    )

    expected = Counter(record["id"] for record in truth)
    assert len(truth) > 500, "too few customers for the storm and the slices to matter"
    assert Counter(loaded) + Counter(quarantined) == expected, "warehouse + quarantine != ground truth"
    assert len(set(loaded)) == len(loaded), "a customer was loaded twice"
    assert audit[0] == HOURS * 4, "one success row per slice and window"

    # Every source response was a page (200) or a 429; the OAuth token calls are counted apart.
    assert set(served) <= {"200", "429"}, served
    source_requests = stats["by_path"]["source"]
    pages_served = source_requests - int(served.get("429", 0))
    pages_staged = sum(extract["pages"] for extract in extracts)
    assert pages_served == pages_staged, "a page was fetched twice (a resume restarted) or not staged"
    assert sum(extract["api_calls"] for extract in extracts) == source_requests
    assert storm_429s > 0, "no storm hit the backfill"
    # The rate-limit bound (limit learned from headers): at most 1 % of requests answered 429.
    assert rate_429s <= stats["requests"] // 100, (
        f"{rate_429s} rate-limit 429s in {stats['requests']} requests"
    )
    assert not cluster.exited(), f"components exited: {cluster.exited()}"
