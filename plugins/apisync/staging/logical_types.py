"""Logical field types as Arrow, pandas and SQL types: the contract between normalize (writes
parts), quality (checks them as pandas, keeps the quarantine table) and load (reads them into
tables)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = ["NULLABLE_PANDAS_TYPES", "ROW_ID_TYPE", "TIMESTAMP_TYPE", "arrow_type", "sql_type"]

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
# The surrogate key of the bookkeeping tables: SQLite autoincrements only an INTEGER primary key.
ROW_ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Logical types as pandas reads them (nullable), the dtypes normalize's coercion produces.
NULLABLE_PANDAS_TYPES = {
    pa.int64(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def arrow_type(kind: str) -> pa.DataType:
    """Arrow type of a logical column type (``string``, ``integer``, ``decimal:<scale>``, ...)."""
    if kind.startswith("decimal"):
        return pa.decimal128(38, int(kind.split(":", 1)[1]) if ":" in kind else 2)
    return {
        "string": pa.string(),
        "json": pa.string(),
        "integer": pa.int64(),
        "float": pa.float64(),
        "boolean": pa.bool_(),
        "timestamp": TIMESTAMP_TYPE,
    }[kind]


def sql_type(kind: str) -> sa.types.TypeEngine[Any]:
    """SQL column type of a logical type (JSON is JSONB on PostgreSQL, text elsewhere)."""
    if kind.startswith("decimal"):
        scale = int(kind.split(":", 1)[1]) if ":" in kind else 2
        return sa.Numeric(38, scale)
    by_kind: dict[str, sa.types.TypeEngine[Any]] = {
        "string": sa.Text(),
        "integer": sa.BigInteger(),
        "float": sa.Double(),
        "boolean": sa.Boolean(),
        "timestamp": sa.DateTime(timezone=True),
        "json": sa.Text().with_variant(postgresql.JSONB(), "postgresql"),
    }
    return by_kind[kind]
