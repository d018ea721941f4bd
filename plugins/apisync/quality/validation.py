"""Validate normalized parts: good rows go on to the load, bad rows to quarantine with a reason.

Nothing is dropped: a row that failed coercion or a row-level expectation is written to a
quarantine part with its raw record (re-read from the raw page file), the failing checks and the
run; a table-level failure fails the batch. The quarantined share is compared with the stream's
threshold by ``check_threshold`` after the quarantine has been persisted, so the evidence survives
the failure.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from apisync.quality.errors import QuarantineThresholdError
from apisync.quality.expectations import ROW_COLUMN, SuiteRunner
from apisync.quality.suites import suite_path
from apisync.spec import StreamSpec
from apisync.transform.normalize import (
    ERRORS,
    LINE,
    PAGE,
    PARENT_ROW,
    clear_dir,
    read_normalized_manifest,
    write_parquet,
)
from apisync.transform.raw_pages import read_page

__all__ = ["QUARANTINE_COLUMNS", "ValidationResult", "check_threshold", "read_validated_manifest", "validate"]

MANIFEST_NAME = "_validated.json"
QUARANTINE_COLUMNS = {
    "stream": "string",
    "run_id": "string",
    "interval_start": "timestamp",
    "interval_end": "timestamp",
    "record_key": "string",
    "raw_page": "integer",
    "raw_line": "integer",
    "raw_record": "string",
    "failures": "json",
    "quarantined_at": "timestamp",
}
_encoder = msgspec.json.Encoder()


@dataclass
class ValidationResult:
    out_dir: str
    parts: list[str] = field(default_factory=list)
    quarantine_parts: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    pulled: int = 0
    deduped: int = 0
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
    def quarantined_share(self) -> float:
        return self.quarantined / self.pulled if self.pulled else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "parts": self.parts,
            "quarantine_parts": self.quarantine_parts,
            "columns": self.columns,
            "children": self.children,
            "pulled": self.pulled,
            "deduped": self.deduped,
            "valid": self.valid,
            "quarantined": self.quarantined,
            "gx_seconds": round(self.gx_seconds, 3),
            "failures": self.failures,
        }


class _RawLines:
    """Raw records by (page, line), reading each page file at most once per part."""

    def __init__(self, raw_dir: Any) -> None:
        self.raw_dir = raw_dir
        self.cache: dict[int, list[bytes]] = {}

    def get(self, page: int, line: int) -> str:
        if page not in self.cache:
            self.cache[page] = read_page(self.raw_dir, page).lines()
        return self.cache[page][line].decode("utf-8", errors="replace")


def _record_key(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    values = frame[keys].astype("object").where(frame[keys].notna(), None)
    return [
        _encoder.encode(
            dict(zip(keys, [str(v) if v is not None else None for v in row], strict=True))
        ).decode()
        for row in values.itertuples(index=False, name=None)
    ]


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
    # A runner shared across windows accumulates its seconds: count only this call's share.
    gx_before = runner.seconds if runner is not None else 0.0
    runner = runner or SuiteRunner(suite_file or suite_path(spec.quality.suite), spec.primary_key)
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
    )
    gx_columns = [*manifest["columns"]]
    for name in manifest["parts"]:
        # Arrow is the source of truth for what is written on; pandas only for GX and quarantine.
        table = _read_table(normalized_dir / name)
        frame = table.to_pandas()
        coerced_bad = frame[ERRORS].notna().to_numpy()
        checked = frame.loc[~coerced_bad, [c for c in gx_columns if c in frame.columns] + [ROW_COLUMN]]
        failures = runner.validate(checked.reset_index(drop=True))
        runner.raise_for_batch(failures, f"stream {spec.name} part {name}")
        rows = frame[ROW_COLUMN].to_numpy()
        gx_bad = np.isin(rows, np.fromiter(failures.rows.keys(), dtype=np.int64, count=len(failures.rows)))
        bad = coerced_bad | gx_bad
        any_bad = bool(bad.any())
        _count_failures(result.failure_counts, int(coerced_bad.sum()), failures.rows)
        if any_bad:
            quarantine = _quarantine_frame(spec, frame[bad], failures.rows, raw_dir)
            write_parquet(quarantine, out_dir / "quarantine" / name)
            result.quarantine_parts.append(name)
            result.quarantined += int(bad.sum())
        good = table.drop_columns([PAGE, LINE, ERRORS])
        if any_bad:
            good = good.filter(pa.array(~bad))
        _write_table(good, out_dir / name)
        result.parts.append(name)
        result.valid += good.num_rows
        good_rows = pa.array(rows[~bad])
        for child_name in manifest["children"]:
            if name not in manifest["children"][child_name]["parts"]:
                continue
            (out_dir / child_name).mkdir(parents=True, exist_ok=True)
            if not any_bad:  # every parent row stays, so does every child row: same file
                source_path, target_path = normalized_dir / child_name / name, out_dir / child_name / name
                with source_path.open("rb") as source, target_path.open("wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            else:
                child = _read_table(normalized_dir / child_name / name)
                child = child.filter(pc.is_in(child.column(PARENT_ROW), value_set=good_rows))
                _write_table(child, out_dir / child_name / name)
            result.children[child_name]["parts"].append(name)
    result.gx_seconds = runner.seconds - gx_before
    with (out_dir / MANIFEST_NAME).open("w") as handle:
        json.dump(result.as_dict(), handle)
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


def _read_table(path: Any) -> pa.Table:
    with path.open("rb") as handle:
        return pq.read_table(handle)


def _write_table(table: pa.Table, path: Any) -> None:
    with path.open("wb") as handle:
        pq.write_table(table, handle, compression="snappy")


def _quarantine_frame(
    spec: StreamSpec, bad: pd.DataFrame, row_failures: dict[int, list[dict[str, Any]]], raw_dir: Any
) -> pd.DataFrame:
    raw = _RawLines(raw_dir)
    failures: list[str] = []
    records: list[str] = []
    for row, page, line, message in zip(
        bad[ROW_COLUMN].tolist(), bad[PAGE].tolist(), bad[LINE].tolist(), bad[ERRORS].tolist(), strict=True
    ):
        reasons: list[dict[str, Any]] = []
        if isinstance(message, str):
            reasons.extend({"check": "coercion", "message": part} for part in message.split("; "))
        reasons.extend({"check": "expectation", **failure} for failure in row_failures.get(int(row), []))
        failures.append(_encoder.encode(reasons).decode())
        records.append(raw.get(int(page), int(line)))
    now = datetime.now(UTC)
    return pd.DataFrame(
        {
            "stream": pd.Series([spec.name] * len(bad), dtype="str"),
            "run_id": bad["_run_id"].to_numpy(),
            "interval_start": bad["_interval_start"].to_numpy(),
            "interval_end": bad["_interval_end"].to_numpy(),
            "record_key": _record_key(bad, spec.primary_key),
            "raw_page": bad[PAGE].to_numpy(),
            "raw_line": bad[LINE].to_numpy(),
            "raw_record": records,
            "failures": failures,
            "quarantined_at": pd.Series([now] * len(bad), dtype="datetime64[us, UTC]"),
        }
    )


def read_validated_manifest(out_dir: Any) -> dict[str, Any]:
    with (out_dir / MANIFEST_NAME).open("r") as handle:
        return json.load(handle)


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
