"""`make demo`: every sync DAG once, for one fixed interval, against the sandbox; no UI.

Runs each DAG with `dag.test()` (tasks in this process, real HTTP to the sandbox servers, the
embedded SQLite warehouse), then prints one line per stream from the `sync_runs` audit table, and
each stream's coverage from the interval ledger (windows synced / expected over the demo's range).
Running it again for the same interval changes nothing in the warehouse: the rows come back
unchanged, which is the point.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta

from localstack import (
    DEFAULT_AIRFLOW_HOME,
    airflow_env,
    connections_env,
    prepare_metadata_db,
    run_dag_once,
    running_sandboxes,
)

DEMO_HOME = DEFAULT_AIRFLOW_HOME / "demo"
DEMO_INTERVAL_START = datetime.fromisoformat("2026-01-03T10:00:00+00:00")
DEMO_INTERVAL = timedelta(hours=1)
COLUMNS = (
    ("stream", "stream"),
    ("interval", "interval (UTC)"),
    ("status", "status"),
    ("records_pulled", "pulled"),
    ("records_repeated", "repeated"),
    ("records_deduped", "deduped"),
    ("records_quarantined", "quarantined"),
    ("records_out_of_window", "out of window"),
    ("records_inserted", "inserted"),
    ("records_updated", "updated"),
    ("records_unchanged", "unchanged"),
    ("api_calls", "API calls"),
    ("api_429s", "429s"),
    ("throttled_seconds", "throttled s"),
)


def migrate(env: dict[str, str]) -> None:
    marker = DEMO_HOME / ".migrated"
    if not marker.exists():
        print("preparing the demo Airflow metadata DB (first run only)…", flush=True)
        prepare_metadata_db(env)
        marker.touch()


def sync_dags() -> list:
    """The sync DAGs, warehouse syncs first so the CRM push sees their rows."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    dags = [d for d in bag.dags.values() if "sync" in d.tags]
    return sorted(dags, key=lambda d: ("crm" in d.tags, d.dag_id))


def print_table(rows: list[dict]) -> None:
    def fmt(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.1f}"
        return "-" if value is None else str(value)

    header = [title for _, title in COLUMNS]
    body = [[fmt(row.get(key)) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in body:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def audit_rows(run_ids: list[str]) -> list[dict]:
    import sqlalchemy as sa

    from apisync.load.audit import sync_runs_table
    from apisync.load.connection import warehouse_from_connection

    warehouse = warehouse_from_connection("warehouse_default")
    table = sync_runs_table(warehouse.db_schema)
    with warehouse.engine.connect() as conn:
        query = sa.select(table).where(table.c.run_id.in_(run_ids)).order_by(table.c.id)
        latest: dict[tuple, dict] = {}
        for row in conn.execute(query).mappings():
            # the last attempt per stream and slice (a partitioned stream audits each slice)
            latest[(row["stream"], row["interval_start"])] = dict(row)
    merged: dict[str, dict] = {}
    for (stream, _), row in sorted(latest.items()):
        total = merged.setdefault(stream, {"stream": stream, "status": row["status"], "_spans": []})
        total["_spans"].append((row["interval_start"], row["interval_end"]))
        if row["status"] != "success":
            total["status"] = row["status"]
        for key, _title in COLUMNS[3:]:
            if row.get(key) is not None:
                total[key] = (total.get(key) or 0) + row[key]
    for total in merged.values():
        start, end = min(s for s, _ in total["_spans"]), max(e for _, e in total["_spans"])
        slices = f" ({len(total['_spans'])} slices)" if len(total["_spans"]) > 1 else ""
        total["interval"] = f"{start:%m-%d %H:%M}-{end:%H:%M}{slices}"
    return list(merged.values())


def print_coverage(dags: list, runs: dict[str, object]) -> None:
    """Each stream's ledger over the window its demo run covered: synced / expected, and any gap."""
    from apisync.coverage import WindowState, read_ledger
    from apisync.load.connection import warehouse_from_connection
    from apisync.pipeline.coverage import sync_targets

    warehouse = warehouse_from_connection("warehouse_default")
    print("\ncoverage (interval ledger over the demo's range: windows synced / expected):")
    for target in sync_targets(dags):
        run = runs[target.dag_id]
        start = run.data_interval_start
        ledger = read_ledger(
            warehouse.engine,
            target.stream,
            timetable=target.timetable,
            start=start,
            end=start,
            now=datetime.now(UTC),
            grace=timedelta(0),
            db_schema=warehouse.db_schema,
        )
        synced = ledger.count(WindowState.SYNCED)
        gap = f"  ({ledger.summary()})" if ledger.missing else ""
        print(f"  {target.stream:<10} {synced}/{ledger.expected} windows synced{gap}")


def main() -> int:
    DEMO_HOME.mkdir(parents=True, exist_ok=True)
    os.environ.update(airflow_env(DEMO_HOME))
    # Task logs would bury the summary; warnings and errors still show.
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    migrate(dict(os.environ))
    with running_sandboxes(ephemeral_ports=True, log_dir=DEMO_HOME) as urls:
        os.environ.update(connections_env(urls, DEMO_HOME))
        interval_end = DEMO_INTERVAL_START + DEMO_INTERVAL
        print(f"interval: {DEMO_INTERVAL_START.isoformat()} → {interval_end.isoformat()}\n", flush=True)
        run_ids, failed, runs = [], [], {}
        dags = sync_dags()
        for dag in dags:
            print(f"▶ {dag.dag_id}", flush=True)
            run = run_dag_once(dag, interval_end)
            run_ids.append(run.run_id)
            runs[dag.dag_id] = run
            print(f"  {dag.dag_id}: {run.state}", flush=True)
            if str(run.state) != "success":
                failed.append(dag.dag_id)
        print()
        print_table(audit_rows(run_ids))
        print_coverage(dags, runs)
    if failed:
        print(f"\nfailed: {', '.join(failed)} (see the task logs above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
