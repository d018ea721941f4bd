"""The process's cached SuiteRunner validates exactly as a fresh one, and never serves a stale suite.

``validate`` without a runner takes :meth:`SuiteRunner.for_suite`'s, built once per suite content
in the process (issue 14: GX and its context are the fixed cost of a small window). The cache must
not change a single quarantined row, and must key on the suite's content: a suite edited between
two validations in one process is the edited suite.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from apisync.quality import ValidationResult, suite_path, validate
from apisync.quality.expectations import SuiteRunner
from apisync.spec import load_spec
from apisync.staging.parts import read_table
from apisync.staging.raw_pages import extract_to_files
from apisync.transform import Lineage, normalize_files
from tests.load.datapath_fixtures import WINDOW
from tests.transform.order_records import make_orders, pages_of

ORDERS_SUITE = suite_path("orders")


def staged_orders(root: Path) -> tuple[Path, Path]:
    """300 orders in 3 parts, 4 of them bad in different ways; (raw dir, normalized dir)."""
    records = make_orders(300)
    records[3]["customer"]["email"] = "not-an-email"
    records[3]["amount"] = -5
    records[120]["currency"] = "zzz"
    records[201]["created"] = "yesterday"  # a coercion failure, never seen by GX
    records[299]["id"] = None
    raw, normalized = root / "raw", root / "normalized"
    extract_to_files(pages_of(records), raw)
    normalize_files(load_spec("orders"), raw, normalized, Lineage("t", "r", *WINDOW, datetime.now(UTC)))
    return raw, normalized


def outcome(result: ValidationResult) -> dict[str, Any]:
    """What validate decided, without where it wrote it: counts, failures, the parts' rows."""
    out = Path(result.out_dir)

    def rows(directory: Path, names: list[str]) -> list[dict[str, Any]]:
        tables = [read_table(directory / name) for name in names]
        return pa.concat_tables(tables).to_pylist() if tables else []

    quarantined = [
        {key: value for key, value in row.items() if key != "quarantined_at"}  # a clock, not a verdict
        for row in rows(out / "quarantine", result.quarantine_parts)
    ]
    return {
        "counts": (result.pulled, result.valid, result.quarantined, result.deduped),
        "failures": result.failures,
        "good": rows(out, result.parts),
        "quarantine": quarantined,
    }


def test_the_cached_runner_quarantines_the_same_rows_as_a_fresh_one(tmp_path: Path) -> None:
    spec = load_spec("orders")
    raw, normalized = staged_orders(tmp_path)
    fresh = validate(
        spec, normalized, raw, tmp_path / "fresh", runner=SuiteRunner(ORDERS_SUITE, spec.primary_key)
    )
    assert fresh.quarantined == 4, fresh.failures
    strict_suite = tmp_path / "orders_strict.json"
    strict = json.loads(ORDERS_SUITE.read_text())
    strict["expectations"].append(
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "currency", "value_set": ["eur"]}}
    )
    strict_suite.write_text(json.dumps(strict))

    first = validate(spec, normalized, raw, tmp_path / "cached-1")
    # Another suite in between, in the same process: its own runner, its own verdict.
    stricter = validate(spec, normalized, raw, tmp_path / "strict", suite_file=strict_suite)
    second = validate(spec, normalized, raw, tmp_path / "cached-2")

    assert outcome(first) == outcome(fresh)
    assert outcome(second) == outcome(fresh)
    assert stricter.quarantined > fresh.quarantined
    assert SuiteRunner.for_suite(ORDERS_SUITE, spec.primary_key) is SuiteRunner.for_suite(
        ORDERS_SUITE, spec.primary_key
    )
    assert SuiteRunner.for_suite(strict_suite, spec.primary_key) is not SuiteRunner.for_suite(
        ORDERS_SUITE, spec.primary_key
    )


def test_an_edited_suite_is_validated_as_edited_not_from_the_cache(tmp_path: Path) -> None:
    spec = load_spec("orders")
    raw, normalized = staged_orders(tmp_path)
    suite = tmp_path / "orders.json"
    suite.write_text(ORDERS_SUITE.read_text())
    before = validate(spec, normalized, raw, tmp_path / "before", suite_file=suite)
    runner = SuiteRunner.for_suite(suite, spec.primary_key)

    edited = json.loads(suite.read_text())
    edited["expectations"] = [
        e for e in edited["expectations"] if e["kwargs"].get("column") != "customer_email"
    ]
    suite.write_text(json.dumps(edited))
    after = validate(spec, normalized, raw, tmp_path / "after", suite_file=suite)

    assert SuiteRunner.for_suite(suite, spec.primary_key) is not runner
    # Row 3 still fails on its amount; without the e-mail checks, only the amount is its reason.
    assert after.quarantined == before.quarantined
    reasons = {(f["expectation"], f["column"]) for f in after.failures}
    assert ("expect_column_values_to_match_regex", "customer_email") not in reasons
    assert ("expect_column_values_to_match_regex", "customer_email") in {
        (f["expectation"], f["column"]) for f in before.failures
    }


def test_a_runner_prepared_in_the_background_validates_as_one_built_in_place(tmp_path: Path) -> None:
    """``prepare`` (run_window calls it before extracting) builds the same runner in a thread:
    ``for_suite`` waits for it and hands out that one runner, with the same quarantined rows."""
    spec = load_spec("orders")
    raw, normalized = staged_orders(tmp_path)
    suite = tmp_path / "orders.json"
    suite.write_text(ORDERS_SUITE.read_text())
    fresh = validate(spec, normalized, raw, tmp_path / "fresh", runner=SuiteRunner(suite, spec.primary_key))

    SuiteRunner.prepare(suite, spec.primary_key)
    SuiteRunner.prepare(suite, spec.primary_key)  # already being built: no second build
    prepared = SuiteRunner.for_suite(suite, spec.primary_key)
    validated = validate(spec, normalized, raw, tmp_path / "prepared", suite_file=suite)

    assert outcome(validated) == outcome(fresh)
    assert SuiteRunner.for_suite(suite, spec.primary_key) is prepared
    assert prepared.chunks >= 1 and not prepared.in_background


def test_a_suite_that_fails_to_build_is_reported_by_for_suite_and_not_cached(tmp_path: Path) -> None:
    spec = load_spec("orders")
    suite = tmp_path / "orders.json"
    broken = json.loads(ORDERS_SUITE.read_text())
    broken["expectations"].append({"type": "expect_no_such_thing", "kwargs": {}})
    suite.write_text(json.dumps(broken))

    SuiteRunner.prepare(suite, spec.primary_key)
    for _ in range(2):  # the failed build is retried, and fails the same way
        try:
            SuiteRunner.for_suite(suite, spec.primary_key)
        except Exception as error:
            failure = type(error)
        else:
            raise AssertionError("a suite with an unknown expectation built a runner")
    assert issubclass(failure, Exception)
