"""Expectation suites as JSON: every expectation in the file must survive GX's parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apisync.quality import SuiteError, build_suite, read_suite_file, suite_path

SHIPPED = ["orders", "issues", "customers", "products"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_suites_load_completely(name: str) -> None:
    path = suite_path(name)
    suite = build_suite(path)
    assert len(suite.expectations) == len(json.loads(path.read_text())["expectations"]) > 0


def test_unknown_expectation_type_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    path.write_text(
        json.dumps(
            {
                "name": "orders",
                "expectations": [
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
                    {"type": "expect_column_values_to_be_tasty", "kwargs": {"column": "id"}},
                ],
            }
        )
    )
    with pytest.raises(SuiteError) as caught:
        build_suite(path)
    message = str(caught.value)
    assert str(path) in message
    assert "2 expectations in the file but GX loaded 1" in message
    assert "expect_column_values_to_be_tasty" in message


def test_malformed_suite_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"expectations": [{"kwargs": {"column": "id"}}]}))
    with pytest.raises(SuiteError, match=rf"{path}: field 'expectations.0.type' is missing"):
        read_suite_file(path)
    path.write_text("{not json")
    with pytest.raises(SuiteError, match=rf"{path}: not valid JSON"):
        read_suite_file(path)


def test_case5_c_the_known_expectation_types_are_the_ones_gx_registers() -> None:
    """The parse-time check knows GX's expectation types without importing GX (2-4 s at every parse):
    this compares that list with GX's registry, so a GX upgrade that adds or drops one fails here."""
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    from apisync.quality.expectation_types import GX_EXPECTATION_TYPES

    assert sorted(GX_EXPECTATION_TYPES) == sorted(list_registered_expectation_implementations())


@pytest.mark.parametrize("name", SHIPPED)
def test_case5_shipped_suites_match_their_specs(name: str) -> None:
    from apisync.quality.suites import check_suite
    from apisync.spec import load_spec

    spec = load_spec(name)
    assert check_suite(spec)["expectations"]


def _suite(tmp_path: Path, *expectations: dict) -> Path:
    path = tmp_path / "orders.json"
    path.write_text(json.dumps({"name": "orders", "expectations": list(expectations)}))
    return path


@pytest.mark.parametrize(
    ("expectation", "fragments"),
    [
        (
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer_mail"}},
            [
                "field 'expectations.0.kwargs.column': column 'customer_mail' is not a column of table "
                "orders",
                "did you mean 'customer_email'?",
            ],
        ),
        (
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "loyalty_tier"}},
            ["column 'loyalty_tier' is not a column of table orders. The columns", "'customer_email'"],
        ),
        (
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer.email"}},
            ["the field customer.email becomes column 'customer_email'"],
        ),
        (
            {
                "type": "expect_column_pair_values_a_to_be_greater_than_b",
                "kwargs": {"column_A": "updated", "column_B": "creatd"},
            },
            ["field 'expectations.0.kwargs.column_B': column 'creatd'", "did you mean 'created'?"],
        ),
        (
            {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["id", "sku"]}},
            [
                "field 'expectations.0.kwargs.column_list.1': column 'sku'",
                "the suite does not check child tables (order_items)",
            ],
        ),
        (
            {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["id", "amout"]}},
            ["field 'expectations.0.kwargs.column_set.1': column 'amout'", "did you mean 'amount'?"],
        ),
        (
            {"type": "expect_column_values_to_be_tasty", "kwargs": {"column": "id"}},
            ["field 'expectations.0.type': 'expect_column_values_to_be_tasty' is not an expectation type"],
        ),
        (
            {"type": "expect_column_values_to_not_be_nul", "kwargs": {"column": "id"}},
            ["did you mean 'expect_column_values_to_not_be_null'?"],
        ),
    ],
)
def test_case5_b_c_a_suite_must_name_the_specs_columns_and_known_types(
    tmp_path: Path, expectation: dict, fragments: list[str]
) -> None:
    """Issue 13 case 5b/5c: both used to pass parse time; 5b failed the batch at run time
    (``observed None``), 5c failed only when GX loaded the suite in the validate task."""
    from apisync.quality.suites import check_suite
    from apisync.spec import load_spec

    spec = load_spec("orders")
    path = _suite(
        tmp_path, {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}, expectation
    )
    with pytest.raises(SuiteError) as caught:
        check_suite(spec, expectations_dir=tmp_path)
    message = str(caught.value).replace("expectations.1.", "expectations.0.")
    assert f"{path}: " in message
    for fragment in fragments:
        assert fragment in message


def test_case5_b_lineage_and_json_array_columns_may_be_checked(tmp_path: Path) -> None:
    """Columns the spec produces besides its fields: the lineage columns, json arrays' columns."""
    from apisync.quality.suites import check_suite
    from apisync.spec import load_spec

    _suite(
        tmp_path,
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "_synced_at"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "labels"}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 0}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": {"$PARAMETER": "col"}}},
    )
    (tmp_path / "issues.json").write_text((tmp_path / "orders.json").read_text())
    check_suite(load_spec("issues"), expectations_dir=tmp_path)
