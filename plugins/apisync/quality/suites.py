"""Expectation suites as JSON files under include/expectations/.

GX drops an expectation whose type it does not know with only a log line, which would silently
weaken a gate; loading therefore compares the count in the file with the count GX kept and fails
naming the file and the dropped types.

Before that, at DAG parse time and without importing GX (seconds per parse), :func:`check_suite`
holds a suite against its stream: every expectation type must be one GX registers
(:data:`~apisync.quality.expectation_types.GX_EXPECTATION_TYPES`) and every column an expectation
names must be one the spec gives the stream's table. Otherwise the first run would call the API,
stage everything and only then fail the batch (``observed None``) or the suite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apisync.errors import SuiteError, did_you_mean
from apisync.naming import column_name
from apisync.quality.expectation_types import GX_EXPECTATION_TYPES
from apisync.spec import StreamSpec, include_dir
from apisync.staging.columns import LINEAGE_COLUMNS

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite

__all__ = [
    "build_suite",
    "check_suite",
    "checked_columns",
    "checks_dtypes",
    "read_suite_file",
    "suite_path",
    "table_columns",
]

# Keyword arguments by which an expectation names the column(s) it reads.
_COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")
# ... and every keyword argument that names columns, for the check against the spec.
_NAMING_KWARGS = (*_COLUMN_KWARGS, "column_set")
# Expectations that read a column's dtype name (Int64 and int64 differ to them).
_DTYPE_TYPES = {"expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"}
# Table-level expectations that read no column at all.
_ROW_COUNT_TYPES = {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}


def suite_path(name: str, expectations_dir: Path | None = None) -> Path:
    return (expectations_dir or include_dir() / "expectations") / f"{name}.json"


def read_suite_file(path: Path) -> dict[str, Any]:
    """Read and structurally check a suite file (no GX import: cheap enough for DAG parsing)."""
    if not path.is_file():
        raise SuiteError(f"{path}: expectation suite not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SuiteError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise SuiteError(f"{path}: field 'expectations' must be a list")
    for index, expectation in enumerate(data["expectations"]):
        if not isinstance(expectation, dict) or not isinstance(expectation.get("type"), str):
            raise SuiteError(f"{path}: field 'expectations.{index}.type' is missing")
        if not isinstance(expectation.get("kwargs", {}), dict):
            raise SuiteError(f"{path}: field 'expectations.{index}.kwargs' must be a mapping")
    data.setdefault("name", path.stem)
    return data


def table_columns(spec: StreamSpec) -> list[str]:
    """The columns the spec gives the stream's table, which its suite checks: the fields' columns,
    the json arrays' columns and the lineage columns (child tables are not checked by the suite)."""
    arrays = [column_name(path) for path, array in spec.arrays.items() if array.mode == "json"]
    return list(dict.fromkeys([*spec.columns(), *arrays, *LINEAGE_COLUMNS]))


def _named_columns(kwargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(dotted key path, value) of every column an expectation's kwargs name."""
    for key in _NAMING_KWARGS:
        value = kwargs.get(key)
        if isinstance(value, list):
            yield from ((f"{key}.{index}", item) for index, item in enumerate(value))
        elif value is not None:
            yield key, value


def check_suite(spec: StreamSpec, expectations_dir: Path | None = None) -> dict[str, Any]:
    """Read the stream's suite and hold it against the spec, without GX (cheap: DAG parse time).

    Raises :class:`~apisync.errors.SuiteError` with a line per problem, each naming the suite
    file and the field: an expectation type GX does not register, a column the table will not
    have (with the column the name is close to, or the field's column). A ``{"$PARAMETER": ...}``
    column is only known at run time and is not checked.
    """
    path = suite_path(spec.quality.suite, expectations_dir)
    data = read_suite_file(path)
    columns = table_columns(spec)
    children = [array.table for array in spec.arrays.values() if array.mode == "child_table" and array.table]
    problems = []
    for index, expectation in enumerate(data["expectations"]):
        kind = expectation["type"]
        if kind not in GX_EXPECTATION_TYPES:
            suggestion = did_you_mean(kind, sorted(GX_EXPECTATION_TYPES))
            hint = f"; {suggestion}" if suggestion else " (see GX's expectation gallery)"
            problems.append(
                f"field 'expectations.{index}.type': {kind!r} is not an expectation type GX knows{hint}"
            )
            continue
        for key, name in _named_columns(expectation.get("kwargs") or {}):
            if not isinstance(name, str) or name in columns:
                continue
            problem = (
                f"field 'expectations.{index}.kwargs.{key}': column {name!r} is not a column of table "
                f"{spec.destination.table}"
            )
            hint = spec.column_hint(name, columns)
            if not hint:
                unchecked = (
                    f"; the suite does not check child tables ({', '.join(children)})" if children else ""
                )
                hint = f". The columns {spec.path or spec.name} gives it: {columns}{unchecked}"
            problems.append(problem + hint)
    if problems:
        raise SuiteError("\n  ".join(f"{path}: {problem}" for problem in problems))
    return data


def build_suite(path: Path, data: dict[str, Any] | None = None) -> ExpectationSuite:
    """Build the GX suite and assert every expectation in the file survived; ``data`` is the
    file as :func:`read_suite_file` read it, when the caller has it already."""
    from great_expectations.core import ExpectationSuite

    data = read_suite_file(path) if data is None else data
    wanted = [expectation["type"] for expectation in data["expectations"]]
    try:
        suite = ExpectationSuite(
            name=data["name"], expectations=data["expectations"], meta=data.get("meta") or None
        )
    except Exception as exc:
        raise SuiteError(f"{path}: GX rejected the suite: {exc}") from exc
    kept = [expectation.expectation_type for expectation in suite.expectations]
    if len(kept) != len(wanted):
        dropped = sorted(set(wanted) - set(kept)) or wanted
        raise SuiteError(
            f"{path}: {len(wanted)} expectations in the file but GX loaded {len(kept)}; "
            f"unknown or invalid: {dropped}"
        )
    return suite


def checked_columns(data: dict[str, Any]) -> set[str] | None:
    """Columns the suite's expectations read, so GX need not see (or fingerprint) the rest.

    None when one of them needs the whole table: a column count or order, an exact column set,
    a ``row_condition`` (it may name any column), or an expectation whose columns are not named
    by the usual keyword arguments.
    """
    columns: set[str] = set()
    for expectation in data["expectations"]:
        kind, kwargs = expectation["type"], expectation.get("kwargs", {})
        if "row_condition" in kwargs:
            return None
        if kind in _ROW_COUNT_TYPES:
            continue
        if kind == "expect_table_columns_to_match_set" and kwargs.get("exact_match") is False:
            named: list[Any] = list(kwargs.get("column_set") or [])
        else:
            named = [kwargs[key] for key in _COLUMN_KWARGS if key in kwargs]
            named = [name for value in named for name in (value if isinstance(value, list) else [value])]
            if not named or kind.startswith("expect_table_"):
                return None
        if not all(isinstance(name, str) for name in named):
            return None  # e.g. a {"$PARAMETER": ...} column: only known at run time
        columns.update(named)
    return columns


def checks_dtypes(data: dict[str, Any]) -> bool:
    """Whether an expectation of the suite reads dtype names (then GX gets the nullable dtypes)."""
    return any(expectation["type"] in _DTYPE_TYPES for expectation in data["expectations"])
