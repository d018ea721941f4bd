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
