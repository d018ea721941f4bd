"""Raw pages -> typed, flat, deduplicated Parquet parts, one chunk at a time.

Memory stays flat as volume grows: pages are read a chunk (``spec.chunk_size`` records) at a time
and each chunk is written as its own Parquet part. Parsing uses pyarrow's JSON reader (C++); a
chunk it cannot read (malformed line, a field changing type), or would read lossily (bytes that
are not UTF-8, NaN/±Infinity, integers beyond int64), goes through a slower pure-Python parser
that keeps every record and marks bad ones instead of dropping them.

A column stays an Arrow array from the JSON reader to the Parquet writer when its parsed type
already is (or casts exactly to) the spec type, the usual case, so no per-record Python runs;
anything else is coerced with pandas, which knows the messy cases (numbers as text, ISO strings,
decimals). The next chunk is read and parsed, and the previous one written, in worker threads
while a chunk is transformed (zlib, the JSON reader and the Parquet writer release the GIL): at
most three chunks are held at once, whatever the volume.

Values that cannot be coerced to their spec type are not nulled silently: the row gets an
``_apisync_errors`` message and the validate step quarantines it with its raw record. So do
values no column can hold: NaN/±Infinity anywhere in a record (a field that only ever held one
still gets its float column), an integer outside int64 in an integer column (declared, or
inferred for an undeclared field: such a field must be declared decimal or string), and a
record that is not valid UTF-8 (read with U+FFFD so its key still shows). So do the records a
GraphQL error hit (``source.graphql.partial_results: quarantine``): the extract staged those
errors with the page (the manifest's ``record_errors``), each becomes a ``graphql: ...`` message.

Every window owns exactly its records: a record whose cursor lies outside ``[interval_start,
interval_end)`` belongs to another window (an inclusive server bound, a filter the server ignores)
and is dropped with its child rows, counted as ``out_of_window``, whatever the server returned.

Nested keys flatten to paths (a literal ``"meta.tag"`` is not ``meta -> tag``), and every path is
named through its table's :class:`~apisync.staging.column_map.ColumnMap`, one per window, started
from the mapping stored with the table: a key lands in the same column in every chunk and run.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import reduce
from typing import Any, cast

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from apisync.errors import TooManyColumnsError, UnknownFieldsError
from apisync.naming import SourcePath
from apisync.spec import FieldSpec, StreamSpec
from apisync.staging.column_map import ColumnMap, declared_path, stream_column_maps
from apisync.staging.columns import ERRORS, LINE, LINEAGE_COLUMNS, PAGE, PARENT_ROW, POSITION, ROW
from apisync.staging.logical_types import NULLABLE_PANDAS_TYPES, TIMESTAMP_TYPE, arrow_type
from apisync.staging.manifests import write_normalized_manifest
from apisync.staging.overlap import WriteBehind, read_ahead
from apisync.staging.parts import clear_dir, write_table
from apisync.staging.raw_pages import iter_raw_pages, read_manifest, record_errors

__all__ = ["Lineage", "NormalizeResult", "normalize_files"]

_EPOCH_MICROS = {"epoch_s": 1_000_000, "epoch_ms": 1_000}
_EPOCH_LIMITS = {"epoch_s": 253_402_300_799, "epoch_ms": 253_402_300_799_999}  # up to 9999-12-31
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
    out_of_window: int = 0  # records whose cursor lies outside the window: another window's
    python_parsed_chunks: int = 0  # chunks pyarrow could not read (malformed line, type change)
    column_map: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> entries added

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "parts": self.parts,
            "columns": self.columns,
            "children": self.children,
            "pulled": self.pulled,
            "deduped": self.deduped,
            "coercion_errors": self.coercion_errors,
            "out_of_window": self.out_of_window,
            "python_parsed_chunks": self.python_parsed_chunks,
            "column_map": self.column_map,
        }


def _logical_type(ftype: str, spec_field: FieldSpec | None) -> str:
    if ftype == "decimal":
        return f"decimal:{spec_field.scale if spec_field else 2}"
    return ftype


class _RowErrors:
    """Per-row error messages of one chunk; failures are rare, so only they cost anything."""

    def __init__(self) -> None:
        self.by_position: dict[int, list[str]] = defaultdict(list)

    def add(self, mask: np.ndarray | pd.Series, message: str) -> None:
        for position in np.flatnonzero(np.asarray(mask, dtype=bool)):
            self.by_position[int(position)].append(message)

    def column(self, length: int) -> pa.Array:
        if not self.by_position:
            return pa.nulls(length, pa.string())
        values: list[str | None] = [None] * length
        for position, messages in self.by_position.items():
            values[position] = "; ".join(messages)
        return pa.array(values, pa.string())


# ---------------------------------------------------------------- reading chunks of raw pages


@dataclass
class _RawChunk:
    body: bytes | None  # JSONL of the chunk's pages, kept only for the record-by-record parser
    pages: np.ndarray  # page number per line
    lines: np.ndarray  # line number within its page, per line
    table: pa.Table | None  # pyarrow's reading of ``body``; None when it could not read it
    # position in the chunk -> the GraphQL errors that hit the record (partial_results: quarantine)
    source_errors: dict[int, list[str]] = field(default_factory=dict)


_Chunk = tuple[bytes, np.ndarray, np.ndarray, dict[int, list[str]]]


def _iter_chunks(raw_dir: Any, chunk_size: int) -> Iterator[_Chunk]:
    """Yield (jsonl body, page number per line, line number per line, position -> the source's
    errors for that record) for ~chunk_size records."""
    staged_errors = record_errors(read_manifest(raw_dir))
    bodies: list[bytes] = []
    pages: list[np.ndarray] = []
    lines: list[np.ndarray] = []
    errors: dict[int, list[str]] = {}
    count = 0
    for page in iter_raw_pages(raw_dir):
        n = page.body.count(b"\n") + 1 if page.body else 0  # = len(page.lines()), without the copies
        if n == 0:
            continue
        for line, messages in staged_errors.get(page.number, {}).items():
            if 0 <= line < n:
                errors[count + line] = messages
        bodies.append(page.body)
        pages.append(np.full(n, page.number, dtype=np.int64))
        lines.append(np.arange(n, dtype=np.int64))
        count += n
        if count >= chunk_size:
            yield b"\n".join(bodies), np.concatenate(pages), np.concatenate(lines), errors
            bodies, pages, lines, errors, count = [], [], [], {}, 0
    if bodies:
        yield b"\n".join(bodies), np.concatenate(pages), np.concatenate(lines), errors


def _iter_parsed_chunks(raw_dir: Any, chunk_size: int) -> Iterator[_RawChunk]:
    for body, pages, lines, errors in _iter_chunks(raw_dir, chunk_size):
        table = _read_json(body, len(pages))
        yield _RawChunk(body if table is None else None, pages, lines, table, errors)


def _read_json(body: bytes, expected: int) -> pa.Table | None:
    if not _is_utf8(body):  # Arrow's reader does not check; the record parser names the record
        return None
    try:
        table = pa_json.read_json(
            pa.BufferReader(body),  # zero-copy, and no GIL for the parser threads' reads
            read_options=pa_json.ReadOptions(block_size=1 << 20, use_threads=True),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != expected or _doubles_lost_values(table):
        return None
    return table


# Integers beyond this are not exact as doubles: a chunk where the JSON reader made one is re-read.
_EXACT_DOUBLE = 2.0**53
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _is_utf8(body: bytes) -> bool:
    """One SIMD pass over the chunk (zero-copy: the body viewed as a single Arrow string)."""
    offsets = pa.py_buffer(np.array([0, len(body)], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(body)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _doubles_lost_values(table: pa.Table) -> bool:
    """Whether the JSON reader's doubles hide values the record-by-record parser reports per field:
    NaN/±Infinity (not JSON) and integers beyond int64 (the whole column becomes double, rounding
    its neighbours beyond 2**53). A double beyond 2**53 re-reads its chunk even if it was a float."""
    pending = list(table.columns)
    while pending:
        array = pending.pop()
        kind = array.type
        if pa.types.is_struct(kind):
            pending.extend(pc.struct_field(array, [index]) for index in range(kind.num_fields))
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            pending.append(pc.list_flatten(array))
        elif (
            pa.types.is_floating(kind)
            and array.null_count < len(array)
            and (not pc.all(pc.is_finite(array)).as_py() or pc.max(pc.abs(array)).as_py() >= _EXACT_DOUBLE)
        ):
            return True
    return False


def _flatten_arrow(table: pa.Table, keep_whole: set[SourcePath]) -> dict[SourcePath, pa.ChunkedArray]:
    """Struct columns become one column per path, except paths declared as json or arrays.

    A loop, not a recursive closure: a closure that calls itself is a reference cycle, which
    would keep every chunk's arrays alive until Python's cycle collector happens to run.
    """
    columns: dict[SourcePath, pa.ChunkedArray] = {}
    pending: list[tuple[SourcePath, pa.ChunkedArray]] = [
        ((name,), table.column(name)) for name in reversed(table.column_names)
    ]
    while pending:
        name, array = pending.pop()
        if pa.types.is_struct(array.type) and name not in keep_whole:
            children = [
                ((*name, array.type.field(index).name), pc.struct_field(array, [index]))
                for index in range(array.type.num_fields)
            ]
            pending.extend(reversed(children))
            continue
        columns[name] = array
    return columns


def _flatten_record(
    record: dict[str, Any], keep_whole: set[SourcePath], prefix: SourcePath = ()
) -> dict[SourcePath, Any]:
    flat: dict[SourcePath, Any] = {}
    for key, value in record.items():
        name = (*prefix, key)
        if isinstance(value, dict) and name not in keep_whole:
            flat.update(_flatten_record(value, keep_whole, name))
        else:
            flat[name] = value
    return flat


def _parse_python(body: bytes, keep_whole: set[SourcePath], errors: _RowErrors) -> dict[SourcePath, Any]:
    """Slow path: one record at a time; unparseable lines become error rows, nothing is dropped."""
    records: list[dict[SourcePath, Any]] = []
    numbers: set[SourcePath] = set()  # fields that held NaN/±Infinity: numbers, even with no value left
    for position, line in enumerate(body.split(b"\n")):
        messages: list[str] = []
        try:
            value = _load_record(line, messages)
        except ValueError as exc:
            value = None
            messages.append(f"invalid JSON: {exc}")
        else:
            if not isinstance(value, dict):
                messages.append(f"record is {type(value).__name__}, not an object")
        record = _flatten_record(value, keep_whole) if isinstance(value, dict) else {}
        if b"NaN" in line or b"Infinity" in line:
            numbers.update(_null_non_finite(record, messages))
        if messages:
            errors.by_position[position].extend(messages)
        records.append(record)
    columns = _object_columns(records)
    for name in numbers & set(columns):
        if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in columns[name]):
            columns[name] = columns[name].astype("float64")
    return columns


def _object_columns(records: list[dict[SourcePath, Any]]) -> dict[SourcePath, pd.Series]:
    """Flat records as one object Series per path, paths in order of first appearance."""
    names: dict[SourcePath, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    return {name: pd.Series([record.get(name) for record in records], dtype="object") for name in names}


class _NonFinite:
    """A NaN or ±Infinity token: Python's json reads them, JSON has no such numbers."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token


def _load_record(line: bytes, messages: list[str]) -> Any:
    """One raw line as Python; bytes that are not UTF-8 are a row error (the record is read with
    U+FFFD in their place so its key and other fields still show), NaN/±Infinity stay marked."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        messages.append(f"record is not valid UTF-8 at byte {exc.start}")
        text = line.decode("utf-8", errors="replace")
    return json.loads(text, parse_constant=_NonFinite)


def _null_non_finite(record: dict[SourcePath, Any], messages: list[str]) -> set[SourcePath]:
    """Replace every NaN/±Infinity in a flattened record by null, a row error naming its field;
    return the columns that held one themselves (not nested in a json value or an array)."""
    numbers: set[SourcePath] = set()

    def clean(value: Any, path: str) -> Any:
        if isinstance(value, _NonFinite):
            messages.append(f"field {path}: non-finite number {value.token} (not valid JSON)")
            return None
        if isinstance(value, dict):
            return {key: clean(item, f"{path}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item, f"{path}[{index}]") for index, item in enumerate(value)]
        return value

    for name, value in record.items():
        if isinstance(value, _NonFinite):
            numbers.add(name)
        if isinstance(value, _NonFinite | dict | list):
            record[name] = clean(value, ".".join(name))
    return numbers


# ---------------------------------------------------------------- coercion


def _coerce_column(
    values: Any, length: int, ftype: str, spec_field: FieldSpec | None, column: str, errors: _RowErrors
) -> pa.ChunkedArray:
    """One column as its spec type: Arrow when the parsed type fits, pandas for the rest."""
    target = arrow_type(_logical_type(ftype, spec_field))
    if values is None:  # the field is in no record of this chunk
        return pa.chunked_array([pa.nulls(length, target)])
    if ftype == "json":
        return _json_text(values)
    if isinstance(values, pa.ChunkedArray):
        if pa.types.is_null(values.type):
            return pa.chunked_array([pa.nulls(len(values), target)])
        fast = _coerce_arrow(values, ftype, spec_field)
        if fast is not None:
            return fast
    series = _coerce(values, ftype, spec_field, column, errors)
    return pa.chunked_array([pa.array(series, type=target, from_pandas=True)])


def _coerce_arrow(
    values: pa.ChunkedArray, ftype: str, spec_field: FieldSpec | None
) -> pa.ChunkedArray | None:
    """Exact conversions that cannot fail; None sends the column through pandas (``_coerce``)."""
    kind = values.type
    if ftype == "string" and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return values.cast(pa.string())
    if ftype == "integer" and pa.types.is_integer(kind):
        return values.cast(pa.int64())
    if ftype == "float" and (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
        return values.cast(pa.float64())
    if ftype == "boolean" and pa.types.is_boolean(kind):
        return values
    if ftype == "timestamp":
        fmt = spec_field.format if spec_field else "iso"
        if fmt == "iso" and pa.types.is_timestamp(kind):  # the JSON reader parsed ISO 8601 as UTC
            return values.cast(TIMESTAMP_TYPE)
        if fmt in _EPOCH_MICROS and pa.types.is_integer(kind):
            bounds = pc.min_max(values)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            if low is None or (-_EPOCH_LIMITS[fmt] <= low and high <= _EPOCH_LIMITS[fmt]):
                return pc.multiply(values.cast(pa.int64()), _EPOCH_MICROS[fmt]).cast(TIMESTAMP_TYPE)
    return None


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
        return cast("pd.Series[Any]", values.to_pandas())
    return pd.Series(values)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _json_text(values: Any) -> pa.ChunkedArray:
    """Values as JSON text; Arrow's nulls for keys a record did not have are left out."""
    encode = _encoder.encode
    if isinstance(values, pa.ChunkedArray) and pa.types.is_struct(values.type):
        # Objects with no value (``{}``, or only keys other records had) need no encoding.
        array = values.combine_chunks()
        present = array.is_valid()
        fields = [pc.is_valid(pc.struct_field(array, [i])) for i in range(array.type.num_fields)]
        filled = pc.and_(present, reduce(pc.or_, fields)) if fields else None
        text = pc.if_else(present, pa.scalar("{}"), pa.scalar(None, pa.string()))
        if filled is not None and pc.any(filled).as_py():
            objects = array.filter(filled).to_pylist()
            encoded = pa.array([encode(_without_nulls(v)).decode() for v in objects], pa.string())
            text = pc.replace_with_mask(text, filled, encoded)
        return pa.chunked_array([text])
    if isinstance(values, pa.ChunkedArray):
        out = [None if v is None else encode(_without_nulls(v)).decode() for v in values.to_pylist()]
        return pa.chunked_array([pa.array(out, pa.string())])
    series = _as_series(values)
    out = [None if _is_missing(v) else encode(_plain(v)).decode() for v in series.tolist()]
    return pa.chunked_array([pa.array(out, pa.string())])


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
    series = _as_series(values)
    present = series.notna().to_numpy()
    if ftype == "string":
        if series.dtype == object:
            series = series.map(
                lambda v: v if isinstance(v, str) or _is_missing(v) else _encoder.encode(_plain(v)).decode()
            )
        return series.astype("str")
    if ftype == "integer" and (exact := _exact_integers(series, column, errors)) is not None:
        return exact
    if ftype in ("integer", "float"):
        numeric = _to_numeric(series)
        failed = present & numeric.isna().to_numpy()
        errors.add(failed, f"{column}: not a number")
        if ftype == "float":
            return numeric.astype("Float64")
        fractional = numeric.notna().to_numpy() & (numeric.fillna(0) % 1 != 0).to_numpy()
        errors.add(fractional, f"{column}: not an integer")
        outside = numeric.notna().to_numpy() & (numeric.fillna(0).abs() >= 2.0**63).to_numpy()
        for at in np.flatnonzero(outside):
            errors.by_position[int(at)].append(_outside_int64(column, series.iloc[at]))
        return numeric.where(~(fractional | outside)).round().astype("Int64")
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


def _outside_int64(column: str, value: Any) -> str:
    return f"field {column}: {value} is outside the integer range"


def _exact_integers(series: pd.Series, column: str, errors: _RowErrors) -> pd.Series | None:
    """Python ints (from the record parser) as Int64 without the detour through float64, which
    rounds beyond 2**53; one outside int64 is a row error. None when not every value is an int."""
    if series.dtype != object:
        return None
    values = series.tolist()
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in values):
        return None
    exact: list[int | None] = []
    for position, value in enumerate(values):
        if value is not None and not _INT64_MIN <= value <= _INT64_MAX:
            errors.by_position[position].append(_outside_int64(column, value))
            value = None
        exact.append(value)
    return pd.Series(pd.array(exact, dtype="Int64"))


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
        return bool(pa.types.is_list(values.type) or pa.types.is_large_list(values.type))
    series = _as_series(values)
    sample = series.dropna()
    return bool(len(sample)) and all(isinstance(v, (list, np.ndarray)) for v in sample.tolist())


def _take(values: Any, positions: np.ndarray) -> Any:
    if isinstance(values, pa.ChunkedArray):
        return values.take(pa.array(positions, pa.int64()))
    return _as_series(values).iloc[positions].reset_index(drop=True)


# ---------------------------------------------------------------- child tables


def _explode(values: Any) -> tuple[np.ndarray, np.ndarray, dict[SourcePath, Any]]:
    """An array column, one row per element: (parent position, element position, element columns)."""
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
            return parents, positions, {path[1:]: col for path, col in columns.items()}
        return parents, positions, {("value",): pa.chunked_array([flat])}
    parents_list: list[int] = []
    positions_list: list[int] = []
    items: list[dict[SourcePath, Any]] = []
    for parent, value in enumerate(_as_series(values).tolist()):
        if not isinstance(value, (list, np.ndarray)):
            continue
        for position, item in enumerate(value):
            parents_list.append(parent)
            positions_list.append(position)
            items.append(_flatten_record(item, set()) if isinstance(item, dict) else {("value",): item})
    return (
        np.asarray(parents_list, dtype=np.int64),
        np.asarray(positions_list, dtype=np.int64),
        _object_columns(items),
    )


def _build_child(
    spec: StreamSpec,
    values: Any,
    parents: pa.Table,
    surviving: np.ndarray | None,
    chunk_rows: int,
    row_offset: int,
    lineage: Lineage,
    column_map: ColumnMap,
    array_path: str,
) -> tuple[pa.Table, dict[str, str], dict[int, list[str]]]:
    """Child rows of the surviving parents, keyed by the parent's primary key and row number; and
    the errors of values no child column can hold, by the row of their parent in ``parents`` (the
    parent is quarantined for them, with its child rows: an element is never nulled silently)."""
    parent_positions, positions, raw_columns = _explode(values)
    kept: np.ndarray | None = None
    parent_index = parent_positions  # row of each element's parent in the (deduped) parent table
    if surviving is not None:  # parents were deduped: drop their children, renumber the rest
        renumbered = np.full(chunk_rows, -1, dtype=np.int64)
        renumbered[surviving] = np.arange(len(surviving), dtype=np.int64)
        kept = np.flatnonzero(renumbered[parent_positions] >= 0)
        parent_positions, positions = parent_positions[kept], positions[kept]
        parent_index = renumbered[parent_positions]
    errors = _RowErrors()
    out: dict[str, pa.ChunkedArray] = {}
    types: dict[str, str] = {}
    for source, raw_values in raw_columns.items():
        inferred = "json" if _is_array(raw_values) else _infer_type(raw_values)
        if inferred is None:
            continue
        column = column_map.column(source)
        element_values = raw_values if kept is None else _take(raw_values, kept)
        out[column] = _coerce_column(element_values, len(positions), inferred, None, column, errors)
        types[column] = inferred
    take_parents = pa.array(parent_index, pa.int64())
    for key in spec.primary_key:
        parent_column = f"{spec.name}_{key}"
        out[parent_column] = parents.column(key).take(take_parents)
        types[parent_column] = spec.columns()[key]
    out[POSITION] = pa.chunked_array([pa.array(positions, pa.int64())])
    types[POSITION] = "integer"
    out[PARENT_ROW] = pa.chunked_array([pa.array(parent_positions + row_offset, pa.int64())])
    out.update(_lineage_columns(lineage, len(positions)))
    types.update(LINEAGE_COLUMNS)
    parent_errors: dict[int, list[str]] = defaultdict(list)
    for element, messages in errors.by_position.items():
        parent_errors[int(parent_index[element])].extend(
            f"{array_path}[{int(positions[element])}].{message}" for message in messages
        )
    return pa.table(out), types, parent_errors


def _with_child_errors(table: pa.Table, child_errors: dict[int, list[str]]) -> pa.Table:
    """The parents' error column with their child elements' errors appended (rare: a slow path)."""
    if not child_errors:
        return table
    messages: list[str | None] = table.column(ERRORS).to_pylist()
    for row, added in child_errors.items():
        before = messages[row]
        messages[row] = "; ".join([before, *added] if before else added)
    index = table.schema.get_field_index(ERRORS)
    return table.set_column(index, ERRORS, pa.array(messages, pa.string()))


# ---------------------------------------------------------------- one chunk


@dataclass
class _NormalizedChunk:
    table: pa.Table
    children: dict[str, pa.Table]
    types: dict[str, str]
    child_types: dict[str, dict[str, str]]
    deduped: int
    python_parsed: bool
    out_of_window: int = 0


def _dotted(paths: list[SourcePath]) -> list[str]:
    return sorted(".".join(path) for path in paths)


def _normalize_chunk(
    spec: StreamSpec, chunk: _RawChunk, lineage: Lineage, row_offset: int, column_maps: dict[str, ColumnMap]
) -> _NormalizedChunk:
    errors = _RowErrors()
    n = len(chunk.pages)
    fields = {declared_path(path): spec_field for path, spec_field in spec.fields.items()}
    arrays = {declared_path(path): array_spec for path, array_spec in spec.arrays.items()}
    columns = column_maps[spec.destination.table]
    keep_whole = set(fields) | set(arrays)  # a declared scalar holding an object is an error
    slow = chunk.table is None
    if chunk.table is not None:
        raw: dict[SourcePath, Any] = _flatten_arrow(chunk.table, keep_whole)
    else:
        log.warning(
            "stream %s: pyarrow could not read a chunk of %d records; parsing it record by record",
            spec.name,
            n,
        )
        raw = _parse_python(chunk.body or b"", keep_whole, errors)

    undeclared = [path for path in raw if path not in fields]
    array_paths = [path for path in raw if path in arrays]
    unknown = [path for path in undeclared if path not in arrays]
    if unknown and spec.unknown_fields == "fail":
        raise UnknownFieldsError(
            f"stream {spec.name}: undeclared fields {_dotted(unknown)[:20]} (unknown_fields: fail)"
        )
    if spec.unknown_fields == "ignore":
        unknown = []
    total = len(spec.fields) + len(unknown)
    if total > spec.max_columns:
        raise TooManyColumnsError(
            f"stream {spec.name}: payload flattens to {total} columns, more than max_columns="
            f"{spec.max_columns} (e.g. {_dotted(unknown)[:10]}); raise max_columns in the spec or "
            "declare the object as a json field"
        )

    out: dict[str, pa.ChunkedArray] = {}
    types: dict[str, str] = {}
    for path, spec_field in fields.items():
        column = columns.column(path)
        out[column] = _coerce_column(raw.get(path), n, spec_field.type, spec_field, column, errors)
        types[column] = _logical_type(spec_field.type, spec_field)
    for path in unknown:  # in order of first appearance: the order new keys are named in
        values = raw[path]
        inferred = "json" if _is_array(values) else _infer_type(values)
        if inferred is None:
            continue  # no value in this chunk: nothing to keep, no column (nor name) to give it
        column = columns.column(path)
        out[column] = _coerce_column(values, n, inferred, None, column, errors)
        types[column] = inferred

    for key in spec.primary_key:
        missing = pc.is_null(out[key], nan_is_null=True).to_numpy(zero_copy_only=False)
        errors.add(missing, f"{key}: primary key is null")
    # partial_results: quarantine. "; " separates a row's messages in the column (the quarantine
    # splits on it), so a server message's own "; " becomes ", ".
    for position, messages in chunk.source_errors.items():
        errors.by_position[position].extend(f"graphql: {message.replace('; ', ', ')}" for message in messages)
    out[PAGE] = pa.chunked_array([pa.array(chunk.pages, pa.int64())])
    out[LINE] = pa.chunked_array([pa.array(chunk.lines, pa.int64())])
    out[ROW] = pa.chunked_array([pa.array(np.arange(row_offset, row_offset + n, dtype=np.int64))])
    out[ERRORS] = pa.chunked_array([errors.column(n)])
    table = pa.table(out)

    outside = _outside_window(table.column(spec.cursor_field), lineage)
    losers = _older_in_window_versions(table, spec, outside)
    surviving: np.ndarray | None = None
    if len(losers) or outside.any():
        keep = ~outside
        keep[losers] = False
        surviving = np.flatnonzero(keep)
        table = table.take(pa.array(surviving, pa.int64()))
    for name, array in _lineage_columns(lineage, table.num_rows).items():
        table = table.append_column(name, array)

    children: dict[str, pa.Table] = {}
    child_types: dict[str, dict[str, str]] = {}
    child_errors: dict[int, list[str]] = defaultdict(list)
    for path in array_paths:
        array_spec = arrays[path]
        if array_spec.mode == "json":
            column = columns.column(path)
            values = raw[path] if surviving is None else _take(raw[path], surviving)
            table = table.append_column(column, _json_text(values))
            types[column] = "json"
            continue
        assert array_spec.table is not None  # the spec requires a table for child_table arrays
        child_map = column_maps[array_spec.table]
        child, ctypes, parent_errors = _build_child(
            spec, raw[path], table, surviving, n, row_offset, lineage, child_map, ".".join(path)
        )
        children[array_spec.table] = child
        child_types[array_spec.table] = ctypes
        for row, messages in parent_errors.items():
            child_errors[row].extend(messages)
    for path, array_spec in arrays.items():
        if array_spec.mode == "json" and path not in raw:
            column = columns.column(path)
            table = table.append_column(column, pa.nulls(table.num_rows, pa.string()))
            types[column] = "json"
    table = _with_child_errors(table, child_errors)
    types.update(LINEAGE_COLUMNS)
    return _NormalizedChunk(table, children, types, child_types, len(losers), slow, int(outside.sum()))


# ---------------------------------------------------------------- window ownership


def _ceil_epoch_seconds(moment: datetime) -> int:
    micros = (moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return -(-micros // 1_000_000)


def _outside_window(cursor: pa.ChunkedArray, lineage: Lineage) -> np.ndarray:
    """Rows whose (typed) cursor lies outside ``[interval_start, interval_end)``: another window's.

    An integer cursor counts epoch seconds, as replace_window reads it; a NULL (missing or
    uncoercible) cursor is not outside: the error path quarantines that row.
    """
    bounds: list[Any] = [lineage.interval_start, lineage.interval_end]
    if pa.types.is_integer(cursor.type):  # c >= 3.5 s <=> c >= 4: both bounds round up
        bounds = [_ceil_epoch_seconds(moment) for moment in bounds]
    low, high = (pa.scalar(bound, cursor.type) for bound in bounds)
    outside = pc.or_(pc.less(cursor, low), pc.greater_equal(cursor, high))
    mask: np.ndarray = pc.fill_null(outside, False).to_numpy(zero_copy_only=False).copy()
    return mask


def _older_in_window_versions(table: pa.Table, spec: StreamSpec, outside: np.ndarray) -> np.ndarray:
    """:func:`_older_versions` among the in-window rows only: a version of another window never
    supersedes this window's (it is dropped as out of window, and its own window loads it)."""
    if not outside.any():
        return _older_versions(table, spec)
    inside = np.flatnonzero(~outside)
    older: np.ndarray = inside[_older_versions(table.take(pa.array(inside, pa.int64())), spec)]
    return older


def _older_versions(table: pa.Table, spec: StreamSpec) -> np.ndarray:
    """Chunk positions of records superseded within the chunk: same key, older cursor (later
    pages win ties). Keys are usually unique, which one Arrow kernel confirms."""
    keys = spec.primary_key
    if len(keys) == 1:
        column = table.column(keys[0])
        distinct = pc.count_distinct(column, mode="only_valid").as_py()
        if distinct == len(column) - column.null_count:
            return np.empty(0, dtype=np.int64)
    columns = list(dict.fromkeys([*keys, spec.cursor_field]))
    frame = table.select(columns).to_pandas(types_mapper=NULLABLE_PANDAS_TYPES.get)
    keyed = frame[keys].notna().all(axis=1)
    ordered = frame[keyed].sort_values(spec.cursor_field, kind="stable", na_position="first")
    older: np.ndarray = ordered.index[ordered.duplicated(subset=keys, keep="last")].to_numpy(dtype=np.int64)
    return older


def _constant(value: Any, kind: pa.DataType, length: int) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array([value], kind).take(pa.array(np.zeros(length, dtype=np.int64)))])


def _lineage_columns(lineage: Lineage, length: int) -> dict[str, pa.ChunkedArray]:
    return {
        "_synced_at": _constant(lineage.synced_at, TIMESTAMP_TYPE, length),
        "_source": _constant(lineage.source, pa.string(), length),
        "_run_id": _constant(lineage.run_id, pa.string(), length),
        "_interval_start": _constant(lineage.interval_start, TIMESTAMP_TYPE, length),
        "_interval_end": _constant(lineage.interval_end, TIMESTAMP_TYPE, length),
    }


# ---------------------------------------------------------------- files


def _merge_types(known: dict[str, str], new: dict[str, str]) -> None:
    for column, kind in new.items():
        previous = known.get(column)
        if previous is None or previous == kind:
            known[column] = kind
        elif {previous, kind} == {"integer", "float"}:
            known[column] = "float"
        else:
            known[column] = "string"  # a field that changes type between chunks is kept as text


def _write_chunk(chunk: _NormalizedChunk, out_dir: Any, name: str) -> None:
    write_table(chunk.table, out_dir / name)
    for table, child in chunk.children.items():
        write_table(child, out_dir / table / name)


def normalize_files(
    spec: StreamSpec,
    raw_dir: Any,
    out_dir: Any,
    lineage: Lineage,
    *,
    known_columns: Mapping[str, Mapping[SourcePath, str]] | None = None,
) -> NormalizeResult:
    """Normalize a completed extraction into ``out_dir`` (Parquet parts + a manifest).

    ``known_columns``: the source-key -> column mapping stored with each destination table (see
    :mod:`apisync.staging.column_map`); the entries added here are ``result.column_map``.
    """
    column_maps = stream_column_maps(spec, known_columns)
    clear_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = NormalizeResult(out_dir=str(out_dir))
    row_offset = 0
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="apisync-read") as reader,
        WriteBehind("apisync-write") as writer,
    ):
        chunks = read_ahead(reader, _iter_parsed_chunks(raw_dir, spec.chunk_size))
        for raw_chunk in chunks:  # not enumerate(): its reused tuple would keep raw_chunk alive
            lines = len(raw_chunk.pages)
            chunk = _normalize_chunk(spec, raw_chunk, lineage, row_offset, column_maps)
            del raw_chunk  # its body can go before the next chunk arrives
            row_offset += lines
            result.pulled += lines
            result.deduped += chunk.deduped
            result.out_of_window += chunk.out_of_window
            errors = chunk.table.column(ERRORS)
            result.coercion_errors += len(errors) - errors.null_count
            result.python_parsed_chunks += int(chunk.python_parsed)
            name = f"part-{len(result.parts):05d}.parquet"
            result.parts.append(name)
            _merge_types(result.columns, chunk.types)
            for table in chunk.children:
                (out_dir / table).mkdir(parents=True, exist_ok=True)
                entry = result.children.setdefault(table, {"columns": {}, "parts": []})
                entry["parts"].append(name)
                _merge_types(entry["columns"], chunk.child_types[table])
            writer.submit(_write_chunk, chunk, out_dir, name)
            del chunk
            # Three threads allocate here; hand freed pages back so the peak does not creep up
            # (mimalloc otherwise keeps each chunk's freed pages while the next one is parsed).
            pa.default_memory_pool().release_unused()
    _warn_when_mostly_outside(spec, lineage, result)
    result.column_map = {
        table: entries for table, column_map in column_maps.items() if (entries := column_map.new_entries())
    }
    write_normalized_manifest(out_dir, result.as_dict())
    return result


_MOSTLY_OUTSIDE_SHARE = 0.5
_MOSTLY_OUTSIDE_MIN = 10  # a few boundary records outside is an inclusive bound, not a sign


def _warn_when_mostly_outside(spec: StreamSpec, lineage: Lineage, result: NormalizeResult) -> None:
    """Most of what came back is other windows' records: the server probably ignores a filter param."""
    if (
        result.out_of_window > _MOSTLY_OUTSIDE_MIN
        and result.out_of_window > _MOSTLY_OUTSIDE_SHARE * result.pulled
    ):
        log.warning(
            "stream %s: %d of %d records pulled for the window [%s, %s) were outside it (dropped, "
            "counted as out_of_window); the server probably ignores the window filter params %s: "
            "the data stays right, but every run pulls far more than its window",
            spec.name,
            result.out_of_window,
            result.pulled,
            lineage.interval_start.isoformat(),
            lineage.interval_end.isoformat(),
            ", ".join(spec.source.window_params()),
        )
