"""Case 6 of issue 9: a source key keeps its column across chunks and runs, and no two keys share one.

The whole data path (``run_window``) into SQLite and PostgreSQL. The suffixed names are the
documented rule (apisync.naming): the natural name, ``_``, the first 8 hex digits of BLAKE2s over
the key's dotted path (``a_b`` -> ``a3371a87``, ``meta.tag`` -> ``9d641b34``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apisync.errors import ColumnMapConflictError
from apisync.pipeline import steps
from apisync.pipeline.runner import run_window
from apisync.spec import FieldSpec, load_spec
from apisync.staging.layout import RunPaths
from apisync.staging.raw_pages import extract_to_files
from tests.load.datapath_fixtures import WINDOW, Target, sync_records
from tests.transform.order_records import make_orders, pages_of


def _column(target: Target, table: str, column: str) -> dict[str, Any]:
    rows = target.rows(f'SELECT id, "{column}" FROM {target.table(table)} ORDER BY id')
    return dict(rows)


def test_case6_a_key_keeps_its_column_when_a_later_chunk_brings_a_colliding_key(
    warehouse: Target, tmp_path: Path
) -> None:
    spec = load_spec("orders").model_copy(update={"chunk_size": 100})
    records = make_orders(200)
    for i, record in enumerate(records):
        if i >= 100:  # chunk 2 only: "a_b" first, then "a-b"
            record["a_b"] = f"underscore-{i}"
        record["a-b"] = f"dash-{i}"
    sync_records(spec, records, warehouse, tmp_path / "stage")
    dash = _column(warehouse, "orders", "a_b")
    assert set(dash.values()) == {f"dash-{i}" for i in range(200)}, "two source keys share column a_b"
    underscore = _column(warehouse, "orders", "a_b_a3371a87")
    assert sorted(v for v in underscore.values() if v) == sorted(f"underscore-{i}" for i in range(100, 200))


def test_case6_a_literal_dotted_key_and_the_nested_path_both_keep_their_values(
    warehouse: Target, tmp_path: Path
) -> None:
    spec = load_spec("orders")
    records = make_orders(20)
    for i, record in enumerate(records):
        record["meta.tag"] = f"literal-{i}"
        record["meta"] = {"tag": f"nested-{i}"}
    sync_records(spec, records, warehouse, tmp_path / "stage")
    assert set(_column(warehouse, "orders", "meta_tag").values()) == {f"literal-{i}" for i in range(20)}
    assert set(_column(warehouse, "orders", "meta_tag_9d641b34").values()) == {
        f"nested-{i}" for i in range(20)
    }


def test_case6_a_later_run_maps_a_key_to_the_column_it_was_first_given(
    warehouse: Target, tmp_path: Path
) -> None:
    spec = load_spec("orders")
    first = make_orders(30)
    for i, record in enumerate(first):
        record["a-b"] = f"dash-{i}"
    sync_records(spec, first, warehouse, tmp_path / "run1", run_id="run-1")
    second = make_orders(30, start=30)
    for i, record in enumerate(second, start=30):
        record["a_b"] = f"underscore-{i}"  # the natural owner of a_b arrives first this time
        record["a-b"] = f"dash-{i}"
    sync_records(spec, second, warehouse, tmp_path / "run2", run_id="run-2")
    assert set(_column(warehouse, "orders", "a_b").values()) == {f"dash-{i}" for i in range(60)}
    underscore = _column(warehouse, "orders", "a_b_a3371a87")
    assert sorted(v for v in underscore.values() if v) == sorted(f"underscore-{i}" for i in range(30, 60))
    stored = warehouse.rows(
        f"SELECT source_path, column_name, first_seen_run FROM {warehouse.table('apisync_columns')} "
        "WHERE source_path IN ('[\"a-b\"]', '[\"a_b\"]') ORDER BY source_path"
    )
    assert stored == [('["a-b"]', "a_b", "run-1"), ('["a_b"]', "a_b_a3371a87", "run-2")]


def test_case6_child_table_columns_keep_their_keys_across_chunks(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders").model_copy(update={"chunk_size": 100})
    records = make_orders(200)
    for i, record in enumerate(records):
        for item in record["items"]:
            if i >= 100:
                item["x_y"] = "underscore"
            item["x-y"] = "dash"
    sync_records(spec, records, warehouse, tmp_path / "stage")
    values = warehouse.rows(f'SELECT DISTINCT "x_y" FROM {warehouse.table("order_items")}')
    assert values == [("dash",)]
    underscore = warehouse.rows(
        f"SELECT count(*) FROM {warehouse.table('order_items')} WHERE \"x_y_4b6237d1\" = 'underscore'"
    )
    assert underscore[0][0] == sum(len(r["items"]) for r in records[100:])
    stored = warehouse.rows(
        f"SELECT destination_table, column_name FROM {warehouse.table('apisync_columns')} "
        "WHERE source_path = '[\"x-y\"]'"
    )
    assert [column for _, column in stored] == ["x_y"]
    assert stored[0][0].endswith("order_items")


def test_a_declared_field_whose_name_a_stored_key_holds_is_a_clear_error(
    warehouse: Target, tmp_path: Path
) -> None:
    spec = load_spec("orders")
    first = make_orders(10)
    for record in first:
        record["a-b"] = "dash"
    sync_records(spec, first, warehouse, tmp_path / "run1", run_id="run-1")
    declared = spec.model_copy(update={"fields": {**spec.fields, "a_b": FieldSpec(type="string")}})
    with pytest.raises(ColumnMapConflictError, match=r"orders.*'a_b'.*\['a-b'\].*column:"):
        sync_records(declared, make_orders(10, start=10), warehouse, tmp_path / "run2", run_id="run-2")


def test_a_concurrent_run_that_named_a_key_otherwise_fails_and_its_rerun_uses_the_stored_names(
    warehouse: Target, tmp_path: Path
) -> None:
    spec = load_spec("orders")
    late = make_orders(30, start=30)
    for i, record in enumerate(late, start=30):
        record["a_b"] = f"underscore-{i}"
        record["a-b"] = f"dash-{i}"
    paths = RunPaths(tmp_path / "b")
    extract_to_files(pages_of(late, 100), paths.raw)
    # run B reads the (still empty) stored mapping and normalizes: a_b -> a_b, a-b -> a_b_1f4e52c6
    known = steps.known_columns(spec, warehouse.engine, warehouse.db_schema)
    normalized = steps.normalize_step(
        spec, paths, window=WINDOW, run_id="run-b", source="test", columns=known
    )
    early = make_orders(30)
    for i, record in enumerate(early):
        record["a-b"] = f"dash-{i}"
    sync_records(spec, early, warehouse, tmp_path / "a", run_id="run-a")  # run A stores a-b -> a_b first
    before = warehouse.checksum("orders")
    validated = steps.validate_step(spec, paths)
    with pytest.raises(ColumnMapConflictError, match=r"""column 'a_b' to source key \["a_b"\].*run run-a"""):
        steps.load_step(
            spec,
            warehouse.engine,
            paths,
            window=WINDOW,
            run_id="run-b",
            db_schema=warehouse.db_schema,
            pulled=normalized.pulled,
            deduped=normalized.deduped,
            quarantined=validated.quarantined,
        )
    # Nothing of run B was loaded. (SQLite: pysqlite runs the ALTER TABLE before the first row
    # outside the transaction, so the empty column stays; its values do not.)
    assert warehouse.checksum("orders", exclude=("a_b_1f4e52c6",)) == before
    runs = warehouse.rows(f"SELECT DISTINCT first_seen_run FROM {warehouse.table('apisync_columns')}")
    assert runs == [("run-a",)]
    run_window(  # the re-run normalizes the staged pages again, by the stored mapping
        spec, None, paths, warehouse.engine, window=WINDOW, run_id="run-b", db_schema=warehouse.db_schema
    )
    assert set(_column(warehouse, "orders", "a_b").values()) == {f"dash-{i}" for i in range(60)}
    underscore = _column(warehouse, "orders", "a_b_a3371a87")
    assert sorted(v for v in underscore.values() if v) == sorted(f"underscore-{i}" for i in range(30, 60))
