"""COPY of Arrow tables into real PostgreSQL: the binary encoder stores exactly what CSV would."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg2
import pyarrow as pa
import pytest

from apisync.errors import LoadError
from apisync.load.pg_copy import CopyTarget, copy_target

COLUMNS = "s text, v varchar, j jsonb, i bigint, f double precision, b boolean, tz timestamptz, ts timestamp"
NAMES = ["s", "v", "j", "i", "f", "b", "tz", "ts"]


def _quote(name: str) -> str:
    return f'"{name}"'


def _edge_rows() -> pa.Table:
    """Values that trip hand-written encoders: NULLs, empty and long strings, quoting characters,
    non-ASCII, integer extremes, NaN/inf/-0.0, timestamps around and far from 2000-01-01."""
    utc = "UTC"
    return pa.table(
        {
            "s": pa.array(["plain", "", None, 'é✓ "q", \\ \n\t;', "x" * 70_000], pa.large_string()),
            "v": pa.array(["a", None, "ü", "", "b"], pa.string()),
            "j": pa.array(['{"a": [1, 2.5, null]}', None, '"text"', "null", "{}"], pa.large_string()),
            "i": pa.array([0, -1, None, 2**63 - 1, -(2**63)], pa.int64()),
            "f": pa.array([1.5, math.nan, None, math.inf, -0.0], pa.float64()),
            "b": pa.array([True, False, None, True, False]),
            "tz": pa.array(
                [
                    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                    datetime(2000, 1, 1, tzinfo=UTC),
                    None,
                    datetime(1, 1, 1, tzinfo=UTC),
                    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
                ],
                pa.timestamp("us", tz=utc),
            ),
            "ts": pa.array(
                [
                    datetime(1970, 1, 1),
                    None,
                    datetime(2026, 5, 5, 1, 2, 3, 4),
                    datetime(2000, 1, 1),
                    datetime(1900, 1, 1),
                ],
                pa.timestamp("us"),
            ),
        }
    )


@pytest.fixture
def cursor(postgres_url: str) -> Iterator[Any]:
    """A raw psycopg2 cursor in a transaction that is rolled back: temp tables only."""
    dsn = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            yield cur
    finally:
        conn.rollback()
        conn.close()


def _load(cursor: Any, target: CopyTarget, table: pa.Table) -> str:
    statement, body = target.encode(table)
    cursor.copy_expert(statement, io.BytesIO(body))
    return statement


def _rows(cursor: Any, table: str) -> list[tuple[Any, ...]]:
    # text forms: exact, and NaN compares equal to itself
    cursor.execute(f"SELECT {', '.join(f'{n}::text' for n in NAMES)} FROM {table} ORDER BY i NULLS FIRST, s")
    return cursor.fetchall()


def test_binary_copy_stores_what_csv_copy_stores(cursor: Any) -> None:
    cursor.execute(
        f"CREATE TEMP TABLE via_binary ({COLUMNS}); CREATE TEMP TABLE via_csv ({COLUMNS}, n numeric)"
    )
    rows = _edge_rows()
    assert "FORMAT binary" in _load(cursor, copy_target(cursor, "via_binary", NAMES, _quote), rows)
    # A numeric column has no binary encoder: the same rows (plus one) go as CSV.
    with_numeric = rows.append_column("n", pa.array([Decimal("1.10")] * len(rows), pa.decimal128(38, 2)))
    assert "FORMAT csv" in _load(cursor, copy_target(cursor, "via_csv", [*NAMES, "n"], _quote), with_numeric)
    assert _rows(cursor, "via_binary") == _rows(cursor, "via_csv")
    cursor.execute("SELECT count(*), count(s), count(j), sum(length(s)) FROM via_binary")
    assert cursor.fetchone() == (5, 4, 4, 5 + 0 + len('é✓ "q", \\ \n\t;') + 70_000)


def test_values_round_trip_exactly(cursor: Any) -> None:
    cursor.execute(f"CREATE TEMP TABLE t ({COLUMNS})")
    _load(cursor, copy_target(cursor, "t", NAMES, _quote), _edge_rows())
    cursor.execute("SELECT s, j, i, b, tz, ts FROM t WHERE i = 9223372036854775807")
    assert cursor.fetchone() == (
        'é✓ "q", \\ \n\t;',
        None,  # JSON null
        2**63 - 1,
        True,
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(2000, 1, 1),
    )
    cursor.execute("SELECT f::text, tz, j FROM t WHERE i = 0")
    assert cursor.fetchone() == (
        "1.5",
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        {"a": [1, 2.5, None]},
    )
    cursor.execute("SELECT count(*) FROM t WHERE f = 'NaN' OR f = 'Infinity'")
    assert cursor.fetchone() == (2,)


def test_wire_form_follows_the_server_column_type(cursor: Any) -> None:
    """An integer field in an evolved ``double precision`` column and JSON in a ``text`` column."""
    cursor.execute("CREATE TEMP TABLE evolved (amount double precision, meta text)")
    data = pa.table({"amount": pa.array([3, None, 2**53 + 1]), "meta": pa.array(['{"k": 1}', None, "[]"])})
    statement = _load(cursor, copy_target(cursor, "evolved", ["amount", "meta"], _quote), data)
    assert "FORMAT binary" in statement
    cursor.execute("SELECT amount, meta FROM evolved ORDER BY amount NULLS LAST")
    assert cursor.fetchall() == [(3.0, '{"k": 1}'), (float(2**53), "[]"), (None, None)]


def test_types_without_binary_encoder_go_as_csv(cursor: Any) -> None:
    cursor.execute("CREATE TEMP TABLE money (price numeric(38, 2), qty integer, label text)")
    data = pa.table(
        {
            "price": pa.array([Decimal("12.34"), None], pa.decimal128(38, 2)),
            "qty": pa.array([2, 3]),
            "label": pa.array(["a,b", None]),
        }
    )
    statement = _load(cursor, copy_target(cursor, "money", ["price", "qty", "label"], _quote), data)
    assert "FORMAT csv" in statement
    cursor.execute("SELECT price, qty, label FROM money ORDER BY qty")
    assert cursor.fetchall() == [(Decimal("12.34"), 2, "a,b"), (None, 3, None)]


def test_a_nul_byte_is_refused_by_the_server_not_stored_cut(cursor: Any) -> None:
    cursor.execute("CREATE TEMP TABLE t (s text)")
    target = copy_target(cursor, "t", ["s"], _quote)
    with pytest.raises(psycopg2.DataError, match="0x00"):
        _load(cursor, target, pa.table({"s": pa.array(["a\x00b"])}))


def test_an_empty_table_encodes_to_a_valid_empty_copy(cursor: Any) -> None:
    cursor.execute(f"CREATE TEMP TABLE t ({COLUMNS})")
    _load(cursor, copy_target(cursor, "t", NAMES, _quote), _edge_rows().slice(0, 0))
    cursor.execute("SELECT count(*) FROM t")
    assert cursor.fetchone() == (0,)


def test_a_column_the_table_lacks_is_a_clear_error(cursor: Any) -> None:
    cursor.execute("CREATE TEMP TABLE t (s text)")
    with pytest.raises(LoadError, match=r"t has no column 'missing'"):
        copy_target(cursor, "t", ["s", "missing"], _quote)
