"""Logical field types as Arrow and pandas types: the contract between normalize (writes parts),
quality (checks them as pandas) and load (reads them)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

__all__ = ["NULLABLE_PANDAS_TYPES", "TIMESTAMP_TYPE", "arrow_type"]

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
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
