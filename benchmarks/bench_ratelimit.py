"""Rate-limit benchmark: how much of a server's budget 4 processes use, and how many 429s they cause.

Sandbox bucket: 20 requests/s, burst 5, per credential. Four worker processes share one connection
and send small GETs for ``--seconds`` each phase:

(a) ``declared``: the limit is declared in the connection extras (shared SQLite backend);
    target utilization >= 0.95 with zero 429s.
(b) ``learned``: no limit declared; learned from the IETF ``RateLimit-Policy`` headers and shared;
    target >= 0.90 with <= 1 % 429s.
(c) ``naive``: the provider's plain ``HttpHook`` with a tenacity retry loop (exponential backoff on
    any error), the usual hand-rolled approach.
(d) ``blind``: the sandbox sends no rate-limit headers (``ratelimit_headers="none"``, only 429 +
    ``Retry-After``) and nothing is declared: the rate is learned from the answers alone, with 1
    and with 3 processes; target >= 0.90 with <= 2 % 429s. ``learned_rps`` is the rate remembered;
    ``ratelimit_blind_warm`` is the next run on the same budget store, starting at it.
(e) ``cluster``: 4 processes x 2 threads (one ``ApiHook`` per thread, as one per task on a worker)
    draw from ONE Redis budget against a sandbox limited to 10 r/s, burst 2: the limit declared,
    learned from each header dialect, and blind; target >= 0.90 with <= 2 % 429s in every mode.

Utilization = requests the server answered 200 / seconds / 20, counted by the sandbox itself.
Run: ``.venv/bin/python benchmarks/bench_ratelimit.py [--seconds 30] [--workers 4]
[--only declared,learned,naive,blind,cluster]`` (Redis on 127.0.0.1:6379 for the cluster phase).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "plugins"), str(REPO_ROOT)]

RATE = 20
BURST = 5
CLUSTER_RATE = 10
CLUSTER_BURST = 2
CLUSTER_PROCESSES = 4
CLUSTER_THREADS = 2
CLUSTER_DIALECTS = ("github", "ietf", "ietf-legacy", "hubspot")
REDIS_URL = os.environ.get("APISYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CONN_ID = "bench_api"


def _connection(url: str, extra: dict) -> str:
    return json.dumps({"conn_type": "http", "host": url, "password": "sandbox-key", "extra": extra})


def _worker(
    mode: str, url: str, extra: dict, home: str, seconds: float, go, start, out, threads: int = 1
) -> None:
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

        hooks = [ApiHook(http_conn_id=CONN_ID) for _ in range(threads)]  # one per task, as on a worker
        for hook in hooks:
            hook.get_conn()
            hook.limiter.state()  # open the shared backend before the clock starts
        stop_at = _wait_for_start(go, start, seconds, out)
        counts = [0] * threads

        def send(index: int) -> None:
            while time.time() < stop_at:
                hooks[index].request("GET", "/v1/orders", params={"limit": 1})
                counts[index] += 1

        pool = [threading.Thread(target=send, args=(i,)) for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        ok = sum(counts)
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
        args[7].put(f"{type(exc).__name__}: {exc}")  # the result queue
        raise


def run_phase(
    sb, mode: str, extra: dict, seconds: float, workers: int, threads: int = 1, home: str | None = None
) -> dict:
    """One phase; ``home`` keeps the budget state of an earlier phase (a warm start), else a new one."""
    sb.reset()
    rate = sb.config.get("rate") or RATE
    with contextlib.nullcontext(home) if home else tempfile.TemporaryDirectory() as home:
        extra = json.loads(json.dumps(extra).replace("@HOME@", home))
        ctx = mp.get_context("spawn")
        out, go, start = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
        args = (mode, sb.url, extra, home, seconds, go, start, out, threads)
        procs = [ctx.Process(target=_safe_worker, args=args) for _ in range(workers)]
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
        learned_rps = _learned_rps(sb, extra) if mode != "naive" else 0.0
    stats = sb.stats()
    served = int(stats["by_status"].get("200", 0))
    r429 = int(stats.get("r429", 0))
    total = served + r429
    return {
        "utilization": served / seconds / rate,
        "r429": r429,
        "r429_share": r429 / total if total else 0.0,
        "served": served,
        "client_ok": client_ok,
        "learned_rps": learned_rps,
    }


def _learned_rps(sb, extra: dict) -> float:
    """The rate the shared state paces at after the phase (blind: the one the next run starts at)."""
    from apisync.http.ratelimit import RateLimiter, make_backend
    from apisync.http.settings import ApiSettings

    settings = ApiSettings.from_extras(extra).rate_limit
    limiter = RateLimiter(make_backend(settings), f"{CONN_ID}|{urlsplit(sb.url).netloc}")
    state = limiter.state()
    now = limiter.backend.now()
    if now < state.learned_until and state.learned_interval:
        return 1.0 / state.learned_interval
    return state.probe_rate if now < state.probe_until else 0.0


def _cluster_extra(auth: dict, prefix: str, mode: str) -> tuple[dict, str]:
    """Extras for one cluster mode, and the header dialect the sandbox sends in it."""
    rate_limit: dict = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": f"{prefix}{mode}:"}
    if mode == "declared":
        rate_limit.update(requests=CLUSTER_RATE, period_s=1, burst=CLUSTER_BURST)
        return {"auth": auth, "rate_limit": rate_limit, "rate_limit_headers": "none"}, "none"
    if mode == "blind":
        return {"auth": auth, "rate_limit": rate_limit, "rate_limit_headers": "none"}, "none"
    return {"auth": auth, "rate_limit": rate_limit, "rate_limit_headers": mode}, mode


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
    parser.add_argument("--only", default="declared,learned,naive,blind,cluster")
    args = parser.parse_args()
    only = set(args.only.split(","))

    from sandbox.testing import run_sandbox

    sqlite_path = "@HOME@/ratelimit.sqlite"
    auth = {"type": "api_key", "header": "X-API-Key"}
    with run_sandbox(rate=RATE, burst=BURST, ratelimit_headers=args.headers) as sb:
        if "declared" in only:
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
            print(
                f"BENCH ratelimit_declared utilization={declared['utilization']:.3f} r429={declared['r429']}",
                flush=True,
            )
        if "learned" in only:
            learned = run_phase(
                sb, "learned", {"auth": auth, "rate_limit": {"path": sqlite_path}}, args.seconds, args.workers
            )
            print(f"learned: {learned}", flush=True)
            print(
                f"BENCH ratelimit_learned utilization={learned['utilization']:.3f} "
                f"r429_share={learned['r429_share']:.4f}",
                flush=True,
            )
        if "naive" in only:
            naive = run_phase(sb, "naive", {}, args.seconds, args.workers)
            print(f"naive: {naive}", flush=True)
            print(
                f"BENCH ratelimit_naive utilization={naive['utilization']:.3f} r429={naive['r429']}",
                flush=True,
            )
    if "blind" in only:
        with run_sandbox(rate=RATE, burst=BURST, ratelimit_headers="none") as sb:
            extra = {"auth": auth, "rate_limit": {"path": sqlite_path}, "rate_limit_headers": "none"}
            for processes in (1, 3):
                with tempfile.TemporaryDirectory() as home:
                    for start in ("cold", "warm"):  # warm: the next run, on the rate remembered
                        blind = run_phase(sb, "blind", extra, args.seconds, processes, home=home)
                        print(f"blind processes={processes} {start}: {blind}", flush=True)
                        name = "ratelimit_blind" if start == "cold" else "ratelimit_blind_warm"
                        print(
                            f"BENCH {name} processes={processes} "
                            f"utilization={blind['utilization']:.3f} r429_share={blind['r429_share']:.4f} "
                            f"learned_rps={blind['learned_rps']:.2f} server_rps={RATE}",
                            flush=True,
                        )
    if "cluster" in only:
        prefix = f"apisync:bench:{uuid.uuid4().hex}:"
        with run_sandbox(rate=CLUSTER_RATE, burst=CLUSTER_BURST, ratelimit_headers="none") as sb:
            for mode in ("declared", *CLUSTER_DIALECTS, "blind"):
                extra, dialect = _cluster_extra(auth, prefix, mode)
                sb.configure(ratelimit_headers=dialect)
                result = run_phase(sb, mode, extra, args.seconds, CLUSTER_PROCESSES, CLUSTER_THREADS)
                print(f"cluster {mode}: {result}", flush=True)
                print(
                    f"BENCH ratelimit_cluster mode={mode} utilization={result['utilization']:.3f} "
                    f"r429_share={result['r429_share']:.4f} learned_rps={result['learned_rps']:.2f}",
                    flush=True,
                )
        _delete_keys(prefix)


def _delete_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


if __name__ == "__main__":
    main()
