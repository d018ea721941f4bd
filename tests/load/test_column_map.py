"""apisync_columns under concurrency: two transactions storing different names for one new key."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from apisync.errors import ColumnMapConflictError
from apisync.load.column_map import column_map_writer, read_column_maps
from apisync.spec import load_spec


def test_the_second_of_two_concurrent_runs_sees_the_first_ones_name_and_fails(
    postgres_url: str, pg_schema: str
) -> None:
    spec = load_spec("orders")
    engine = sa.create_engine(postgres_url)
    first = column_map_writer(spec, {"orders": {'["a-b"]': "a_b"}}, run_id="run-a", db_schema=pg_schema)
    second = column_map_writer(
        spec, {"orders": {'["a_b"]': "a_b", '["a-b"]': "a_b_1f4e52c6"}}, run_id="run-b", db_schema=pg_schema
    )
    outcome: list[BaseException | None] = []

    def run_second() -> None:
        try:
            with engine.begin() as conn:
                second(conn)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)
        else:
            outcome.append(None)

    try:
        with engine.begin() as conn:
            first(conn)  # creates the table and holds its row until commit
            thread = threading.Thread(target=run_second)
            thread.start()
            time.sleep(0.5)  # the second blocks on the first's uncommitted key (or its table)
            assert not outcome, "the second run did not wait for the first"
        thread.join(timeout=30)
        assert len(outcome) == 1 and isinstance(outcome[0], ColumnMapConflictError), outcome
        assert "run run-a" in str(outcome[0]) and "stream orders" in str(outcome[0])
        assert read_column_maps(engine, spec, pg_schema) == {"orders": {("a-b",): "a_b"}}
    finally:
        engine.dispose()


def test_two_runs_that_agree_on_a_name_both_succeed(postgres_url: str, pg_schema: str) -> None:
    spec = load_spec("orders")
    engine = sa.create_engine(postgres_url)
    try:
        for run_id in ("run-a", "run-b"):
            writer = column_map_writer(
                spec, {"order_items": {'["x-y"]': "x_y"}}, run_id=run_id, db_schema=pg_schema
            )
            with engine.begin() as conn:
                writer(conn)
        assert read_column_maps(engine, spec, pg_schema) == {"order_items": {("x-y",): "x_y"}}
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text(f'SELECT destination_table, first_seen_run FROM "{pg_schema}".apisync_columns')
            ).all()
        assert stored == [(f"{pg_schema}.order_items", "run-a")]
    finally:
        engine.dispose()


@pytest.mark.parametrize("entries", [{}, {"orders": {}}])
def test_nothing_new_writes_nothing(postgres_url: str, pg_schema: str, entries: dict) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            column_map_writer(load_spec("orders"), entries, run_id="r", db_schema=pg_schema)(conn)
            assert not sa.inspect(conn).has_table("apisync_columns", schema=pg_schema)
    finally:
        engine.dispose()
