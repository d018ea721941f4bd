"""Data-path benchmark: sandbox orders -> raw pages -> Parquet -> GX -> PostgreSQL, end to end.

Each measured run is a fresh subprocess (so peak RSS is that run's own), against a sandbox with
no rate limit and large pages. Prints:

    BENCH datapath_100k records_per_s=<n> peak_rss_mb=<n>
    BENCH datapath_1m records_per_s=<n> peak_rss_mb=<n> gx_share=<ratio>
    BENCH datapath_1m_windowed windows=<k> records_per_s=<n> peak_rss_mb=<n> gx_share=<ratio>
    BENCH datapath_naive records_per_s=<n> peak_rss_mb=<n>
    BENCH datapath_ratios speedup_vs_naive=<x> rss_naive_over_pipeline=<x> rss_large_over_small=<x>
    BENCH datapath_remerge_100k seconds=<s> records_per_s=<n>
    BENCH floor_http mb_per_s=<n> records_per_s=<n> seconds=<s>
    BENCH floor_copy rows_per_s=<n> rows=<n> seconds=<s>
    BENCH datapath_floor_ratios large_over_floor=<x> gx_share=<ratio>

"remerge" = the small window run a second time into the table it already loaded (every row
unchanged: the replay of a window). The floors are measured in the same run on the same
machine, so each figure reads as a ratio: ``floor_http`` = the large window's pages fetched with
a bare HTTP client (transfer time only, no JSON parsing), ``floor_copy`` = the large run's loaded
rows (parent and child tables) COPYed back in, binary format, into key-less (WAL-logged) tables
of the same columns, rolled back. ``large_over_floor`` = the large run's wall time over
floor_http + floor_copy seconds.

"naive" = every page in one DataFrame (pd.json_normalize) written with DataFrame.to_sql, at the
small scale (it does not survive 1M on a small machine in reasonable time). "windowed" = the
same 1M records as ``--windows`` consecutive windows (a backfill, or mapped partitions), one
process extracting window k+1 while a second one normalizes, validates and loads window k with
the real functions, each window in its own transaction; its RSS is the sum of both processes.
Targets on the 2-core box: >= 50,000 records/s, RSS(1M) <= 1.2 x RSS(100k), GX <= 25 % of wall time.

    .venv/bin/python benchmarks/bench_datapath.py                 # 100k + 1M + naive
    .venv/bin/python benchmarks/bench_datapath.py --records 200000  # quick: 20k + 200k + naive 20k
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WINDOW_START, WINDOW_END = "2026-01-01T00:00:00+00:00", "2026-01-08T00:00:00+00:00"
DEFAULT_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def _label(records: int) -> str:
    return f"{records // 1_000_000}m" if records % 1_000_000 == 0 else f"{records // 1000}k"


# ----------------------------------------------------------------------------- child: one run


def _pages(url: str, page_size: int, window: tuple[Any, Any] | None = None) -> Any:
    os.environ["AIRFLOW_CONN_BENCH_API"] = json.dumps(
        {"conn_type": "http", "host": url, "password": "sandbox-key", "extra": {"auth": {"type": "api_key"}}}
    )
    from datetime import datetime

    from apisync.http import ApiHook
    from apisync.spec import load_spec, render_window

    source = load_spec("orders").source
    window = window or (datetime.fromisoformat(WINDOW_START), datetime.fromisoformat(WINDOW_END))
    pagination = {**source.pagination.model_dump(), "page_size": page_size}
    hook = ApiHook(http_conn_id="bench_api")
    return hook, hook.paginate(
        source.endpoint,
        params=render_window(source.params, *window, source.window_format),
        pagination=pagination,
        records_path=source.records_path or None,
    )


def child_floor_http(args: argparse.Namespace) -> dict[str, Any]:
    """The sandbox alone: the window's pages with a bare client, timing the transfers only (the
    next cursor is read outside the clock)."""
    import json as json_module
    from datetime import datetime

    import requests

    from apisync.spec import load_spec, render_window

    source = load_spec("orders").source
    start, end = datetime.fromisoformat(WINDOW_START), datetime.fromisoformat(WINDOW_END)
    params: dict[str, Any] = {
        **render_window(source.params, start, end, source.window_format),
        "limit": args.page_size,
    }
    transfer_s, size, records = 0.0, 0, 0
    with requests.Session() as session:
        session.headers["X-API-Key"] = "sandbox-key"
        while True:
            t = time.perf_counter()
            response = session.get(f"{args.url}{source.endpoint}", params=params)
            body = response.content
            transfer_s += time.perf_counter() - t
            response.raise_for_status()
            size += len(body)
            page = json_module.loads(body)
            records += len(page["data"])
            if not page.get("has_more") or not page["data"]:
                break
            params["starting_after"] = page["data"][-1]["id"]
    return {"records": records, "bytes": size, "seconds": transfer_s}


def floor_copy(engine: Any, schema: str, tables: list[str]) -> dict[str, Any]:
    """PostgreSQL alone: the loaded tables COPYed out in binary, then back in (timed) into
    key-less copies of them, in one transaction that is rolled back (no key build: the floor)."""
    import io

    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        dumps = {}
        for table in tables:
            buffer = io.BytesIO()
            cursor.copy_expert(f'COPY "{schema}"."{table}" TO STDOUT WITH (FORMAT binary)', buffer)
            dumps[table] = buffer
        rows, seconds = 0, 0.0
        for table, buffer in dumps.items():
            # A plain (WAL-logged) table, as the load's target is: a temporary one skips the WAL.
            cursor.execute(f'CREATE TABLE "{schema}"."floor_{table}" (LIKE "{schema}"."{table}")')
            buffer.seek(0)
            t = time.perf_counter()
            cursor.copy_expert(f'COPY "{schema}"."floor_{table}" FROM STDIN WITH (FORMAT binary)', buffer)
            seconds += time.perf_counter() - t
            rows += cursor.rowcount
        connection.rollback()
    finally:
        connection.close()
    return {"rows": rows, "seconds": seconds}


def child_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import datetime

    import sqlalchemy as sa

    from apisync.pipeline.runner import run_window
    from apisync.spec import load_spec
    from apisync.staging.layout import RunPaths

    started = time.perf_counter()
    hook, pages = _pages(args.url, args.page_size)
    engine = sa.create_engine(args.pg_url)
    window = (datetime.fromisoformat(WINDOW_START), datetime.fromisoformat(WINDOW_END))
    run = run_window(
        load_spec("orders"),
        pages,
        RunPaths(Path(args.staging)),
        engine,
        window=window,
        run_id=f"bench-{args.records}",
        db_schema=args.schema,
    )
    wall = time.perf_counter() - started
    return {
        "records": run.normalized.pulled,
        "wall_s": wall,
        "stages_s": {k: round(v, 2) for k, v in run.seconds.items()},
        "inserted": run.loaded.inserted,
        "api": hook.stats(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _window_worker(pg_url: str, schema: str, inbox: Any, outbox: Any) -> None:
    """Second process of the windowed run: normalize, validate and load each extracted window in
    turn (``run_window`` replaying the staged raw pages), one GX runner for all windows."""
    from datetime import datetime

    import sqlalchemy as sa

    from apisync.pipeline.runner import run_window
    from apisync.quality.expectations import SuiteRunner
    from apisync.quality.suites import suite_path
    from apisync.spec import load_spec
    from apisync.staging.layout import RunPaths

    spec = load_spec("orders")
    engine = sa.create_engine(pg_url)
    runner = SuiteRunner(suite_path(spec.quality.suite), spec.primary_key)
    gx_init_s = runner.seconds  # validate() counts only its own share of a shared runner
    while (item := inbox.get()) is not None:
        number, root, start, end, api = item
        run = run_window(
            spec,
            None,
            RunPaths(Path(root)),
            engine,
            window=(datetime.fromisoformat(start), datetime.fromisoformat(end)),
            run_id=f"bench-window-{number}",
            db_schema=schema,
            runner=runner,
            api_stats=api,
        )
        outbox.put(
            {"records": run.normalized.pulled, "inserted": run.loaded.inserted, "seconds": run.seconds}
        )
    outbox.put(
        {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "gx_init_s": gx_init_s}
    )


def child_windowed(args: argparse.Namespace) -> dict[str, Any]:
    """The same records split into ``--windows`` consecutive windows (as a backfill or mapped
    partitions would run them): this process extracts window k+1 while a second process runs
    normalize -> validate -> load of window k. Every window goes through the real functions in
    order; wall time runs from the first request until the last window is committed."""
    import multiprocessing
    from datetime import datetime

    from apisync.staging.layout import RunPaths
    from apisync.staging.raw_pages import extract_to_files

    start, end = datetime.fromisoformat(WINDOW_START), datetime.fromisoformat(WINDOW_END)
    step = (end - start) / args.windows
    bounds = [start + step * k for k in range(args.windows)] + [end]
    context = multiprocessing.get_context("spawn")
    inbox, outbox = context.Queue(), context.Queue()
    started = time.perf_counter()
    worker = context.Process(target=_window_worker, args=(args.pg_url, args.schema, inbox, outbox))
    worker.start()
    extract_s, api_requests = 0.0, 0
    try:
        for number in range(args.windows):
            window = (bounds[number], bounds[number + 1])
            t = time.perf_counter()
            hook, pages = _pages(args.url, args.page_size, window)
            paths = RunPaths(Path(args.staging) / f"window-{number}")
            extract_to_files(pages, paths.raw, {"api": hook.stats()})
            extract_s += time.perf_counter() - t
            api_requests += hook.stats()["requests"]
            inbox.put((number, str(paths.root), window[0].isoformat(), window[1].isoformat(), hook.stats()))
        inbox.put(None)
        runs = [outbox.get(timeout=3600) for _ in range(args.windows)]
        worker_end = outbox.get(timeout=600)
        worker.join(timeout=60)
    finally:
        if worker.is_alive():
            worker.terminate()
    if worker.exitcode != 0:
        raise SystemExit(f"window worker exited with {worker.exitcode}")
    wall = time.perf_counter() - started
    stages = {"extract": extract_s, "gx": worker_end["gx_init_s"]}
    for run in runs:
        for stage, seconds in run["seconds"].items():
            if stage != "extract":
                stages[stage] = stages.get(stage, 0.0) + seconds
    return {
        "records": sum(run["records"] for run in runs),
        "wall_s": wall,
        "windows": args.windows,
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "inserted": sum(run["inserted"] for run in runs),
        "api": {"requests": api_requests},
        # both processes are alive at once: report the sum of their peaks
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + worker_end["peak_rss_mb"],
    }


def child_naive(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd
    import sqlalchemy as sa

    started = time.perf_counter()
    hook, pages = _pages(args.url, args.page_size)
    records = [record for page in pages for record in page.records]
    frame = pd.json_normalize(records, sep="_")
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, (list, dict))).any():
            frame[column] = frame[column].map(json.dumps)
    frame = frame.drop_duplicates(subset=["id"], keep="last")
    engine = sa.create_engine(args.pg_url)
    frame.to_sql(
        "orders_naive", engine, schema=args.schema, if_exists="replace", index=False, chunksize=10_000
    )
    wall = time.perf_counter() - started
    return {
        "records": len(records),
        "wall_s": wall,
        "api": hook.stats(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# ----------------------------------------------------------------------------- parent


def run_child(mode: str, records: int, args: argparse.Namespace, schema: str) -> dict[str, Any]:
    from sandbox.testing import run_sandbox

    with (
        run_sandbox(records=records, max_page_size=args.page_size, startup_timeout_s=60) as box,
        tempfile.TemporaryDirectory(prefix="bench_datapath_") as staging,
    ):
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
            "AIRFLOW_HOME": staging,
            "GX_ANALYTICS_ENABLED": "False",
        }
        command = [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--url",
            box.url,
            "--records",
            str(records),
            "--page-size",
            str(args.page_size),
            "--pg-url",
            args.pg_url,
            "--schema",
            schema,
            "--staging",
            str(Path(staging) / "stage"),
            "--windows",
            str(args.windows),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{mode} run with {records} records failed:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000, help="large run; the small run is a tenth")
    parser.add_argument("--naive-records", type=int, default=None, help="naive run size (default: small run)")
    parser.add_argument("--page-size", type=int, default=5000)
    parser.add_argument("--pg-url", default=os.environ.get("APISYNC_TEST_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--windows",
        type=int,
        default=0,
        help="also run the large scale as this many consecutive windows, extracting the next while "
        "the previous one is normalized/validated/loaded (default 0: skip; on the 2-core box it "
        "gains nothing, every process competes for the same cores)",
    )
    parser.add_argument(
        "--child", choices=["pipeline", "naive", "windowed", "floor_http"], help=argparse.SUPPRESS
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--staging", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        modes = {
            "pipeline": child_pipeline,
            "naive": child_naive,
            "windowed": child_windowed,
            "floor_http": child_floor_http,
        }
        print(json.dumps(modes[args.child](args)))
        return

    sys.path[:0] = [str(REPO / "plugins"), str(REPO)]
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(args.pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    small_n, large_n = args.records // 10, args.records
    naive_n = args.naive_records or small_n
    try:
        results: dict[str, dict[str, Any]] = {}
        for name, mode, n in (("small", "pipeline", small_n), ("large", "pipeline", large_n)):
            with engine.begin() as conn:  # each scale loads into an empty table
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{schema}".orders, "{schema}".order_items'))
            results[name] = run_child(mode, n, args, schema)
            print(f"# {mode} {n}: {json.dumps(results[name])}", file=sys.stderr)
            if name == "small":  # the same window again, into the table it just loaded
                results["remerge"] = run_child(mode, n, args, schema)
                print(f"# remerge {n}: {json.dumps(results['remerge'])}", file=sys.stderr)
        results["floor_copy"] = floor_copy(engine, schema, ["orders", "order_items"])
        results["floor_http"] = run_child("floor_http", large_n, args, schema)
        if args.windows > 0:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{schema}".orders, "{schema}".order_items'))
            results["windowed"] = run_child("windowed", large_n, args, schema)
            print(f"# windowed {large_n}: {json.dumps(results['windowed'])}", file=sys.stderr)
        if not args.skip_naive:
            results["naive"] = run_child("naive", naive_n, args, schema)
            print(f"# naive {naive_n}: {json.dumps(results['naive'])}", file=sys.stderr)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

    def rate(result: dict[str, Any]) -> float:
        return result["records"] / result["wall_s"]

    small, large = results["small"], results["large"]
    gx_share = large["stages_s"]["gx"] / large["wall_s"]
    small_label, large_label = _label(small_n), _label(large_n)
    print(
        f"BENCH datapath_{small_label} records_per_s={rate(small):.0f} peak_rss_mb={small['peak_rss_mb']:.0f}"
    )
    print(
        f"BENCH datapath_{large_label} records_per_s={rate(large):.0f} "
        f"peak_rss_mb={large['peak_rss_mb']:.0f} gx_share={gx_share:.3f}"
    )
    if "windowed" in results:
        windowed = results["windowed"]
        print(
            f"BENCH datapath_{large_label}_windowed windows={windowed['windows']} "
            f"records_per_s={rate(windowed):.0f} peak_rss_mb={windowed['peak_rss_mb']:.0f} "
            f"gx_share={windowed['stages_s']['gx'] / windowed['wall_s']:.3f}"
        )
    for name in ("small", "large", "windowed"):
        if name in results:
            print(f"# stages {name} (s): {results[name]['stages_s']} wall={results[name]['wall_s']:.1f}")
    ratios = f"rss_large_over_small={large['peak_rss_mb'] / small['peak_rss_mb']:.2f}"
    if "naive" in results:
        naive = results["naive"]
        print(f"BENCH datapath_naive records_per_s={rate(naive):.0f} peak_rss_mb={naive['peak_rss_mb']:.0f}")
        ratios = (
            f"speedup_vs_naive={rate(small) / rate(naive):.2f} "
            f"rss_naive_over_pipeline={naive['peak_rss_mb'] / small['peak_rss_mb']:.2f} {ratios}"
        )
    print(f"BENCH datapath_ratios {ratios}")
    remerge = results["remerge"]
    print(
        f"BENCH datapath_remerge_{small_label} seconds={remerge['wall_s']:.2f} "
        f"records_per_s={rate(remerge):.0f}"
    )
    http, copy = results["floor_http"], results["floor_copy"]
    print(
        f"BENCH floor_http mb_per_s={http['bytes'] / http['seconds'] / 1e6:.0f} "
        f"records_per_s={http['records'] / http['seconds']:.0f} seconds={http['seconds']:.2f}"
    )
    print(
        f"BENCH floor_copy rows_per_s={copy['rows'] / copy['seconds']:.0f} rows={copy['rows']} "
        f"seconds={copy['seconds']:.2f}"
    )
    floor_s = http["seconds"] + copy["seconds"]
    print(
        f"BENCH datapath_floor_ratios large_over_floor={large['wall_s'] / floor_s:.2f} "
        f"gx_share={gx_share:.3f}"
    )


if __name__ == "__main__":
    main()
