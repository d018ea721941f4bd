"""Four processes sharing one connection stay inside its declared limit: the sandbox serves 0 x 429."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid

import pytest

from apisync.http import ApiHook

RATE = 10
SECONDS = 3.0


def _load(conn_id: str, conn_json: str, start_at: float, out) -> None:
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn_json
    hook = ApiHook(conn_id)
    hook.get_conn()
    assert hook.limiter is not None
    hook.limiter.state()  # connect to the backend before the common start
    time.sleep(max(0.0, start_at - time.time()))
    stop_at = start_at + SECONDS
    ok = 0
    while time.time() < stop_at:
        hook.request("GET", "/v1/orders", params={"limit": 1})
        ok += 1
    out.put((ok, hook.stats()["r429"]))


def _run_four(conn_id: str) -> list[tuple[int, int]]:
    conn_json = os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]
    ctx = mp.get_context("fork")  # the test process already imported Airflow; forking is quick
    out = ctx.Queue()
    start_at = time.time() + 1.5
    procs = [ctx.Process(target=_load, args=(conn_id, conn_json, start_at, out)) for _ in range(4)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(10)
    return results


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_four_processes_share_the_declared_budget(sandbox, api_conn, request, backend: str) -> None:
    rate_limit = {"requests": RATE, "period_s": 1, "burst": 5, "backend": backend}
    if backend == "redis":
        rate_limit["redis_url"] = request.getfixturevalue("redis_url")
        rate_limit["key_prefix"] = f"apisync:test:{uuid.uuid4().hex}:"
    sb = sandbox(records=20, rate=RATE, burst=5)
    conn_id = api_conn(sb, rate_limit=rate_limit)
    results = _run_four(conn_id)
    stats = sb.stats()
    assert stats["r429"] == 0, stats
    served = stats["by_status"]["200"]
    assert sum(ok for ok, _ in results) == served
    # Each of the 4 got a share, and together they used the budget (5 burst + RATE/s), not more.
    assert all(ok > 0 for ok, _ in results)
    assert RATE * SECONDS * 0.7 <= served <= RATE * SECONDS + 5 + 4


def test_learned_limit_is_shared_and_avoids_storms_of_429(sandbox, api_conn) -> None:
    sb = sandbox(records=20, rate=RATE, burst=5, ratelimit_headers="hubspot")
    conn_id = api_conn(sb)  # no limit declared: learned from X-HubSpot-RateLimit-* headers
    _run_four(conn_id)
    stats = sb.stats()
    total = stats["by_status"]["200"] + stats["r429"]
    assert stats["r429"] <= max(2, 0.05 * total), stats
    assert stats["by_status"]["200"] >= RATE * SECONDS * 0.6
