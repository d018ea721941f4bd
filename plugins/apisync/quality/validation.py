"""Validate normalized parts: good rows go on to the load, bad rows to quarantine with a reason.

Nothing is dropped: a row that failed coercion or a row-level expectation is written to a
quarantine part (:mod:`apisync.quality.quarantine`) with its raw record, the failing checks and
the run; a table-level failure fails the batch. The quarantined share is compared with the
stream's threshold by ``check_threshold`` after the quarantine has been persisted (the pipeline's
quarantine gate), so the evidence survives the failure.

Parts stay Arrow tables; GX gets a pandas frame of only the columns its suite reads. The next part
is read, and the previous part's outputs written, in worker threads while GX (pure Python) checks
the current one: at most three parts are held at once, whatever the volume.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from apisync.errors import QuarantineThresholdError
from apisync.quality.expectations import SuiteRunner
from apisync.quality.quarantine import quarantine_rows
from apisync.quality.suites import suite_path
from apisync.spec import StreamSpec
from apisync.staging.columns import ERRORS, LINE, PAGE, PARENT_ROW, ROW
from apisync.staging.logical_types import NULLABLE_PANDAS_TYPES
from apisync.staging.manifests import read_normalized_manifest, write_validated_manifest
from apisync.staging.overlap import WriteBehind, read_ahead
from apisync.staging.parts import clear_dir, read_table, write_table

__all__ = ["ValidationResult", "check_threshold", "validate"]


@dataclass
class ValidationResult:
    out_dir: str
    parts: list[str] = field(default_factory=list)
    quarantine_parts: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    pulled: int = 0
    deduped: int = 0
    out_of_window: int = 0  # dropped by normalize: another window's records
    valid: int = 0
    quarantined: int = 0
    gx_seconds: float = 0.0
    failure_counts: dict[tuple[str, str | None], int] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Failing checks with their row counts, most frequent first (the alert lists these)."""
        ranked = sorted(self.failure_counts.items(), key=lambda item: -item[1])
        return [{"expectation": e, "column": c, "unexpected_count": n} for (e, c), n in ranked]

    @property
    def in_window(self) -> int:
        """The records this window owns: the base of the quarantined share."""
        return self.pulled - self.out_of_window

    @property
    def quarantined_share(self) -> float:
        return self.quarantined / self.in_window if self.in_window else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "parts": self.parts,
            "quarantine_parts": self.quarantine_parts,
            "columns": self.columns,
            "children": self.children,
            "pulled": self.pulled,
            "deduped": self.deduped,
            "out_of_window": self.out_of_window,
            "valid": self.valid,
            "quarantined": self.quarantined,
            "gx_seconds": round(self.gx_seconds, 3),
            "failures": self.failures,
        }


def _gx_frame(table: pa.Table, plain_numbers: bool) -> pd.DataFrame:
    """The part as GX sees it: pandas with the nullable logical dtypes (Int64, Float64, boolean).

    With ``plain_numbers``, numeric columns without a null are plain numpy instead: GX compares
    those vectorised, a nullable column value by value in Python (same results, ~20x slower).
    """
    frame = table.to_pandas(types_mapper=NULLABLE_PANDAS_TYPES.get)
    if plain_numbers:
        for name, column in zip(table.column_names, table.columns, strict=True):
            numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
            if numeric and column.null_count == 0:
                frame[name] = column.to_numpy()
    return cast(pd.DataFrame, frame)


@dataclass
class _PartOutputs:
    """What one part leaves behind; written in a worker thread while GX checks the next part."""

    name: str
    good: pa.Table
    quarantine: pa.Table | None
    good_rows: pa.Array | None  # row numbers that stayed, when some did not (children to filter)
    children: list[str]


def _write_part(outputs: _PartOutputs, normalized_dir: Any, out_dir: Any) -> None:
    name = outputs.name
    if outputs.quarantine is not None:
        write_table(outputs.quarantine, out_dir / "quarantine" / name)
    write_table(outputs.good, out_dir / name)
    for child_name in outputs.children:
        (out_dir / child_name).mkdir(parents=True, exist_ok=True)
        source_path, target_path = normalized_dir / child_name / name, out_dir / child_name / name
        if outputs.good_rows is None:  # every parent row stays, so does every child row: same file
            with source_path.open("rb") as source, target_path.open("wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
        else:
            child = read_table(source_path)
            write_table(
                child.filter(pc.is_in(child.column(PARENT_ROW), value_set=outputs.good_rows)), target_path
            )


def validate(
    spec: StreamSpec,
    normalized_dir: Any,
    raw_dir: Any,
    out_dir: Any,
    *,
    suite_file: Path | None = None,
    runner: SuiteRunner | None = None,
) -> ValidationResult:
    """Split every normalized part into valid rows and quarantined rows (with raw record and reasons)."""
    manifest = read_normalized_manifest(normalized_dir)
    # A runner shared across windows accumulates its seconds: count only this call's share (and
    # the runner's building, the first time it validates).
    if runner is None:
        runner = SuiteRunner.for_suite(suite_file or suite_path(spec.quality.suite), spec.primary_key)
        gx_before = runner.seconds if runner.chunks else 0.0
    else:
        gx_before = runner.seconds
    clear_dir(out_dir)
    (out_dir / "quarantine").mkdir(parents=True, exist_ok=True)
    result = ValidationResult(
        out_dir=str(out_dir),
        columns=manifest["columns"],
        children={
            name: {"columns": entry["columns"], "parts": []} for name, entry in manifest["children"].items()
        },
        pulled=manifest["pulled"],
        deduped=manifest["deduped"],
        out_of_window=manifest.get("out_of_window", 0),  # absent in manifests staged before it
    )
    parts: list[str] = manifest["parts"]
    plain_numbers = not runner.checks_dtypes
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="apisync-read") as reader,
        WriteBehind("apisync-write") as writer,
    ):
        tables = read_ahead(reader, (read_table(normalized_dir / name) for name in parts))
        for name, table in zip(parts, tables, strict=True):
            coerced_bad = table.column(ERRORS).is_valid().to_numpy(zero_copy_only=False)
            available = [column for column in manifest["columns"] if column in table.column_names]
            whole = table.select([*available, ROW])
            if coerced_bad.any():
                whole = whole.filter(pa.array(~coerced_bad))
            checked = whole.select(runner.columns_to_check(available))
            failures = runner.validate(_gx_frame(checked, plain_numbers))
            if failures.batch and checked.num_columns < whole.num_columns:
                # Report a failed batch as GX sees the whole part (e.g. the observed column set).
                failures = runner.validate(_gx_frame(whole, plain_numbers))
            runner.raise_for_batch(failures, f"stream {spec.name} part {name}")
            rows = table.column(ROW).to_numpy()
            failed_rows = np.fromiter(failures.rows.keys(), dtype=np.int64, count=len(failures.rows))
            bad = coerced_bad | np.isin(rows, failed_rows)
            any_bad = bool(bad.any())
            _count_failures(result.failure_counts, int(coerced_bad.sum()), failures.rows)
            quarantine = None
            good = table.drop_columns([PAGE, LINE, ERRORS])
            if any_bad:
                quarantine = quarantine_rows(spec, table.filter(pa.array(bad)), failures.rows, raw_dir)
                result.quarantine_parts.append(name)
                result.quarantined += int(bad.sum())
                good = good.filter(pa.array(~bad))
            result.parts.append(name)
            result.valid += good.num_rows
            children = [child for child, entry in manifest["children"].items() if name in entry["parts"]]
            for child_name in children:
                result.children[child_name]["parts"].append(name)
            outputs = _PartOutputs(
                name, good, quarantine, pa.array(rows[~bad]) if any_bad else None, children
            )
            writer.submit(_write_part, outputs, normalized_dir, out_dir)
            # Three threads allocate here; hand freed pages back so the peak does not creep up.
            pa.default_memory_pool().release_unused()
    result.gx_seconds = runner.seconds - gx_before
    write_validated_manifest(out_dir, result.as_dict())
    return result


def _count_failures(
    counts: dict[tuple[str, str | None], int], coerced: int, row_failures: dict[int, list[dict[str, Any]]]
) -> None:
    if coerced:
        counts[("type coercion", None)] = counts.get(("type coercion", None), 0) + coerced
    for failures in row_failures.values():
        for failure in failures:
            key = (failure["expectation"], failure.get("column"))
            counts[key] = counts.get(key, 0) + 1


def check_threshold(
    spec: StreamSpec, quarantined: int, pulled: int, failures: list[dict[str, Any]] | None = None
) -> None:
    """Fail when the quarantined share is above the stream's threshold."""
    share = quarantined / pulled if pulled else 0.0
    if share > spec.quality.quarantine_threshold:
        raise QuarantineThresholdError(
            f"stream {spec.name}: {quarantined} of {pulled} records quarantined ({share:.2%}), above "
            f"quarantine_threshold {spec.quality.quarantine_threshold:.2%}; see the quarantine table",
            failures,
        )
