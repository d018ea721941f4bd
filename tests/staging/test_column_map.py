"""The naming rule of a ColumnMap (apisync.naming): first come keeps, declared first, then suffixes."""

from __future__ import annotations

import pytest

from apisync.errors import ColumnMapConflictError
from apisync.naming import natural_column, path_text, suffixed_column
from apisync.spec import load_spec
from apisync.staging.column_map import ColumnMap, decode_path, encode_path, stream_column_maps


def test_a_key_keeps_its_first_column_and_a_later_colliding_key_gets_the_digest_suffix() -> None:
    columns = ColumnMap("s", "t")
    assert columns.column(("a-b",)) == "a_b"
    assert columns.column(("a_b",)) == "a_b_a3371a87"
    assert columns.column(("a-b",)) == "a_b"  # asked again (the next chunk): the same column
    assert columns.column(("aB",)) == suffixed_column(("aB",)) == "a_b_" + suffixed_column(("aB",))[-8:]


def test_a_literal_dotted_key_and_the_nested_path_are_two_keys() -> None:
    assert path_text(("meta", "tag")) == "meta.tag"
    assert path_text(("meta.tag",)) == '["meta.tag"]'
    columns = ColumnMap("s", "t")
    assert columns.column(("meta.tag",)) == "meta_tag"
    assert columns.column(("meta", "tag")) == "meta_tag_9d641b34"


def test_when_the_suffixed_name_is_held_too_a_counter_follows_it() -> None:
    nested = suffixed_column(("meta", "tag"))
    columns = ColumnMap("s", "t", {("meta_tag",): "meta_tag", ("x",): nested})
    assert columns.column(("meta", "tag")) == f"{nested}_2"
    assert columns.new_entries() == {'["meta","tag"]': f"{nested}_2"}


def test_stored_entries_win_over_first_appearance_and_are_not_new() -> None:
    columns = ColumnMap("s", "t", {("a-b",): "a_b"})
    assert columns.column(("a_b",)) == "a_b_a3371a87"
    assert columns.column(("a-b",)) == "a_b"
    assert columns.new_entries() == {'["a_b"]': "a_b_a3371a87"}


def test_declared_fields_own_their_names_and_reserved_columns_are_never_given() -> None:
    columns = ColumnMap("s", "t", declared={("customer", "email"): "customer_email"}, reserved=["orders_id"])
    assert columns.column(("customer_email",)) == suffixed_column(("customer_email",))
    assert columns.column(("orders_id",)) == suffixed_column(("orders_id",))
    assert columns.column(("customer", "email")) == "customer_email"


def test_a_declared_field_whose_column_a_stored_key_holds_is_refused() -> None:
    with pytest.raises(
        ColumnMapConflictError, match=r"stream s, table t: declared field \['a_b'\].*\['a-b'\]"
    ):
        ColumnMap("s", "t", {("a-b",): "a_b"}, declared={("a_b",): "a_b"})


def test_paths_round_trip_through_their_stored_text() -> None:
    for path in [("a",), ("meta.tag",), ("meta", "tag"), ('we"ird', "ü")]:
        assert decode_path(encode_path(path)) == path
    assert encode_path(("meta", "tag")) == '["meta","tag"]'


def test_a_stream_has_a_map_per_destination_table_with_its_declared_fields() -> None:
    maps = stream_column_maps(load_spec("orders"))
    assert set(maps) == {"orders", "order_items"}
    assert maps["orders"].column(("customer", "email")) == "customer_email"
    assert maps["order_items"].column(("orders_id",)) != "orders_id"  # the parent key column
    assert natural_column(("shipping", "address", "line1")) == "shipping_address_line1"
