"""Loading into real PostgreSQL and SQLite: idempotent replays, accounting, schema evolution, safety."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from apisync.load import SchemaEvolutionError
from apisync.spec import FieldSpec, load_spec
from apisync.transform import TooManyColumnsError
from tests.load.datapath_fixtures import Target, sync_records
from tests.transform.order_records import make_order, make_orders

LINEAGE = ("_synced_at", "_run_id", "_source", "_interval_start", "_interval_end")


def _runs(target: Target) -> list[tuple]:
    return target.rows(
        "SELECT status, records_pulled, records_deduped, records_quarantined, records_inserted, "
        f"records_updated, records_unchanged FROM {target.table('sync_runs')} ORDER BY id"
    )


def test_same_window_loaded_three_times_gives_identical_tables(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders")
    records = make_orders(700)
    sums = []
    for attempt in range(3):
        run = sync_records(spec, records, warehouse, tmp_path / "stage", run_id=f"run-{attempt}")
        sums.append(
            (
                warehouse.checksum("orders"),
                warehouse.checksum("order_items", order_by="orders_id, _position"),
            )
        )
        if attempt:
            assert (run.loaded.inserted, run.loaded.updated, run.loaded.unchanged) == (0, 0, 700)
    assert sums[0] == sums[1] == sums[2]
    assert len(sums[0][0]) == 700
    assert len(sums[0][1]) == sum(len(r["items"]) for r in records)
    assert [r[0] for r in _runs(warehouse)] == ["success"] * 3


def test_every_pulled_record_is_accounted_for(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders").model_copy(update={"chunk_size": 120})
    records = make_orders(500)
    newer = copy.deepcopy(records[10])
    newer["updated"] += 100
    newer["status"] = "refunded"
    records.append(newer)  # same key, later version, in another chunk
    records.insert(40, copy.deepcopy(records[41]))  # exact repeat on the same page
    records[200]["amount"] = "lots"  # coercion failure
    records[300]["currency"] = "doubloons"  # expectation failure
    run = sync_records(spec, records, warehouse, tmp_path / "stage")
    loaded = run.loaded
    assert run.normalized.pulled == len(records) == 502
    assert run.validated.quarantined == 2
    deduped = run.normalized.deduped + loaded.deduped
    assert deduped == 2
    assert loaded.inserted + loaded.updated + loaded.unchanged + deduped + run.validated.quarantined == 502
    assert (
        warehouse.scalar(f"SELECT status FROM {warehouse.table('orders')} WHERE id = 'ord_000011'")
        == "refunded"
    )
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('orders')}") == 498
    assert _runs(warehouse) == [("success", 502, 2, 2, 498, 0, 0)]


def test_merge_updates_newer_rows_and_ignores_stale_replays(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders")
    first = make_orders(300)
    revised = [make_order(i, revision=1000) if i % 3 == 0 else make_order(i) for i in range(300)]
    sync_records(spec, first, warehouse, tmp_path / "a")
    run = sync_records(spec, revised, warehouse, tmp_path / "b", run_id="run-2")
    assert (run.loaded.inserted, run.loaded.updated, run.loaded.unchanged) == (0, 100, 200)
    after_update = warehouse.checksum("orders")
    items_after_update = warehouse.checksum("order_items", order_by="orders_id, _position")
    stale = sync_records(spec, first, warehouse, tmp_path / "c", run_id="run-3")
    assert (stale.loaded.inserted, stale.loaded.updated) == (0, 0)
    assert warehouse.checksum("orders") == after_update
    assert warehouse.checksum("order_items", order_by="orders_id, _position") == items_after_update
    metadata = warehouse.scalar(f"SELECT metadata FROM {warehouse.table('orders')} WHERE id = 'ord_000001'")
    assert "1000" in str(metadata)


def test_new_source_field_adds_a_nullable_column(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders")
    sync_records(spec, make_orders(50), warehouse, tmp_path / "a")
    later = make_orders(50, start=50)
    for record in later:
        record["loyaltyTier"] = "gold"
    sync_records(spec, later, warehouse, tmp_path / "b", run_id="run-2")
    rows = warehouse.rows(f"SELECT id, loyalty_tier FROM {warehouse.table('orders')} ORDER BY id")
    assert len(rows) == 100
    assert {tier for _, tier in rows[:50]} == {None}
    assert {tier for _, tier in rows[50:]} == {"gold"}


def test_incompatible_type_change_is_a_clear_error(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders")
    records = make_orders(20)
    for record in records:
        record["score"] = 7
    sync_records(spec, records, warehouse, tmp_path / "a")
    before = warehouse.checksum("orders")
    for record in records:
        record["score"] = {"value": 7, "scale": "stars"}
        record["updated"] += 10
    spec_json = spec.model_copy(update={"fields": {**spec.fields, "score": spec.fields["metadata"]}})
    with pytest.raises(SchemaEvolutionError, match=r"column 'score' is BIGINT.*delivers json"):
        sync_records(spec_json, records, warehouse, tmp_path / "b", run_id="run-2")
    assert warehouse.checksum("orders") == before
    assert _runs(warehouse)[-1][0] == "failed"


def test_hostile_keys_are_sanitized_and_cannot_inject_sql(warehouse: Target, tmp_path: Path) -> None:
    with warehouse.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {warehouse.table('y')} (a integer)"))
    spec = load_spec("orders")
    records = make_orders(10)
    records[0]['x"; DROP TABLE y; --'] = "boom"
    records[1]["select"] = 1
    records[2]["Robert'); DROP TABLE orders;--"] = "bobby"
    sync_records(spec, records, warehouse, tmp_path / "a")
    assert warehouse.has_table("y")
    row = warehouse.rows(
        f'SELECT "x_drop_table_y", "select", "robert_drop_table_orders" FROM {warehouse.table("orders")} '
        "WHERE id = 'ord_000001'"
    )
    assert row == [("boom", None, None)]
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('orders')}") == 10


def test_absurd_payload_with_thousands_of_keys_is_refused(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders")
    records = make_orders(5)
    records[3].update({f"k{i}": i for i in range(3000)})
    with pytest.raises(TooManyColumnsError, match=r"3\d{3} columns, more than max_columns=200"):
        sync_records(spec, records, warehouse, tmp_path / "a")
    assert not warehouse.has_table("orders")
    assert _runs(warehouse)[-1][0] == "failed"


def test_replace_window_replaces_the_intervals_rows(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders")
    spec = spec.model_copy(
        update={"destination": spec.destination.model_copy(update={"write_mode": "replace_window"})}
    )
    records = make_orders(200)
    sync_records(spec, records, warehouse, tmp_path / "a")
    first = warehouse.checksum("orders", exclude=LINEAGE)
    sync_records(spec, records, warehouse, tmp_path / "b", run_id="run-2")
    assert warehouse.checksum("orders", exclude=LINEAGE) == first
    run = sync_records(spec, records[:150], warehouse, tmp_path / "c", run_id="run-3")
    assert run.loaded.deleted == 200
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('orders')}") == 150
    items = warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('order_items')}")
    assert items == sum(len(r["items"]) for r in records[:150])


def test_append_inserts_deduplicated_rows(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders")
    spec = spec.model_copy(
        update={"destination": spec.destination.model_copy(update={"write_mode": "append"})}
    )
    records = make_orders(30)
    records.append(copy.deepcopy(records[0]))
    run = sync_records(spec, records, warehouse, tmp_path / "a")
    assert (run.loaded.inserted, run.normalized.deduped + run.loaded.deduped) == (30, 1)
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('orders')}") == 30


def test_an_empty_window_loads_nothing_and_creates_no_table(warehouse: Target, tmp_path: Path) -> None:
    """A quiet hour on a fresh warehouse: success with zero rows, not a table with no columns."""
    run = sync_records(load_spec("orders"), [], warehouse, tmp_path / "stage")
    assert (run.loaded.inserted, run.loaded.updated, run.loaded.unchanged) == (0, 0, 0)
    assert not warehouse.has_table("orders")
    assert _runs(warehouse) == [("success", 0, 0, 0, 0, 0, 0)]


def test_an_empty_window_in_replace_mode_empties_the_window(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders")
    spec = spec.model_copy(
        update={"destination": spec.destination.model_copy(update={"write_mode": "replace_window"})}
    )
    sync_records(spec, make_orders(50), warehouse, tmp_path / "a")
    run = sync_records(spec, [], warehouse, tmp_path / "b", run_id="run-2")
    assert run.loaded.deleted == 50
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('orders')}") == 0
    assert warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('order_items')}") == 0


def test_refilling_an_emptied_table_replaces_its_orphaned_children(warehouse: Target, tmp_path: Path) -> None:
    """An existing but empty target takes the insert-only path: rows go straight in, and child rows
    left behind by deleted parents are replaced, not duplicated."""
    spec = load_spec("orders")
    records = make_orders(120)
    sync_records(spec, records, warehouse, tmp_path / "a")
    orders = warehouse.checksum("orders", exclude=LINEAGE)
    items = warehouse.checksum("order_items", order_by="orders_id, _position", exclude=LINEAGE)
    with warehouse.engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {warehouse.table('orders')}"))  # the children stay, orphaned
    run = sync_records(spec, records, warehouse, tmp_path / "b", run_id="run-2")
    assert (run.loaded.inserted, run.loaded.updated, run.loaded.unchanged) == (120, 0, 0)
    assert warehouse.checksum("orders", exclude=LINEAGE) == orders
    assert warehouse.checksum("order_items", order_by="orders_id, _position", exclude=LINEAGE) == items
    assert {
        row[0] for row in warehouse.rows(f"SELECT DISTINCT _run_id FROM {warehouse.table('order_items')}")
    } == {"run-2"}


def test_decimal_fields_load_exactly_on_every_path(warehouse: Target, tmp_path: Path) -> None:
    """numeric has no binary COPY encoder here: tables with a decimal column are sent as CSV."""
    spec = load_spec("orders")
    spec = spec.model_copy(update={"fields": {**spec.fields, "tax": FieldSpec(type="decimal", scale=2)}})
    records = make_orders(40)
    for i, record in enumerate(records):
        record["tax"] = f"{i}.{i % 7:02d}"
    sync_records(spec, records, warehouse, tmp_path / "a")
    revised = [make_order(i, revision=100) for i in range(20)] + make_orders(10, start=40)
    for i, record in enumerate(revised):
        record["tax"] = f"{1000 + i}.99"
    run = sync_records(spec, revised, warehouse, tmp_path / "b", run_id="run-2")
    assert (run.loaded.inserted, run.loaded.updated) == (10, 20)
    # SQLite hands NUMERIC back as float: compare decimal text
    taxes = {
        key: Decimal(str(tax))
        for key, tax in warehouse.rows(f"SELECT id, tax FROM {warehouse.table('orders')}")
    }
    assert len(taxes) == 50
    assert taxes["ord_000001"] == Decimal("1000.99")
    assert taxes["ord_000031"] == Decimal("30.02")
    assert taxes["ord_000050"] == Decimal("1029.99")


def test_integer_field_loads_into_an_evolved_float_column(warehouse: Target, tmp_path: Path) -> None:
    """The wire form follows the warehouse column (double precision), not the stream's integer."""
    spec = load_spec("orders")
    as_float = spec.model_copy(update={"fields": {**spec.fields, "amount": FieldSpec(type="float")}})
    sync_records(as_float, make_orders(30), warehouse, tmp_path / "a")
    later = [make_order(i, revision=100) for i in range(10)] + make_orders(10, start=30)
    run = sync_records(spec, later, warehouse, tmp_path / "b", run_id="run-2")
    assert (run.loaded.inserted, run.loaded.updated) == (10, 10)
    amounts = dict(warehouse.rows(f"SELECT id, amount FROM {warehouse.table('orders')}"))
    expected = {r["id"]: float(r["amount"]) for r in [*make_orders(30), *later]}
    assert amounts == expected


def test_first_load_builds_the_same_keys_as_a_created_table(
    postgres_url: str, pg_schema: str, tmp_path: Path
) -> None:
    """PostgreSQL builds a new table's keys after its rows are in: same names, columns, NOT NULL."""
    target = Target(sa.create_engine(postgres_url), pg_schema)
    spec = load_spec("orders")
    spec = spec.model_copy(
        update={"destination": spec.destination.model_copy(update={"write_mode": "replace_window"})}
    )
    sync_records(spec, make_orders(30), target, tmp_path / "a")
    with target.engine.connect() as conn:
        inspector = sa.inspect(conn)
        keys = {
            name: inspector.get_pk_constraint(name, schema=pg_schema) for name in ("orders", "order_items")
        }
        assert [(key["name"], key["constrained_columns"]) for key in keys.values()] == [
            ("orders_pkey", ["id"]),
            ("order_items_pkey", ["orders_id", "_position"]),
        ]
        assert [
            (i["name"], i["column_names"]) for i in inspector.get_indexes("orders", schema=pg_schema)
        ] == [("ix_orders_updated", ["updated"])]
        nullable = {c["name"]: c["nullable"] for c in inspector.get_columns("order_items", schema=pg_schema)}
        assert (nullable["orders_id"], nullable["_position"], nullable["sku"]) == (False, False, True)
    target.engine.dispose()
