"""A stream declared only as data, synced window by window through the real pipeline.

The spec is a YAML written into an include dir of the test's own (a recipe of docs/recipes.md as
its source, the orders' fields around it, a suite), the connection an Airflow connection env var;
then :meth:`ApiHook.paginate` feeds :func:`~apisync.pipeline.runner.run_window` (extract ->
normalize -> validate -> load) exactly as the DAG's tasks do.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from apisync.http import ApiHook
from apisync.http.hook import add_stats
from apisync.pipeline.runner import WindowRun, run_window
from apisync.spec import StreamSpec, load_spec, render_window
from apisync.staging.layout import RunPaths
from tests.load.datapath_fixtures import Target
from tests.recipes import stream
from thirdparty.servers import ThirdPartyServer, orders

START = datetime(2026, 1, 1, tzinfo=UTC)
ORDERS = orders(2000, start=START)  # 37 s apart: 2026-01-01T00:00:00.000Z .. 20:32:43.000Z
# Two adjacent windows meeting exactly on order 1001's updated_at: the boundary record.
BOUNDARY = START + timedelta(seconds=37 * 1000)
WINDOWS = [(START, BOUNDARY), (BOUNDARY, START + timedelta(days=1))]
ORDER_FIELDS = {
    "amount": {"type": "decimal", "scale": 2},
    "status": {"type": "string"},
    "customer_email": {"type": "string"},
}
SUITE = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "status", "value_set": ["paid", "open", "refunded", "void"]},
    },
]


def declare_stream(
    include: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: dict[str, Any]
) -> StreamSpec:
    """Write the stream ``name`` (``source`` + the orders' fields) and its suite; load it."""
    (include / "streams").mkdir(parents=True, exist_ok=True)
    (include / "expectations").mkdir(exist_ok=True)
    (include / "streams" / f"{name}.yaml").write_text(yaml.safe_dump(stream(name, source, **ORDER_FIELDS)))
    (include / "expectations" / f"{name}.json").write_text(json.dumps({"name": name, "expectations": SUITE}))
    monkeypatch.setenv("APISYNC_INCLUDE_DIR", str(include))
    return load_spec(name)


@dataclass
class Synced:
    runs: list[WindowRun] = field(default_factory=list)
    api: dict[str, Any] = field(default_factory=dict)


def sync_windows(spec: StreamSpec, conn_id: str, target: Target, root: Path) -> Synced:
    """Each of :data:`WINDOWS` as one run (its own hook, as each task has), in order."""
    synced = Synced()
    source = spec.source
    for number, window in enumerate(WINDOWS, 1):
        hook = ApiHook(http_conn_id=conn_id)
        pages = hook.paginate(
            source.endpoint,
            params=render_window(dict(source.params), *window, source.window_format, source.window_bounds),
            pagination=source.pagination.model_dump(),
            records_path=source.records_path,
            method=source.method,
        )
        run = run_window(
            spec,
            pages,
            RunPaths(root / f"window-{number}"),
            target.engine,
            window=window,
            run_id=f"run-{number}",
            source="thirdparty",
            db_schema=target.db_schema,
        )
        synced.runs.append(run)
        synced.api = add_stats(synced.api, hook.stats())
    return synced


def served_to_the_sync(server: ThirdPartyServer) -> Counter[int]:
    """nginx's responses to the sync's requests, by status: those that carry the window filter
    (``updated_at``), not the readiness probe, whose log line may land after the log was cleared."""
    log = server.workdir / "nginx" / "access.log"
    counts: Counter[int] = Counter()
    for line in log.read_text().splitlines():
        status, _, request = line.partition(" ")
        if "updated_at" in request:
            counts[int(status)] += 1
    return counts


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def assert_warehouse_is_the_servers_data(
    target: Target, table: str, truth: list[dict[str, Any]], synced: Synced
) -> None:
    """Every order once, as the server has it; the boundary order loaded by the later window."""
    rows = target.rows(
        f"SELECT id, updated_at, amount, status, customer_email, _interval_start FROM {target.table(table)}"
    )
    loaded = Counter(row[0] for row in rows)
    assert [key for key, count in loaded.items() if count > 1] == [], "duplicated"
    assert sorted(set(r["id"] for r in truth) - set(loaded)) == [], "lost"
    assert set(loaded) == {r["id"] for r in truth}
    by_id = {r["id"]: r for r in truth}
    for key, updated_at, amount, status, email, _ in rows:
        want = by_id[key]
        assert (iso_ms(updated_at), float(amount), status, email) == (
            want["updated_at"],
            want["amount"],
            want["status"],
            want["customer_email"],
        )
    # Adjacent windows: the order stamped on the boundary came back in both (an inclusive end),
    # and was loaded once, by the window it belongs to; nothing was loaded by both.
    boundary = next(r["id"] for r in truth if r["updated_at"] == iso_ms(BOUNDARY))
    interval_of = {row[0]: row[5] for row in rows}
    assert interval_of[boundary].astimezone(UTC) == BOUNDARY
    first, second = synced.runs
    assert first.loaded.inserted + second.loaded.inserted == len(truth)
    assert first.loaded.updated == second.loaded.updated == 0
    assert first.validated.quarantined == second.validated.quarantined == 0
