"""Rate-limit benchmark: how much of a server's budget 4 processes use, and how many 429s they cause.

Sandbox bucket: 20 requests/s, burst 5, per credential. Four worker processes share one connection
and send small GETs for ``--seconds`` each phase:

(a) ``declared``: the limit is declared in the connection extras (shared SQLite backend);
    target utilization >= 0.95 with zero 429s.
(b) ``learned``: no limit declared; learned from the IETF ``RateLimit-Policy`` headers and shared;
    target >= 0.90 with <= 1 % 429s.
(c) ``naive``: the provider's plain ``HttpHook`` with a tenacity retry loop (exponential backoff on
    any error), the usual hand-rolled approach.

Utilization = requests the server answered 200 / seconds / 20, counted by the sandbox itself.
Run: ``.venv/bin/python benchmarks/bench_ratelimit.py [--seconds 30] [--workers 4]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "plugins"), str(REPO_ROOT)]

RATE = 20
BURST = 5
CONN_ID = "bench_api"


def _connection(url: str, extra: dict) -> str:
    return json.dumps({"conn_type": "http", "host": url, "password": "sandbox-key", "extra": extra})


def _worker(mode: str, url: str, extra: dict, home: str, seconds: float, go, start, out) -> None:
    # Workers print nothing useful; the provider logs every 429 at ERROR. Keep the figures readable.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.environ["AIRFLOW_HOME"] = home
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = _connection(url, extra)
    ok = 0
    if mode == "naive":
        import tenacity
        from airflow.providers.http.hooks.http import HttpHook

        hook = HttpHook(method="GET", http_conn_id=CONN_ID)
        retry_args = {
            "wait": tenacity.wait_exponential(multiplier=0.1, max=5),
            "stop": tenacity.stop_after_attempt(10),
            "retry": tenacity.retry_if_exception_type(Exception),
        }
        headers = {"X-API-Key": "sandbox-key"}
        stop_at = _wait_for_start(go, start, seconds, out)
        while time.time() < stop_at:
            try:
                hook.run_with_advanced_retry(retry_args, "/v1/orders", data={"limit": 1}, headers=headers)
                ok += 1
            except Exception:  # count and keep loading, like a naive client
                pass
    else:
        from apisync.http import ApiHook

        hook = ApiHook(http_conn_id=CONN_ID)
        hook.get_conn()
        hook.limiter.state()  # open the shared backend before the clock starts
        stop_at = _wait_for_start(go, start, seconds, out)
        while time.time() < stop_at:
            hook.request("GET", "/v1/orders", params={"limit": 1})
            ok += 1
    out.put(ok)


def _wait_for_start(go, start, seconds: float, out) -> float:
    """Report ready (imports done), wait for the common start, return the stop time."""
    out.put("ready")
    go.wait()
    time.sleep(max(0.0, start.value - time.time()))
    return start.value + seconds


def _safe_worker(*args) -> None:
    try:
        _worker(*args)
    except BaseException as exc:
        args[-1].put(f"{type(exc).__name__}: {exc}")
        raise


def run_phase(sb, mode: str, extra: dict, seconds: float, workers: int) -> dict:
    sb.reset()
    with tempfile.TemporaryDirectory() as home:
        extra = json.loads(json.dumps(extra).replace("@HOME@", home))
        ctx = mp.get_context("spawn")
        out, go, start = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
        procs = [
            ctx.Process(target=_safe_worker, args=(mode, sb.url, extra, home, seconds, go, start, out))
            for _ in range(workers)
        ]
        for proc in procs:
            proc.start()
        ready = [out.get(timeout=180) for _ in procs]  # spawned interpreters import Airflow first
        if any(r != "ready" for r in ready):
            go.set()
            raise RuntimeError(f"{mode}: workers failed to start: {ready}")
        sb.reset()
        start.value = time.time() + 0.5
        go.set()
        results = [out.get(timeout=seconds + 120) for _ in procs]
        for proc in procs:
            proc.join()
        errors = [r for r in results if isinstance(r, str)]
        if errors:
            raise RuntimeError(f"{mode}: workers failed: {errors}")
        client_ok = sum(results)
    stats = sb.stats()
    served = int(stats["by_status"].get("200", 0))
    r429 = int(stats.get("r429", 0))
    total = served + r429
    return {
        "utilization": served / seconds / RATE,
        "r429": r429,
        "r429_share": r429 / total if total else 0.0,
        "served": served,
        "client_ok": client_ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--headers",
        default="ietf",
        choices=["ietf", "hubspot", "github", "ietf-legacy"],
        help="rate-limit header dialect the sandbox sends (what phase (b) learns from)",
    )
    args = parser.parse_args()

    from sandbox.testing import run_sandbox

    sqlite_path = "@HOME@/ratelimit.sqlite"
    auth = {"type": "api_key", "header": "X-API-Key"}
    with run_sandbox(rate=RATE, burst=BURST, ratelimit_headers=args.headers) as sb:
        declared = run_phase(
            sb,
            "declared",
            {
                "auth": auth,
                "rate_limit": {"requests": RATE, "period_s": 1, "burst": BURST, "path": sqlite_path},
            },
            args.seconds,
            args.workers,
        )
        print(f"declared: {declared}", flush=True)
        print(f"BENCH ratelimit_declared utilization={declared['utilization']:.3f} r429={declared['r429']}")
        learned = run_phase(
            sb, "learned", {"auth": auth, "rate_limit": {"path": sqlite_path}}, args.seconds, args.workers
        )
        print(f"learned: {learned}", flush=True)
        print(
            f"BENCH ratelimit_learned utilization={learned['utilization']:.3f} "
            f"r429_share={learned['r429_share']:.4f}"
        )
        naive = run_phase(sb, "naive", {}, args.seconds, args.workers)
        print(f"naive: {naive}", flush=True)
        print(f"BENCH ratelimit_naive utilization={naive['utilization']:.3f} r429={naive['r429']}")


if __name__ == "__main__":
    main()
