"""Two runs creating the same new table at once both succeed; bookkeeping tables of an older
release gain the columns added since."""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from apisync.load import RunRecord, load, record_run, sync_runs_table
from apisync.quality import validate
from apisync.spec import load_spec
from apisync.staging.raw_pages import extract_to_files
from apisync.transform import Lineage, normalize_files
from tests.load.datapath_fixtures import WINDOW, Target
from tests.transform.order_records import make_orders, pages_of

ROUNDS = 8


def _at_once(*calls: Callable[[], Any]) -> list[BaseException | None]:
    """Run ``calls`` in threads released together; return each one's exception (None: succeeded)."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # reported by the assertion, with its type
            errors[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def _fresh_schema(engine: sa.Engine) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    return schema


def _drop(engine: sa.Engine, schema: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def test_case10_two_loads_creating_the_same_new_table_both_succeed(postgres_url: str, tmp_path: Path) -> None:
    spec = load_spec("orders")
    root = tmp_path / "stage"
    extract_to_files(pages_of(make_orders(200), 100), root / "raw")
    normalize_files(
        spec, root / "raw", root / "normalized", Lineage("test", "run", *WINDOW, datetime.now(UTC))
    )
    validate(spec, root / "normalized", root / "raw", root / "validated")
    engines = [sa.create_engine(postgres_url), sa.create_engine(postgres_url)]
    try:
        for _ in range(ROUNDS):
            schema = _fresh_schema(engines[0])
            try:
                results: list[Any] = [None, None]

                def load_into(
                    index: int, schema: str = schema, results: list[Any] = results
                ) -> Callable[[], None]:
                    def call() -> None:
                        results[index] = load(
                            spec,
                            engines[index],
                            root / "validated",
                            window=WINDOW,
                            run_id=f"r{index}",
                            db_schema=schema,
                        )

                    return call

                errors = _at_once(load_into(0), load_into(1))
                assert errors == [None, None], f"a concurrent first create failed: {errors!r}"
                assert sorted((r.inserted, r.unchanged) for r in results) == [(0, 200), (200, 0)]
                target = Target(engines[0], schema)
                assert target.scalar(f"SELECT count(*) FROM {target.table('orders')}") == 200
            finally:
                _drop(engines[0], schema)
    finally:
        for engine in engines:
            engine.dispose()


def _record(run_id: str) -> RunRecord:
    return RunRecord(
        stream="orders", interval_start=WINDOW[0], interval_end=WINDOW[1], run_id=run_id, status="success"
    )


def test_case10_two_runs_creating_sync_runs_at_once_both_record(postgres_url: str) -> None:
    engines = [sa.create_engine(postgres_url), sa.create_engine(postgres_url)]
    try:
        for _ in range(ROUNDS * 2):
            schema = _fresh_schema(engines[0])
            try:
                errors = _at_once(
                    functools.partial(record_run, engines[0], _record("a"), schema),
                    functools.partial(record_run, engines[1], _record("b"), schema),
                )
                assert errors == [None, None], f"a concurrent first create of sync_runs failed: {errors!r}"
                runs = Target(engines[0], schema).rows(
                    f'SELECT run_id FROM "{schema}".sync_runs ORDER BY run_id'
                )
                assert runs == [("a",), ("b",)]
            finally:
                _drop(engines[0], schema)
    finally:
        for engine in engines:
            engine.dispose()


def test_sync_runs_of_an_older_release_gains_the_missing_columns(warehouse: Target) -> None:
    current = sync_runs_table(warehouse.db_schema)
    added_since = {"gx_seconds", "duration_seconds", "error"}
    old = sa.Table(
        current.name,
        sa.MetaData(schema=warehouse.db_schema),
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in current.columns
            if c.name not in added_since
        ),
    )
    with warehouse.engine.begin() as conn:
        old.create(conn)
        conn.execute(old.insert().values(**{k: v for k, v in vars(_record("old")).items() if k in old.c}))
    record = _record("new")
    record.gx_seconds, record.duration_seconds, record.error = 1.5, 2.5, None
    record_run(warehouse.engine, record, warehouse.db_schema)
    record_run(warehouse.engine, _record("newer"), warehouse.db_schema)
    rows = warehouse.rows(
        f"SELECT run_id, gx_seconds, duration_seconds FROM {warehouse.table('sync_runs')} ORDER BY id"
    )
    assert rows == [("old", None, None), ("new", 1.5, 2.5), ("newer", None, None)]
