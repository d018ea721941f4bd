"""Normalization: flattening, types, names, dedupe, lineage, chunked parts, nothing dropped."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from apisync.naming import column_name
from apisync.spec import load_spec
from apisync.staging.parts import read_parquet
from apisync.staging.raw_pages import copy_pages, extract_to_files
from apisync.transform import Lineage, TooManyColumnsError, normalize_files
from tests.transform.order_records import make_orders, pages_of

WINDOW = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC))
LINEAGE = Lineage("shop_api:/v1/orders", "manual__1", *WINDOW, datetime(2026, 1, 8, 0, 5, tzinfo=UTC))


def _normalize(tmp_path: Path, records: list[dict], chunk_size: int = 50_000, page_size: int = 100):
    spec = load_spec("orders").model_copy(update={"chunk_size": chunk_size})
    extract_to_files(pages_of(records, page_size), tmp_path / "raw")
    result = normalize_files(spec, tmp_path / "raw", tmp_path / "norm", LINEAGE)
    frames = [read_parquet(tmp_path / "norm" / part) for part in result.parts]
    return result, pd.concat(frames, ignore_index=True)


def test_nested_orders_become_typed_flat_columns_with_lineage(tmp_path: Path) -> None:
    records = make_orders(250)
    result, frame = _normalize(tmp_path, records)
    assert result.pulled == 250 and result.deduped == 0 and result.coercion_errors == 0
    assert result.python_parsed_chunks == 0  # the fast (pyarrow) reader handled it
    first = frame.iloc[0]
    assert first["id"] == "ord_000001"
    assert first["customer_email"] == records[0]["customer"]["email"]
    assert first["shipping_address_postal_code"] == "00000"
    assert first["created"] == pd.Timestamp(records[0]["created"], unit="s", tz="UTC")
    assert str(frame["created"].dtype) == "datetime64[us, UTC]"
    assert str(frame["amount"].dtype) == "Int64"
    assert first["metadata"] == "{}"
    assert (first["_run_id"], first["_source"]) == ("manual__1", "shop_api:/v1/orders")
    assert first["_interval_start"] == pd.Timestamp(WINDOW[0]) and first["_interval_end"] == pd.Timestamp(
        WINDOW[1]
    )
    assert "items" not in frame.columns
    items = read_parquet(tmp_path / "norm" / "order_items" / result.parts[0])
    assert len(items) == sum(len(r["items"]) for r in records)
    assert list(items.loc[items["orders_id"] == "ord_000001", "sku"]) == [
        i["sku"] for i in records[0]["items"]
    ]
    assert list(items.loc[items["orders_id"] == "ord_000001", "_position"]) == list(
        range(len(records[0]["items"]))
    )


def test_chunks_write_separate_parts_and_keep_row_numbers_unique(tmp_path: Path) -> None:
    result, frame = _normalize(tmp_path, make_orders(1000), chunk_size=300, page_size=100)
    assert result.parts == [f"part-{n:05d}.parquet" for n in range(4)]
    assert frame["_apisync_row"].is_unique and len(frame) == 1000


def test_dedupe_keeps_latest_version(tmp_path: Path) -> None:
    records = make_orders(20)
    newer = copy.deepcopy(records[3])
    newer["updated"] += 60
    newer["status"] = "refunded"
    records.insert(1, newer)  # newer version seen first (Stripe lists newest first)
    result, frame = _normalize(tmp_path, records)
    assert result.deduped == 1 and len(frame) == 20
    assert frame.loc[frame["id"] == "ord_000004", "status"].item() == "refunded"


def test_bad_values_are_flagged_not_nulled(tmp_path: Path) -> None:
    records = make_orders(10)
    records[2]["amount"] = "12abc"
    records[3]["amount"] = 10.5
    records[4]["updated"] = None
    records[5]["created"] = {"when": "now"}
    result, frame = _normalize(tmp_path, records)
    errors = dict(zip(frame["id"], frame["_apisync_errors"], strict=True))
    assert errors["ord_000003"] == "amount: not a number"
    assert errors["ord_000004"] == "amount: not an integer"
    assert pd.isna(errors["ord_000005"])  # a missing cursor is a quality question, not a type error
    assert errors["ord_000006"] == "created: not a epoch_s timestamp"
    assert result.coercion_errors == 3
    assert result.python_parsed_chunks == 1  # mixed types: the record-by-record reader took over


def test_column_names_are_safe_snake_case() -> None:
    assert column_name("priceCents") == "price_cents"
    assert column_name("shipping.address.line1") == "shipping_address_line1"
    assert column_name('x"; DROP TABLE y; --') == "x_drop_table_y"
    assert column_name("_synced_at") == "synced_at"
    assert column_name("1st") == "c_1st"
    assert column_name("💥").startswith("col_")
    assert len(column_name("a" * 200)) == 63


def test_colliding_keys_get_distinct_columns(tmp_path: Path) -> None:
    records = make_orders(3)
    records[0]["fooBar"] = 1
    records[0]["foo_bar"] = 2
    _, frame = _normalize(tmp_path, records)
    collided = [c for c in frame.columns if c.startswith("foo_bar")]
    assert len(collided) == 2
    assert sorted(frame.loc[0, collided].tolist()) == [1, 2]


def test_thousands_of_keys_is_a_clear_error(tmp_path: Path) -> None:
    records = make_orders(3)
    records[1].update({f"key{i}": i for i in range(2500)})
    with pytest.raises(TooManyColumnsError, match="more than max_columns=200"):
        _normalize(tmp_path, records)


def test_retried_extraction_overwrites_pages(tmp_path: Path) -> None:
    records = make_orders(500)
    extract_to_files(pages_of(records, 100), tmp_path / "raw")
    manifest = extract_to_files(pages_of(records[:250], 100), tmp_path / "raw")
    assert manifest == {"pages": [1, 2, 3], "records": 250}
    assert sorted(p.name for p in (tmp_path / "raw").iterdir() if p.name.startswith("page-")) == [
        "page-000001.jsonl.gz",
        "page-000002.jsonl.gz",
        "page-000003.jsonl.gz",
    ]


@pytest.mark.parametrize("python_parsed", [False, True])
def test_case4_records_outside_the_window_are_dropped_with_their_children(
    tmp_path: Path, python_parsed: bool
) -> None:
    start, end = (int(moment.timestamp()) for moment in WINDOW)
    records = make_orders(20)
    records[0]["updated"] = end  # exactly on the end: the next window's
    records[1]["updated"] = start - 1
    records[2]["updated"] = start  # exactly on the start: this window's
    newer = copy.deepcopy(records[3])
    newer["updated"], newer["status"] = end + 60, "refunded"  # a later window's version
    records.insert(4, newer)
    if python_parsed:  # an uncoercible cursor (also sends the chunk to the record-by-record parser)
        records[6]["updated"] = "soon"
    result, frame = _normalize(tmp_path, records, chunk_size=7, page_size=7)
    assert (result.pulled, result.out_of_window, result.deduped) == (21, 3, 0)
    assert result.python_parsed_chunks == int(python_parsed)
    ids = set(frame["id"])
    assert ids == {record["id"] for record in records} - {"ord_000001", "ord_000002"} and len(frame) == 18
    assert frame.loc[frame["id"] == "ord_000004", "status"].item() == records[3]["status"]
    if python_parsed:  # a NULL cursor is not "outside": the row stays, flagged for quarantine
        assert frame.loc[frame["id"] == records[6]["id"], "_apisync_errors"].notna().item()
    items = pd.concat([read_parquet(tmp_path / "norm" / "order_items" / part) for part in result.parts])
    kept = [record for record in records if record["id"] in ids and record is not newer]
    assert set(items["orders_id"]) == ids and len(items) == sum(len(r["items"]) for r in kept)
    assert set(items["_apisync_parent_row"]) == set(frame["_apisync_row"])  # validate's join key


def test_case8_a_bad_value_inside_an_array_quarantines_its_parent_naming_the_element(tmp_path: Path) -> None:
    """A child-table value no column can hold (an integer beyond int64 among integers) is not
    nulled silently: the parent record gets the error, naming the array element and the field, so
    validate quarantines it with its child rows; the other records keep theirs."""
    records = make_orders(6)
    records[2]["items"][0]["quantity"] = 2**70
    result, frame = _normalize(tmp_path, records)
    errors = dict(zip(frame["id"], frame["_apisync_errors"], strict=True))
    assert isinstance(errors["ord_000003"], str), "the parent of the bad element got no error"
    assert "items[0]" in errors["ord_000003"] and "quantity" in errors["ord_000003"], errors["ord_000003"]
    assert (
        errors["ord_000003"] == "items[0].field quantity: 1180591620717411303424 is outside the integer range"
    )
    assert all(pd.isna(errors[key]) for key in errors if key != "ord_000003")
    items = pd.concat([read_parquet(tmp_path / "norm" / "order_items" / part) for part in result.parts])
    assert items["quantity"].notna().sum() == len(items) - 1  # only the bad element is empty


def test_graphql_errors_staged_with_a_page_land_in_the_errors_column_of_their_lines(tmp_path: Path) -> None:
    """partial_results: quarantine: the errors staged next to a page (line -> messages) flag exactly
    those rows, across chunk boundaries, next to any coercion message of the same row."""
    records = make_orders(300)
    records[4]["amount"] = "12abc"
    pages = [
        SimpleNamespace(number=page.number, records=page.records, record_errors=errors)
        for page, errors in zip(
            pages_of(records, 100),
            [{4: ["amount: hidden (at allOrders.4.amount)"]}, {30: ["a; b (at allOrders.30.x)"]}, {}],
            strict=True,
        )
    ]
    spec = load_spec("orders").model_copy(update={"chunk_size": 150})
    manifest = extract_to_files(pages, tmp_path / "raw")
    assert manifest["record_errors"] == {
        "1": {"4": ["amount: hidden (at allOrders.4.amount)"]},
        "2": {"30": ["a; b (at allOrders.30.x)"]},
    }
    result = normalize_files(spec, tmp_path / "raw", tmp_path / "norm", LINEAGE)
    frame = pd.concat([read_parquet(tmp_path / "norm" / part) for part in result.parts], ignore_index=True)
    flagged = {
        row["id"]: row["_apisync_errors"]
        for _, row in frame.iterrows()
        if isinstance(row["_apisync_errors"], str)
    }
    assert flagged == {
        "ord_000005": "amount: not a number; graphql: amount: hidden (at allOrders.4.amount)",
        "ord_000131": "graphql: a, b (at allOrders.30.x)",  # "; " separates the column's messages
    }
    assert result.pulled == 300 and result.coercion_errors == 2
    # A replay (params.replay_raw) copies the extraction: the same rows are flagged.
    copy_pages(tmp_path / "raw", tmp_path / "replay")
    replayed = normalize_files(spec, tmp_path / "replay", tmp_path / "norm2", LINEAGE)
    again = pd.concat([read_parquet(tmp_path / "norm2" / part) for part in replayed.parts], ignore_index=True)
    assert again["_apisync_errors"].tolist() == frame["_apisync_errors"].tolist()
