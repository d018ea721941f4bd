"""COPY Arrow tables into PostgreSQL: binary format when every column has an encoder here, else CSV.

Binary COPY spares the server the text parsing of every value (timestamps above all): the orders
stream goes in ~2.5x faster than as CSV. The format (PostgreSQL manual, COPY, "Binary Format") is
a signature, then per row a 16-bit field count and per field a 32-bit length (-1 for NULL)
followed by the value in its type's binary send form, then a -1 trailer. Rows are assembled
column-wise with pyarrow compute kernels: no Python code runs per row.

The wire form of a column follows the destination column's server type, not the data's: an
integer field stored in an evolved ``double precision`` column is sent as a float8. A table with a
column type that has no encoder here (``numeric``, ``json``, ``smallint``, ...) goes as CSV, which
the server converts itself.

Parts are read and encoded in a worker thread while the previous part streams to the server
(pyarrow releases the GIL), so on two cores the encoding and the server's ingest overlap.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from apisync.errors import LoadError

__all__ = ["CopyTarget", "copy_parts", "copy_target"]

BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, 32-bit flags and extension length: 0
BINARY_TRAILER = b"\xff\xff"
POSTGRES_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
BINARY_SLICE_ROWS = 8192  # rows encoded at once
COPY_READ_SIZE = 1 << 20  # bytes psycopg2 hands to each PQputCopyData (its default is 8 KiB)

_EMPTY = pa.scalar(b"", pa.large_binary())
_NULL_FIELD = pa.scalar(b"\xff\xff\xff\xff", pa.large_binary())


def _as_large_binary(values: np.ndarray) -> pa.Array:
    """The raw bytes of each item of a 1-D array (a big-endian number, a packed record) as a value."""
    raw = np.ascontiguousarray(values).view(np.uint8)
    width = values.dtype.itemsize
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(values), [None, pa.py_buffer(raw)])
    return fixed.cast(pa.large_binary())


def _length_headers(lengths: pa.Array) -> pa.Array:
    """32-bit big-endian field lengths; a NULL value gets -1."""
    values = pc.fill_null(lengths, -1).to_numpy(zero_copy_only=False)
    return _as_large_binary(values.astype(">i4"))


def _variable(array: pa.Array, prefix: bytes = b"") -> list[Any]:
    """Length header and bytes; ``prefix`` is a format byte in front of the value (jsonb's version)."""
    data = array.cast(pa.large_binary())
    if prefix:
        data = pc.binary_join_element_wise(pa.scalar(prefix, pa.large_binary()), data, _EMPTY)
    return [_length_headers(pc.binary_length(data)), pc.fill_null(data, _EMPTY)]


def _fixed(values: np.ndarray, nulls: pa.Array, wire: str) -> list[Any]:
    """Length header and big-endian value in one packed record per row; NULL rows get -1 only."""
    packed = np.empty(len(values), dtype=np.dtype([("length", ">i4"), ("value", wire)]))
    packed["length"] = packed.dtype["value"].itemsize
    packed["value"] = values
    fields = _as_large_binary(packed)
    if nulls.null_count:
        fields = pc.if_else(pc.is_null(nulls), _NULL_FIELD, fields)
    return [fields]


def _jsonb(array: pa.Array) -> list[Any]:
    return _variable(array, prefix=b"\x01")


def _int8(array: pa.Array) -> list[Any]:
    return _fixed(pc.fill_null(array, 0).to_numpy(), array, ">i8")


def _float8(array: pa.Array) -> list[Any]:
    values = pc.fill_null(array.cast(pa.float64(), safe=False), 0.0).to_numpy()
    return _fixed(values, array, ">f8")


def _boolean(array: pa.Array) -> list[Any]:
    return _fixed(pc.fill_null(array, False).to_numpy(zero_copy_only=False), array, "u1")


def _timestamp(array: pa.Array) -> list[Any]:
    """Microseconds since 2000-01-01 UTC (a naive value is taken as UTC, as in the CSV path)."""
    micros = array.cast(pa.timestamp("us", tz=array.type.tz)).cast(pa.int64())
    return _fixed(pc.fill_null(micros, 0).to_numpy() - POSTGRES_EPOCH_US, array, ">i8")


@dataclass(frozen=True)
class _Encoder:
    encode: Callable[[pa.Array], list[Any]]
    accepts: Callable[[pa.DataType], bool]


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _fits_int8(kind: pa.DataType) -> bool:
    unsigned_fits = pa.types.is_unsigned_integer(kind) and kind.bit_width < 64
    return bool(pa.types.is_signed_integer(kind) or unsigned_fits)


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


# Server type (``atttypid::regtype``) -> binary encoder, and the Arrow types it takes.
BINARY_ENCODERS: dict[str, _Encoder] = {
    "text": _Encoder(_variable, _is_text),
    "character varying": _Encoder(_variable, _is_text),
    "jsonb": _Encoder(_jsonb, _is_text),
    "bigint": _Encoder(_int8, _fits_int8),
    "double precision": _Encoder(_float8, _is_number),
    "boolean": _Encoder(_boolean, pa.types.is_boolean),
    "timestamp with time zone": _Encoder(_timestamp, pa.types.is_timestamp),
    "timestamp without time zone": _Encoder(_timestamp, pa.types.is_timestamp),
}


def _encode_rows(table: pa.Table, encoders: list[_Encoder]) -> memoryview:
    """The binary tuples of ``table``'s rows, back to back."""
    fields: list[Any] = [pa.scalar(len(encoders).to_bytes(2, "big"), pa.large_binary())]
    for column, encoder in zip(table.columns, encoders, strict=True):
        fields.extend(encoder.encode(column.chunk(0)))
    rows = pc.binary_join_element_wise(*fields, _EMPTY)
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)[rows.offset : rows.offset + len(rows) + 1]
    return memoryview(rows.buffers()[2])[offsets[0] : offsets[-1]]


def _encode_binary(table: pa.Table, encoders: list[_Encoder]) -> bytes:
    """A whole binary COPY body; rows are encoded a slice at a time to bound the intermediate
    arrays (a length header per value and column) to a slice's worth of memory."""
    pieces = [BINARY_SIGNATURE]
    for start in range(0, table.num_rows, BINARY_SLICE_ROWS):
        pieces.append(bytes(_encode_rows(table.slice(start, BINARY_SLICE_ROWS).combine_chunks(), encoders)))
    pieces.append(BINARY_TRAILER)
    return b"".join(pieces)


def _encode_csv(table: pa.Table) -> bytes:
    # Naive UTC timestamps format ~10x faster in pyarrow's CSV writer than tz-aware ones; the
    # COPY runs with the session time zone set to UTC.
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            table = table.set_column(
                index, field.name, table.column(index).cast(pa.timestamp(field.type.unit))
            )
    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class CopyTarget:
    """A table (or temporary table) to COPY into, with its columns' server types."""

    table_sql: str  # quoted, schema-qualified name
    columns: list[str]
    column_sql: list[str]  # quoted column names, in ``columns`` order
    server_types: list[str]
    freeze: bool = False  # rows go in frozen: only for a table created in this transaction

    def encode(self, table: pa.Table) -> tuple[str, bytes]:
        """The COPY statement and body for ``table`` (whose columns are ``columns``, in order)."""
        encoders = [BINARY_ENCODERS.get(server) for server in self.server_types]
        names = ", ".join(self.column_sql)
        freeze = ", FREEZE" if self.freeze else ""
        if all(
            encoder is not None and encoder.accepts(field.type)
            for encoder, field in zip(encoders, table.schema, strict=True)
        ):
            body = _encode_binary(table, encoders)  # type: ignore[arg-type]
            return f"COPY {self.table_sql} ({names}) FROM STDIN WITH (FORMAT binary{freeze})", body
        statement = f"COPY {self.table_sql} ({names}) FROM STDIN WITH (FORMAT csv, HEADER true{freeze})"
        return statement, _encode_csv(table)


def copy_target(
    cursor: Any, table_sql: str, columns: list[str], quote: Callable[[str], str], *, freeze: bool = False
) -> CopyTarget:
    """Look up the server types of ``columns`` in ``table_sql`` (visible to this transaction).

    ``freeze``: COPY ... FREEZE, for a table created in this transaction (which nobody else sees
    before commit): rows are written frozen and the pages all-visible, so the first reads after
    the load (the next merge's join, a vacuum) do not rewrite every page to set hint bits.
    """
    cursor.execute(
        "SELECT attname, atttypid::regtype::text FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (table_sql,),
    )
    types = dict(cursor.fetchall())
    for name in columns:
        if name not in types:
            raise LoadError(f"{table_sql} has no column {name!r}")
    return CopyTarget(
        table_sql, columns, [quote(name) for name in columns], [types[name] for name in columns], freeze
    )


def _prefetched(items: list[Any], work: Callable[[Any], Any]) -> Iterator[Any]:
    """``work(item)`` for each item, the next one computed in a worker thread while this one is used."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="apisync-copy") as pool:
        pending = pool.submit(work, items[0])
        for item in items[1:]:
            ready = pending.result()
            pending = pool.submit(work, item)
            yield ready
        yield pending.result()


def copy_parts(cursor: Any, target: CopyTarget, parts: list[Any], read: Callable[[Any], pa.Table]) -> int:
    """COPY ``read(part)`` for every part into ``target``; return the rows sent."""

    def encode(part: Any) -> tuple[str, bytes, int]:
        table = read(part)
        statement, body = target.encode(table)
        return statement, body, table.num_rows

    cursor.execute("SET LOCAL TIME ZONE 'UTC'")  # how the CSV form's naive timestamps are read
    rows = 0
    for statement, body, count in _prefetched(parts, encode):
        if count:
            cursor.copy_expert(statement, io.BytesIO(body), size=COPY_READ_SIZE)
        rows += count
        del body
        pa.default_memory_pool().release_unused()  # the sent part's pages, before the next is read
    return rows
