"""Logical field types as Arrow types: the contract between normalize (writes parts) and load (reads them)."""

from __future__ import annotations

import pyarrow as pa

__all__ = ["TIMESTAMP_TYPE", "arrow_type"]

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")


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
