"""A stream whose spec or suite is wrong is an import error of its DAG file, naming the file.

Issue 13 case 5: pagination option typos, suite columns the spec does not produce, unknown
expectation types and a camelCase cursor all failed only at run time, after API calls. Each test
copies the shipped include/ directory, breaks one file and parses a shipped DAG file with
Airflow's DagBag, as the dag-processor does.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def _import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dag_file: str, edit: Callable[[Path], None]
) -> str | None:
    """Parse ``dags/<dag_file>`` against a copy of include/ changed by ``edit``: its import error."""
    from airflow.dag_processing.dagbag import DagBag

    include = tmp_path / "include"
    shutil.copytree(REPO_ROOT / "include", include)
    edit(include)
    monkeypatch.setenv("APISYNC_INCLUDE_DIR", str(include))
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO_ROOT / "dags" / dag_file, dags / dag_file)
    bag = DagBag(dag_folder=str(dags))
    if not bag.import_errors:
        assert bag.dags, f"{dag_file} parsed to no DAG"
        return None
    (error,) = bag.import_errors.values()
    return str(error)


def _edit_yaml(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def _edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw, indent=2))


def test_the_shipped_include_directory_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the copy itself is fine, so the errors below come from the one edit."""
    assert _import_error(tmp_path, monkeypatch, "orders_to_warehouse.py", lambda include: None) is None


def test_a_pagination_option_typo_is_an_import_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(include: Path) -> None:
        _edit_yaml(
            include / "streams" / "orders.yaml",
            lambda raw: raw["source"]["pagination"].update(
                {"page_sise": raw["source"]["pagination"].pop("page_size")}
            ),
        )

    error = _import_error(tmp_path, monkeypatch, "orders_to_warehouse.py", edit)
    assert error is not None
    assert f"{tmp_path / 'include' / 'streams' / 'orders.yaml'}: field 'source.pagination.page_sise'" in error
    assert "did you mean 'page_size'?" in error


def _orders_suite_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expectation: dict[str, Any]
) -> str | None:
    """The import error of orders_to_warehouse.py with ``expectation`` added to its suite."""

    def edit(include: Path) -> None:
        _edit_json(
            include / "expectations" / "orders.json", lambda raw: raw["expectations"].append(expectation)
        )

    return _import_error(tmp_path, monkeypatch, "orders_to_warehouse.py", edit)


def test_b_a_suite_column_the_spec_lacks_is_an_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = _orders_suite_error(
        tmp_path,
        monkeypatch,
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer_mail"}},
    )
    assert error is not None
    assert str(tmp_path / "include" / "expectations" / "orders.json") in error
    assert "'customer_mail'" in error
    assert "did you mean 'customer_email'?" in error


def test_c_an_unknown_expectation_type_is_an_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = _orders_suite_error(
        tmp_path, monkeypatch, {"type": "expect_column_values_to_not_be_nul", "kwargs": {"column": "id"}}
    )
    assert error is not None
    assert str(tmp_path / "include" / "expectations" / "orders.json") in error
    assert "'expect_column_values_to_not_be_nul'" in error
    assert "did you mean 'expect_column_values_to_not_be_null'?" in error


def test_d_a_camel_case_cursor_is_an_import_error_naming_its_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def edit(include: Path) -> None:
        _edit_yaml(include / "streams" / "products.yaml", lambda raw: raw.update(cursor_field="updatedAt"))

    error = _import_error(tmp_path, monkeypatch, "products_to_warehouse.py", edit)
    assert error is not None
    assert str(tmp_path / "include" / "streams" / "products.yaml") in error
    assert "the field updatedAt becomes column 'updated_at'" in error
