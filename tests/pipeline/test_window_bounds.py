"""Issue 9, case 4: every window owns exactly its records, whatever the server's filter semantics.

A real local HTTP server filters on ``updated_at`` with the operators it knows (``updated_gte``,
``updated_gt``, ``updated_lte``, ``updated_lt``) and silently ignores any other param, as real
APIs do; two or three adjacent windows run through ``run_window`` into a real warehouse.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from apisync.errors import QuarantineThresholdError
from apisync.http import ApiHook
from apisync.pipeline.runner import WindowRun, run_window
from apisync.spec import StreamSpec, include_dir, load_spec, render_window
from apisync.staging.layout import RunPaths, window_key
from tests.http.conftest import dag_in_a_folder
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server
from tests.load.datapath_fixtures import Target

DAY = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
SPEC = """
name: items
source:
  endpoint: /api/items
  pagination: {{type: offset, page_size: 4}}
  window_format: {window_format}
  params:
    {start_param}: "{{window_start}}"
    {end_param}: "{{window_end}}"
{bounds}primary_key: [id]
cursor_field: {cursor}
fields:
  id: {{type: integer}}
  name: {{type: string}}
  updated_at: {{type: timestamp}}
  version: {{type: integer}}
arrays:
  lines: {{mode: child_table, table: item_lines}}
quality:
  suite: items
destination:
  table: items
  write_mode: merge
"""
SUITE = {
    "name": "items",
    "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}],
}
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "updated_gte": lambda stamp, bound: stamp >= bound,
    "updated_gt": lambda stamp, bound: stamp > bound,
    "updated_lte": lambda stamp, bound: stamp <= bound,
    "updated_lt": lambda stamp, bound: stamp < bound,
}


def _instant(value: str) -> float:
    if value.lstrip("-").isdigit():
        return float(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class FilterServer:
    """Offset-paged ``/api/items`` filtered on ``updated_at`` by the operators in ``known`` only."""

    records: list[dict[str, Any]]
    known: frozenset[str]
    url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)

    def select(self, query: dict[str, str]) -> list[dict[str, Any]]:
        chosen = self.records
        for name, check in _OPERATORS.items():
            if name in self.known and name in query:
                bound = _instant(query[name])
                chosen = [r for r in chosen if check(_instant(r["updated_at"]), bound)]
        return sorted(chosen, key=lambda r: (r["updated_at"], r["id"]))

    def answer(self, call: Call, _: ScriptedServer) -> Reply:
        self.requests.append(call.query)
        selected = self.select(call.query)
        offset, limit = int(call.query["offset"]), int(call.query["limit"])
        return Reply(
            json.dumps({"items": selected[offset : offset + limit], "total": len(selected)}).encode()
        )


@pytest.fixture
def filter_server() -> Iterator[Callable[..., FilterServer]]:
    with ExitStack() as servers:

        def start(records: list[dict[str, Any]], known: set[str]) -> FilterServer:
            server = FilterServer(records, frozenset(known))
            server.url = servers.enter_context(scripted_server(server.answer)).url
            return server

        yield start


def _record(number: int, stamp: datetime, lines: int = 1) -> dict[str, Any]:
    return {
        "id": number,
        "name": f"item {number}",
        "updated_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": int(stamp.timestamp()),
        "lines": [{"sku": f"SKU-{number}-{line}", "quantity": line + 1} for line in range(lines)],
    }


def _stream(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    *,
    start_param: str = "updated_gte",
    end_param: str = "updated_lt",
    bounds: str = "",
    window_format: str = "iso",
    cursor: str = "updated_at",
) -> StreamSpec:
    """The ``items`` stream in an include dir of its own, and ``items_api`` pointing at ``url``."""
    include = tmp_path / "include"
    (include / "streams").mkdir(parents=True)
    (include / "expectations").mkdir()
    bounds_yaml = f"  window_bounds: {bounds}\n" if bounds else ""
    (include / "streams" / "items.yaml").write_text(
        SPEC.format(
            start_param=start_param,
            end_param=end_param,
            bounds=bounds_yaml,
            window_format=window_format,
            cursor=cursor,
        )
    )
    (include / "expectations" / "items.json").write_text(json.dumps(SUITE))
    monkeypatch.setenv("APISYNC_INCLUDE_DIR", str(include))
    connection = {"conn_type": "http", "host": url, "extra": {"auth": {"type": "none"}}}
    monkeypatch.setenv("AIRFLOW_CONN_ITEMS_API", json.dumps(connection))
    return load_spec("items")


def _sync(
    spec: StreamSpec, window: tuple[datetime, datetime], target: Target, root: Path, run_id: str
) -> WindowRun:
    source = spec.source
    hook = ApiHook(http_conn_id="items_api")
    rendered = render_window(source.params, *window, source.window_format, source.window_bounds)
    pages = hook.paginate(
        source.endpoint,
        params=rendered,
        pagination=source.pagination.model_dump(),
        records_path=source.records_path or None,
    )
    return run_window(
        spec,
        pages,
        RunPaths(root / window_key(*window)),
        target.engine,
        window=window,
        run_id=run_id,
        source="items_api",
        db_schema=target.db_schema,
    )


def _windows(count: int) -> list[tuple[datetime, datetime]]:
    return [(DAY + HOUR * i, DAY + HOUR * (i + 1)) for i in range(count)]


def _owner(stamp: str, windows: list[tuple[datetime, datetime]]) -> datetime:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return next(start for start, end in windows if start <= moment < end)


def _moment(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _lineage(target: Target, table: str, key: str) -> dict[int, set[datetime]]:
    """Key -> the window starts its rows carry (one per key when every window owns its records)."""
    found: dict[int, set[datetime]] = {}
    for number, start in target.rows(f"SELECT {key}, _interval_start FROM {target.table(table)}"):
        found.setdefault(int(number), set()).add(_moment(start))
    return found


def _audit(target: Target) -> list[tuple[Any, ...]]:
    return target.rows(
        "SELECT records_pulled, records_inserted, records_updated, records_unchanged, records_deduped,"
        f" records_quarantined, records_out_of_window FROM {target.table('sync_runs')} ORDER BY id"
    )


def _accounted_audit(target: Target) -> list[tuple[Any, ...]]:
    """The ``sync_runs`` rows, each checked: pulled = inserted + ... + quarantined + out_of_window."""
    audit = _audit(target)
    for pulled, *parts in audit:
        assert pulled == sum(parts), audit
    return audit


BOUNDARY_RECORDS = [
    _record(1, DAY),  # exactly on window 1's start
    _record(2, DAY + timedelta(minutes=10)),
    _record(3, DAY + HOUR - timedelta(seconds=1)),
    _record(4, DAY + HOUR, lines=3),  # exactly on the boundary of windows 1 and 2
    _record(5, DAY + HOUR + timedelta(minutes=30), lines=2),
    _record(6, DAY + 2 * HOUR),  # exactly on the boundary of windows 2 and 3
    _record(7, DAY + 2 * HOUR + timedelta(minutes=59)),
]


@pytest.mark.parametrize(
    ("start_param", "end_param", "bounds", "cursor"),
    [
        ("updated_gte", "updated_lte", "", "updated_at"),  # an inclusive end asks for a superset as is
        ("updated_gte", "updated_lte", "{start: inclusive, end: inclusive}", "updated_at"),
        ("updated_gt", "updated_lte", "{start: exclusive, end: inclusive}", "updated_at"),
        ("updated_gte", "updated_lte", "{end: inclusive}", "version"),  # integer cursor: epoch seconds
    ],
)
def test_case4_record_on_a_window_boundary_belongs_to_exactly_one_window(
    start_param: str,
    end_param: str,
    bounds: str,
    cursor: str,
    filter_server: Callable[..., FilterServer],
    warehouse: Target,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = filter_server(BOUNDARY_RECORDS, {"updated_gte", "updated_gt", "updated_lte", "updated_lt"})
    spec = _stream(
        tmp_path,
        monkeypatch,
        server.url,
        start_param=start_param,
        end_param=end_param,
        bounds=bounds,
        cursor=cursor,
    )
    windows = _windows(3)
    runs = [
        _sync(spec, window, warehouse, tmp_path / "stage", f"run-{i}") for i, window in enumerate(windows)
    ]

    expected = {record["id"]: {_owner(record["updated_at"], windows)} for record in BOUNDARY_RECORDS}
    assert _lineage(warehouse, "items", "id") == expected
    child_lineage = _lineage(warehouse, "item_lines", "items_id")
    assert child_lineage == expected
    lines = warehouse.rows(
        f"SELECT items_id, count(*) FROM {warehouse.table('item_lines')} GROUP BY items_id"
    )
    assert dict(lines) == {record["id"]: len(record["lines"]) for record in BOUNDARY_RECORDS}
    # Each window pulled its own records plus the one on its (inclusive) end, and dropped that one.
    assert [run.normalized.out_of_window for run in runs] == [1, 1, 0]
    audit = _accounted_audit(warehouse)
    assert [row[-1] for row in audit] == [1, 1, 0]
    assert [row[1] for row in audit] == [3, 2, 2]  # inserted: every record once, in its own window


def test_case4_server_ignoring_the_half_open_filter_still_gives_each_window_exactly_its_records(
    filter_server: Callable[..., FilterServer],
    warehouse: Target,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    windows = _windows(3)
    records = [_record(i + 1, DAY + timedelta(minutes=6 * i)) for i in range(30)]  # 10 per window
    # The server knows updated_gte/updated_lte but not the spec's updated_lt: it ignores it.
    server = filter_server(records, {"updated_gte", "updated_lte"})
    spec = _stream(tmp_path, monkeypatch, server.url)
    with caplog.at_level(logging.WARNING, logger="apisync"):
        runs = [
            _sync(spec, window, warehouse, tmp_path / "stage", f"run-{i}") for i, window in enumerate(windows)
        ]

    assert [run.normalized.pulled for run in runs] == [30, 20, 10]  # the rest of the table came back
    for start, end in windows:
        truth = {
            (r["id"], r["name"], r["version"])
            for r in records
            if start <= datetime.fromisoformat(r["updated_at"].replace("Z", "+00:00")) < end
        }
        loaded = warehouse.rows(
            f"SELECT id, name, version FROM {warehouse.table('items')} WHERE _interval_start = :start",
            start=start if warehouse.db_schema else start.strftime("%Y-%m-%d %H:%M:%S.%f"),
        )
        assert {tuple(row) for row in loaded} == truth and len(loaded) == 10
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('items')}") == 30
    audit = _accounted_audit(warehouse)
    assert [row[-1] for row in audit] == [20, 10, 0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    flagged = [message for message in warnings if "out of window" in message or "outside" in message]
    # Only the first window (20 of 30 outside) says the server probably ignores the filter.
    assert len(flagged) == 1, warnings
    assert "items" in flagged[0] and "updated_lt" in flagged[0] and "2026-01-05T00:00:00" in flagged[0]


def test_case4_exclusive_start_is_widened_so_the_request_asks_for_enough(tmp_path: Path) -> None:
    """``gt`` one second before the window start (the unit both formats render); the end rounds up."""
    spec_path = tmp_path / "items.yaml"
    spec_path.write_text(
        SPEC.format(
            start_param="since",
            end_param="until",
            bounds="  window_bounds: {start: exclusive, end: inclusive}\n",
            window_format="epoch",
            cursor="updated_at",
        )
    )
    source = load_spec(spec_path).source
    start, end = DAY, DAY + HOUR + timedelta(microseconds=1)
    epoch = render_window(source.params, start, end, "epoch", source.window_bounds)
    assert epoch == {"since": int(DAY.timestamp()) - 1, "until": int(DAY.timestamp()) + 3601}
    iso = render_window(source.params, start, end, "iso", source.window_bounds)
    assert iso == {"since": "2026-01-04T23:59:59Z", "until": "2026-01-05T01:00:01Z"}
    half_open = render_window(source.params, start + timedelta(milliseconds=500), end, "epoch")
    assert half_open == {"since": int(DAY.timestamp()), "until": int(DAY.timestamp()) + 3601}


SLICED_DAG = """
from datetime import UTC, datetime

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from apisync.pipeline import sync_stream

with DAG(
    "test_apisync_sliced_items",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 12, 1, tzinfo=UTC),
    catchup=False,
    params={
        "window_start": Param(None, type=["null", "string"]),
        "window_end": Param(None, type=["null", "string"]),
    },
) as dag:
    sync_stream("items", source_conn_id="items_api", warehouse_conn_id="warehouse_test", partitions=3)
"""


@pytest.mark.slow
def test_case4_mapped_slices_of_a_window_own_disjoint_records(
    airflow_db: Path,
    filter_server: Callable[..., FilterServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three slices of a 10-second window end at fractional seconds (3.33 s, 6.67 s): each slice asks
    the inclusive server for whole seconds around its slice and keeps exactly its own records; the
    count of the others travels normalize -> validate -> load (XCom) into ``sync_runs``."""
    import sqlalchemy as sa

    records = [_record(i + 1, DAY + timedelta(seconds=i)) for i in range(11)]  # 0 s .. 10 s
    server = filter_server(records, {"updated_gte", "updated_lte"})
    _stream(tmp_path, monkeypatch, server.url, end_param="updated_lte")  # an inclusive end: as is
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_TEST", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")
    dag = dag_in_a_folder(tmp_path, monkeypatch, "apisync_test_sliced_items.py", SLICED_DAG)[0]

    run = dag.test(
        logical_date=datetime(2026, 1, 6, tzinfo=UTC),
        run_conf={"window_start": "2026-01-05T00:00:00Z", "window_end": "2026-01-05T00:00:10Z"},
    )
    assert run.state == "success", [(ti.task_id, ti.map_index, ti.state) for ti in run.get_task_instances()]
    engine = sa.create_engine(f"sqlite:///{database}")
    target = Target(engine, None)
    loaded = target.rows("SELECT id, updated_at, _interval_start, _interval_end FROM items")
    assert sorted(row[0] for row in loaded) == list(range(1, 11))  # 10 s is the next window's
    for _, updated, start, end in loaded:
        assert _moment(start) <= _moment(updated) < _moment(end)
    audit = _accounted_audit(target)
    assert sum(row[1] for row in audit) == 10  # inserted once each, by its own slice
    assert sorted(row[-1] for row in audit) == [1, 2, 2]  # 4 s | 3 s, 7 s | 6 s, 10 s
    engine.dispose()


def test_case4_quarantine_share_counts_only_the_windows_own_records(
    filter_server: Callable[..., FilterServer],
    warehouse: Target,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1 bad record of the window's 10 is 10 % (over the 5 % threshold), not 1 of the 30 pulled."""
    records = [_record(i + 1, DAY + timedelta(minutes=6 * i)) for i in range(30)]
    records[3]["id"] = None
    server = filter_server(records, {"updated_gte"})  # ignores updated_lt: the whole rest comes back
    spec = _stream(tmp_path, monkeypatch, server.url)
    with pytest.raises(QuarantineThresholdError, match=r"1 of 10 records quarantined \(10\.00%\)"):
        _sync(spec, _windows(1)[0], warehouse, tmp_path / "stage", "run-0")
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('quarantine')}") == 1
    failed = warehouse.rows(
        f"SELECT status, records_pulled, records_quarantined, records_out_of_window"
        f" FROM {warehouse.table('sync_runs')}"
    )
    assert failed == [("failed", 30, 1, 20)]


def test_case4_sandbox_stripe_inclusive_end_loads_boundary_records_once(
    sandbox: Callable[..., Any], warehouse: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox's Stripe dialect with ``updated[lte]``; five orders updated exactly at midnight."""
    box = sandbox(records=300, max_page_size=100)
    boundary = datetime(2026, 1, 4, tzinfo=UTC)
    on_boundary = set(box.mutate(5, at="2026-01-04T00:00:00Z")["changed"]["orders"])
    include = tmp_path / "include"
    (include / "streams").mkdir(parents=True)
    (include / "expectations").mkdir()
    shipped = include_dir()
    orders = (shipped / "streams" / "orders.yaml").read_text()
    (include / "streams" / "orders.yaml").write_text(orders.replace('"updated[lt]"', '"updated[lte]"'))
    (include / "expectations" / "orders.json").write_text(
        (shipped / "expectations" / "orders.json").read_text()
    )
    monkeypatch.setenv("APISYNC_INCLUDE_DIR", str(include))
    connection = {
        "conn_type": "http",
        "host": box.url,
        "password": "sandbox-key",
        "extra": {"auth": {"type": "api_key"}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ITEMS_API", json.dumps(connection))
    spec = load_spec("orders")
    assert spec.source.params["updated[lte]"] == "{window_end}"
    windows = [(boundary - timedelta(days=1), boundary), (boundary, boundary + timedelta(days=1))]
    runs = [
        _sync(spec, window, warehouse, tmp_path / "stage", f"run-{i}") for i, window in enumerate(windows)
    ]

    for table, key in (("orders", "id"), ("order_items", "orders_id")):
        lineage: dict[str, set[datetime]] = {}
        for order_id, start in warehouse.rows(f"SELECT {key}, _interval_start FROM {warehouse.table(table)}"):
            lineage.setdefault(order_id, set()).add(_moment(start))
        for start, end in windows:
            truth = box.truth("orders", updated_gte=start.isoformat(), updated_lt=end.isoformat())
            owned = {order_id for order_id, starts in lineage.items() if starts == {start}}
            assert owned == {record["id"] for record in truth}, (table, start)
        assert all(lineage[order_id] == {boundary} for order_id in on_boundary)
    assert runs[0].normalized.out_of_window >= len(on_boundary) == 5
    _accounted_audit(warehouse)
