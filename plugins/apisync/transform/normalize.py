"""Raw pages -> typed, flat, deduplicated Parquet parts, one chunk at a time.

Memory stays flat as volume grows: pages are read a chunk (``spec.chunk_size`` records) at a time
and each chunk is written as its own Parquet part. Parsing uses pyarrow's JSON reader (C++); a
chunk it cannot read (malformed line, a field changing type) goes through a slower pure-Python
parser that keeps every record and marks bad ones instead of dropping them.

Values that cannot be coerced to their spec type are not nulled silently: the row gets an
``_apisync_errors`` message and the validate step quarantines it with its raw record.
"""

from __future__ import annotations

import io
import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from apisync.spec import FieldSpec, StreamSpec
from apisync.transform.errors import TooManyColumnsError, UnknownFieldsError
from apisync.transform.naming import column_names
from apisync.transform.raw_pages import iter_raw_pages

__all__ = [
    "INTERNAL_COLUMNS",
    "LINEAGE_COLUMNS",
    "Lineage",
    "NormalizeResult",
    "clear_dir",
    "normalize_files",
    "read_normalized_manifest",
    "read_parquet",
    "write_parquet",
]

LINEAGE_COLUMNS = {
    "_synced_at": "timestamp",
    "_source": "string",
    "_run_id": "string",
    "_interval_start": "timestamp",
    "_interval_end": "timestamp",
}
PAGE, LINE, ROW, ERRORS, PARENT_ROW = (
    "_apisync_page",
    "_apisync_line",
    "_apisync_row",
    "_apisync_errors",
    "_apisync_parent_row",
)
INTERNAL_COLUMNS = (PAGE, LINE, ROW, ERRORS, PARENT_ROW)
POSITION = "_position"
MANIFEST_NAME = "_normalized.json"
log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()
_BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


@dataclass(frozen=True)
class Lineage:
    source: str
    run_id: str
    interval_start: datetime
    interval_end: datetime
    synced_at: datetime


@dataclass
class NormalizeResult:
    out_dir: str
    parts: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    pulled: int = 0
    deduped: int = 0
    coercion_errors: int = 0
    python_parsed_chunks: int = 0  # chunks pyarrow could not read (malformed line, type change)

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "parts": self.parts,
            "columns": self.columns,
            "children": self.children,
            "pulled": self.pulled,
            "deduped": self.deduped,
            "coercion_errors": self.coercion_errors,
            "python_parsed_chunks": self.python_parsed_chunks,
        }


class _RowErrors:
    """Per-row error messages of one chunk; failures are rare, so only they cost anything."""

    def __init__(self) -> None:
        self.by_position: dict[int, list[str]] = defaultdict(list)

    def add(self, mask: np.ndarray | pd.Series, message: str) -> None:
        for position in np.flatnonzero(np.asarray(mask, dtype=bool)):
            self.by_position[int(position)].append(message)

    def column(self, length: int) -> pd.Series:
        values: list[str | None] = [None] * length
        for position, messages in self.by_position.items():
            values[position] = "; ".join(messages)
        return pd.Series(values, dtype="object")


# ---------------------------------------------------------------- reading chunks of raw pages


def _iter_chunks(raw_dir: Any, chunk_size: int) -> Iterator[tuple[bytes, np.ndarray, np.ndarray]]:
    """Yield (jsonl body, page number per line, line number per line) for ~chunk_size records."""
    bodies: list[bytes] = []
    pages: list[np.ndarray] = []
    lines: list[np.ndarray] = []
    count = 0
    for page in iter_raw_pages(raw_dir):
        n = page.body.count(b"\n") + 1 if page.body else 0  # = len(page.lines()), without the copies
        if n == 0:
            continue
        bodies.append(page.body)
        pages.append(np.full(n, page.number, dtype=np.int64))
        lines.append(np.arange(n, dtype=np.int64))
        count += n
        if count >= chunk_size:
            yield b"\n".join(bodies), np.concatenate(pages), np.concatenate(lines)
            bodies, pages, lines, count = [], [], [], 0
    if bodies:
        yield b"\n".join(bodies), np.concatenate(pages), np.concatenate(lines)


def _flatten_arrow(table: pa.Table, keep_whole: set[str]) -> dict[str, pa.ChunkedArray]:
    """Struct columns become dotted columns, except paths declared as json or arrays."""
    columns: dict[str, pa.ChunkedArray] = {}

    def visit(name: str, array: pa.ChunkedArray) -> None:
        if pa.types.is_struct(array.type) and name not in keep_whole:
            for index in range(array.type.num_fields):
                child = array.type.field(index)
                visit(f"{name}.{child.name}", pc.struct_field(array, [index]))
            return
        columns[name] = array

    for name in table.column_names:
        visit(name, table.column(name))
    return columns


def _flatten_record(record: dict[str, Any], keep_whole: set[str], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in keep_whole:
            flat.update(_flatten_record(value, keep_whole, f"{name}."))
        else:
            flat[name] = value
    return flat


def _parse_arrow(body: bytes, expected: int, keep_whole: set[str]) -> dict[str, Any] | None:
    try:
        table = pa_json.read_json(
            io.BytesIO(body),
            read_options=pa_json.ReadOptions(block_size=1 << 20, use_threads=True),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != expected:
        return None
    return _flatten_arrow(table, keep_whole)


def _parse_python(body: bytes, keep_whole: set[str], errors: _RowErrors) -> dict[str, Any]:
    """Slow path: one record at a time; unparseable lines become error rows, nothing is dropped."""
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    for position, line in enumerate(body.split(b"\n")):
        try:
            value = json.loads(line)
        except ValueError as exc:
            value, message = None, f"invalid JSON: {exc}"
        else:
            message = None if isinstance(value, dict) else f"record is {type(value).__name__}, not an object"
        if message:
            errors.by_position[position].append(message)
            bad.append(position)
            value = {}
        records.append(_flatten_record(value, keep_whole))
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    return {name: pd.Series([record.get(name) for record in records], dtype="object") for name in names}


# ---------------------------------------------------------------- coercion


def _as_series(values: Any) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    if isinstance(values, pa.ChunkedArray):
        if pa.types.is_null(values.type):
            return pd.Series([None] * len(values), dtype="object")
        if (
            pa.types.is_struct(values.type)
            or pa.types.is_list(values.type)
            or pa.types.is_large_list(values.type)
        ):
            # Arrow gives every object all keys seen in the chunk (absent -> null): drop those
            # nulls again so a record's JSON does not depend on its neighbours.
            return pd.Series([_without_nulls(v) for v in values.to_pylist()], dtype="object")
        return values.to_pandas()
    return pd.Series(values)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _json_text(values: Any) -> pd.Series:
    if (
        isinstance(values, pa.ChunkedArray)
        and pa.types.is_struct(values.type)
        and values.type.num_fields == 0
    ):
        return pd.Series(np.where(values.is_null().to_numpy(zero_copy_only=False), None, "{}"), dtype="str")
    if isinstance(values, pa.ChunkedArray):
        # Arrow values are plain Python already; drop the nulls Arrow added for absent keys.
        encode = _encoder.encode
        out = [None if v is None else encode(_without_nulls(v)).decode() for v in values.to_pylist()]
        return pd.Series(out, dtype="str")
    series = _as_series(values)
    out = [None if _is_missing(v) else _encoder.encode(_plain(v)).decode() for v in series.tolist()]
    return pd.Series(out, dtype="str")


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return value is pd.NA or value is pd.NaT


def _coerce(
    values: Any, ftype: str, spec_field: FieldSpec | None, column: str, errors: _RowErrors
) -> pd.Series:
    if ftype == "json":
        return _json_text(values)
    series = _as_series(values)
    present = series.notna().to_numpy()
    if ftype == "string":
        if series.dtype == object:
            series = series.map(
                lambda v: v if isinstance(v, str) or _is_missing(v) else _encoder.encode(_plain(v)).decode()
            )
        return series.astype("str")
    if ftype in ("integer", "float"):
        numeric = _to_numeric(series)
        failed = present & numeric.isna().to_numpy()
        errors.add(failed, f"{column}: not a number")
        if ftype == "float":
            return numeric.astype("Float64")
        fractional = numeric.notna().to_numpy() & (numeric.fillna(0) % 1 != 0).to_numpy()
        errors.add(fractional, f"{column}: not an integer")
        return numeric.where(~fractional).round().astype("Int64")
    if ftype == "boolean":
        if pd.api.types.is_bool_dtype(series.dtype):
            return series.astype("boolean")
        mapped = series.map(_to_bool)
        errors.add(present & mapped.isna().to_numpy(), f"{column}: not a boolean")
        return mapped.astype("boolean")
    if ftype == "timestamp":
        fmt = spec_field.format if spec_field else "iso"
        if fmt == "iso":
            stamps = pd.to_datetime(series.where(present), utc=True, errors="coerce", format="ISO8601")
        else:
            numeric = _to_numeric(series)
            stamps = pd.to_datetime(
                numeric, unit="s" if fmt == "epoch_s" else "ms", utc=True, errors="coerce"
            )
        errors.add(present & stamps.isna().to_numpy(), f"{column}: not a {fmt} timestamp")
        return stamps.astype("datetime64[us, UTC]")
    if ftype == "decimal":
        scale = spec_field.scale if spec_field else 2
        quantum = Decimal(1).scaleb(-scale)
        out: list[Decimal | None] = []
        bad = np.zeros(len(series), dtype=bool)
        for position, value in enumerate(series.tolist()):
            if _is_missing(value):
                out.append(None)
                continue
            try:
                number = Decimal(str(value)).quantize(quantum)
                if not number.is_finite():
                    raise InvalidOperation
                out.append(number)
            except (InvalidOperation, ValueError):
                out.append(None)
                bad[position] = True
        errors.add(bad, f"{column}: not a decimal")
        return pd.Series(
            pa.array(out, type=pa.decimal128(38, scale)), dtype=pd.ArrowDtype(pa.decimal128(38, scale))
        )
    raise ValueError(f"unknown field type {ftype!r}")


def _to_numeric(series: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("Float64")
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series
    cleaned = series.map(lambda v: None if isinstance(v, (bool, dict, list)) else v)
    return pd.to_numeric(cleaned, errors="coerce")


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _BOOLEAN_WORDS.get(value.strip().lower())
    return None


def _infer_type(values: Any) -> str | None:
    """Logical type of an undeclared field; None when it holds no value at all."""
    if isinstance(values, pa.ChunkedArray):
        kind = values.type
        if pa.types.is_null(kind):
            return None
        if pa.types.is_boolean(kind):
            return "boolean"
        if pa.types.is_integer(kind):
            return "integer"
        if pa.types.is_floating(kind):
            return "float"
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return "string"
        if pa.types.is_timestamp(kind):
            return "timestamp"
        return "json"
    series = _as_series(values)
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred == "empty":
        return None
    return {
        "boolean": "boolean",
        "integer": "integer",
        "floating": "float",
        "mixed-integer-float": "float",
    }.get(inferred, "string" if inferred == "string" else "json")


def _is_array(values: Any) -> bool:
    if isinstance(values, pa.ChunkedArray):
        return pa.types.is_list(values.type) or pa.types.is_large_list(values.type)
    series = _as_series(values)
    sample = series.dropna()
    return bool(len(sample)) and all(isinstance(v, (list, np.ndarray)) for v in sample.tolist())


# ---------------------------------------------------------------- child tables


def _child_frame(values: Any, array_path: str) -> pd.DataFrame:
    """Explode an array column: one row per element, with parent position and element position."""
    if isinstance(values, pa.ChunkedArray) and (
        pa.types.is_list(values.type) or pa.types.is_large_list(values.type)
    ):
        lists = values.combine_chunks()
        parents = pc.list_parent_indices(lists).to_numpy()
        flat = pc.list_flatten(lists)
        offsets = lists.offsets.to_numpy()
        positions = np.arange(len(flat), dtype=np.int64) + offsets[0] - offsets[parents]
        if pa.types.is_struct(flat.type):
            columns = _flatten_arrow(pa.table({"v": flat}), set())
            frame_columns = {name.removeprefix("v."): _as_series(col) for name, col in columns.items()}
            raw_types = {name.removeprefix("v."): col for name, col in columns.items()}
        else:
            frame_columns = {"value": _as_series(pa.chunked_array([flat]))}
            raw_types = {"value": pa.chunked_array([flat])}
        frame = pd.DataFrame(frame_columns)
        frame.attrs["raw"] = raw_types
    else:
        parents_list: list[int] = []
        positions_list: list[int] = []
        items: list[dict[str, Any]] = []
        for parent, value in enumerate(_as_series(values).tolist()):
            if not isinstance(value, (list, np.ndarray)):
                continue
            for position, item in enumerate(value):
                parents_list.append(parent)
                positions_list.append(position)
                items.append(_flatten_record(item, set()) if isinstance(item, dict) else {"value": item})
        frame = pd.DataFrame.from_records(items) if items else pd.DataFrame(index=range(0))
        frame = frame.astype("object") if len(frame.columns) else frame
        frame.attrs["raw"] = {name: frame[name] for name in frame.columns}
        parents = np.asarray(parents_list, dtype=np.int64)
        positions = np.asarray(positions_list, dtype=np.int64)
    frame[PARENT_ROW] = parents
    frame[POSITION] = positions
    return frame


# ---------------------------------------------------------------- one chunk


def _normalize_chunk(
    spec: StreamSpec,
    body: bytes,
    page_numbers: np.ndarray,
    line_numbers: np.ndarray,
    lineage: Lineage,
    row_offset: int,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], dict[str, str], dict[str, dict[str, str]], int]:
    errors = _RowErrors()
    n = len(page_numbers)
    keep_whole = set(spec.fields) | set(spec.arrays)  # a declared scalar holding an object is an error
    raw = _parse_arrow(body, n, keep_whole)
    slow = raw is None
    if raw is None:
        log.warning(
            "stream %s: pyarrow could not read a chunk of %d records; parsing it record by record",
            spec.name,
            n,
        )
        raw = _parse_python(body, keep_whole, errors)

    undeclared = [path for path in raw if path not in spec.fields]
    array_paths = [path for path in raw if path in spec.arrays]
    unknown = [path for path in undeclared if path not in spec.arrays]
    if unknown and spec.unknown_fields == "fail":
        raise UnknownFieldsError(
            f"stream {spec.name}: undeclared fields {sorted(unknown)[:20]} (unknown_fields: fail)"
        )
    if spec.unknown_fields == "ignore":
        unknown = []
    total = len(spec.fields) + len(unknown)
    if total > spec.max_columns:
        raise TooManyColumnsError(
            f"stream {spec.name}: payload flattens to {total} columns, more than max_columns="
            f"{spec.max_columns} (e.g. {sorted(unknown)[:10]}); raise max_columns in the spec or "
            "declare the object as a json field"
        )
    names = column_names(unknown, reserved={path: spec.column_for(path) for path in spec.fields})

    out: dict[str, pd.Series] = {}
    types: dict[str, str] = {}
    for path, spec_field in spec.fields.items():
        column = names[path]
        values = raw.get(path, pd.Series([None] * n, dtype="object"))
        out[column] = _coerce(values, spec_field.type, spec_field, column, errors)
        types[column] = f"decimal:{spec_field.scale}" if spec_field.type == "decimal" else spec_field.type
    for path in unknown:
        values = raw[path]
        inferred = "json" if _is_array(values) else _infer_type(values)
        if inferred is None:
            continue  # no value in this chunk: nothing to keep, no column to guess a type for
        out[names[path]] = _coerce(values, inferred, None, names[path], errors)
        types[names[path]] = inferred

    frame = pd.DataFrame(out)
    for key in spec.primary_key:
        errors.add(frame[key].isna().to_numpy(), f"{key}: primary key is null")
    frame[PAGE] = page_numbers
    frame[LINE] = line_numbers
    frame[ROW] = np.arange(row_offset, row_offset + n, dtype=np.int64)
    frame[ERRORS] = errors.column(n)

    # Dedupe within the chunk on the key, keeping the latest cursor (later pages win ties).
    keyed = frame[spec.primary_key].notna().all(axis=1)
    ordered = frame[keyed].sort_values(spec.cursor_field, kind="stable", na_position="first")
    losers = ordered.index[ordered.duplicated(subset=spec.primary_key, keep="last")]
    deduped = len(losers)
    if deduped:
        frame = frame.drop(index=losers)
    surviving_positions = frame.index.to_numpy()
    frame = frame.reset_index(drop=True)
    _add_lineage(frame, lineage)

    children: dict[str, pd.DataFrame] = {}
    child_types: dict[str, dict[str, str]] = {}
    for path in array_paths:
        array_spec = spec.arrays[path]
        if array_spec.mode == "json":
            column = names.get(path) or column_names([path])[path]
            values = raw[path]
            if isinstance(values, pa.ChunkedArray):
                values = values.take(pa.array(surviving_positions))
            else:
                values = _as_series(values).iloc[surviving_positions].reset_index(drop=True)
            frame[column] = _json_text(values)
            types[column] = "json"
            continue
        child, ctypes = _build_child(spec, raw[path], path, frame, surviving_positions, row_offset, lineage)
        children[array_spec.table] = child
        child_types[array_spec.table] = ctypes
    for path, array_spec in spec.arrays.items():
        if array_spec.mode == "json" and path not in raw:
            column = column_names([path])[path]
            frame[column] = pd.Series([None] * len(frame), dtype="str")
            types[column] = "json"
    types.update(LINEAGE_COLUMNS)
    frame.attrs["python_parsed"] = slow
    return frame, children, types, child_types, deduped


def _build_child(
    spec: StreamSpec,
    values: Any,
    path: str,
    parents: pd.DataFrame,
    surviving_positions: np.ndarray,
    row_offset: int,
    lineage: Lineage,
) -> tuple[pd.DataFrame, dict[str, str]]:
    child = _child_frame(values, path)
    raw_columns: dict[str, Any] = child.attrs.pop("raw", {})
    keep = np.isin(child[PARENT_ROW].to_numpy(), surviving_positions)
    child = child[keep].reset_index(drop=True)
    names = column_names(list(raw_columns))
    errors = _RowErrors()
    out: dict[str, pd.Series] = {}
    types: dict[str, str] = {}
    for source, column in names.items():
        series = child[source] if source in child else pd.Series([None] * len(child), dtype="object")
        raw_values = raw_columns[source]
        inferred = "json" if _is_array(raw_values) else _infer_type(raw_values)
        if inferred is None:
            continue
        out[column] = _coerce(series.reset_index(drop=True), inferred, None, column, errors)
        types[column] = inferred
    # Parent rows are renumbered after dedupe: map chunk position -> parent key values.
    position_to_index = pd.Series(np.arange(len(surviving_positions)), index=surviving_positions)
    parent_index = position_to_index.loc[child[PARENT_ROW].to_numpy()].to_numpy()
    frame = pd.DataFrame(out)
    for key in spec.primary_key:
        parent_column = f"{spec.name}_{key}"
        frame[parent_column] = parents[key].to_numpy()[parent_index]
        types[parent_column] = spec.columns()[key]
    frame[POSITION] = child[POSITION].to_numpy()
    types[POSITION] = "integer"
    frame[PARENT_ROW] = parents[ROW].to_numpy()[parent_index]
    _add_lineage(frame, lineage)
    types.update(LINEAGE_COLUMNS)
    return frame, types


def _constant_timestamps(moment: datetime, length: int) -> pd.Series:
    micros = np.datetime64(int(moment.timestamp() * 1_000_000), "us")
    return pd.Series(np.full(length, micros)).dt.tz_localize("UTC")


def _add_lineage(frame: pd.DataFrame, lineage: Lineage) -> None:
    length = len(frame)
    frame["_synced_at"] = _constant_timestamps(lineage.synced_at, length)
    frame["_source"] = pd.Series([lineage.source] * length, dtype="str")
    frame["_run_id"] = pd.Series([lineage.run_id] * length, dtype="str")
    frame["_interval_start"] = _constant_timestamps(lineage.interval_start, length)
    frame["_interval_end"] = _constant_timestamps(lineage.interval_end, length)


# ---------------------------------------------------------------- files


def write_parquet(frame: pd.DataFrame, path: Any) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with path.open("wb") as handle:
        pq.write_table(table, handle, compression="snappy")


def read_parquet(path: Any, columns: list[str] | None = None) -> pd.DataFrame:
    with path.open("rb") as handle:
        return pq.read_table(handle, columns=columns).to_pandas()


def _merge_types(known: dict[str, str], new: dict[str, str]) -> None:
    for column, kind in new.items():
        previous = known.get(column)
        if previous is None or previous == kind:
            known[column] = kind
        elif {previous, kind} == {"integer", "float"}:
            known[column] = "float"
        else:
            known[column] = "string"  # a field that changes type between chunks is kept as text


def clear_dir(directory: Any) -> None:
    if directory.exists():
        for entry in directory.iterdir():
            if entry.is_dir():
                clear_dir(entry)
            else:
                entry.unlink()


def normalize_files(spec: StreamSpec, raw_dir: Any, out_dir: Any, lineage: Lineage) -> NormalizeResult:
    """Normalize a completed extraction into ``out_dir`` (Parquet parts + a manifest)."""
    clear_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = NormalizeResult(out_dir=str(out_dir))
    row_offset = 0
    for number, (body, page_numbers, line_numbers) in enumerate(_iter_chunks(raw_dir, spec.chunk_size)):
        frame, children, types, child_types, deduped = _normalize_chunk(
            spec, body, page_numbers, line_numbers, lineage, row_offset
        )
        row_offset += len(page_numbers)
        result.pulled += len(page_numbers)
        result.deduped += deduped
        result.coercion_errors += int(frame[ERRORS].notna().sum())
        result.python_parsed_chunks += int(frame.attrs.pop("python_parsed", False))
        name = f"part-{number:05d}.parquet"
        write_parquet(frame, out_dir / name)
        result.parts.append(name)
        _merge_types(result.columns, types)
        for table, child in children.items():
            child_dir = out_dir / table
            child_dir.mkdir(parents=True, exist_ok=True)
            write_parquet(child, child_dir / name)
            entry = result.children.setdefault(table, {"columns": {}, "parts": []})
            entry["parts"].append(name)
            _merge_types(entry["columns"], child_types[table])
    with (out_dir / MANIFEST_NAME).open("w") as handle:
        json.dump(result.as_dict(), handle)
    return result


def read_normalized_manifest(out_dir: Any) -> dict[str, Any]:
    with (out_dir / MANIFEST_NAME).open("r") as handle:
        return json.load(handle)
