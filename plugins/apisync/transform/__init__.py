"""Normalize raw API pages into typed, flat, deduplicated Parquet parts (pandas + pyarrow).

Names resolve lazily so that a DAG file importing the pipeline does not pay for pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "NormalizeError": "apisync.errors",
    "TooManyColumnsError": "apisync.errors",
    "UnknownFieldsError": "apisync.errors",
    "column_name": "apisync.transform.naming",
    "column_names": "apisync.transform.naming",
    "Lineage": "apisync.transform.normalize",
    "NormalizeResult": "apisync.transform.normalize",
    "normalize_files": "apisync.transform.normalize",
    "extract_to_files": "apisync.transform.raw_pages",
    "iter_raw_pages": "apisync.transform.raw_pages",
    "read_manifest": "apisync.transform.raw_pages",
    "write_page": "apisync.transform.raw_pages",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
