"""Staged Parquet parts: the one place that writes them, and the readers every stage uses.

Parts are written with one set of options (:data:`PARQUET_WRITE_OPTIONS`) and read back either
as they are (:func:`read_table`, :func:`read_parquet`) or as the manifest's logical types
(:func:`read_part`, for load and the quarantine), optionally keeping only some rows.

Row selection works on the global row numbers normalize writes (``_apisync_row`` for parent rows,
``_apisync_parent_row`` on child rows): a boolean array indexed by row number is a bit per row of
the window (1 MB per million rows), cheap to build once and to apply to every part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from apisync.staging.logical_types import NULLABLE_PANDAS_TYPES, arrow_type

__all__ = [
    "PARQUET_WRITE_OPTIONS",
    "RowMask",
    "clear_dir",
    "read_parquet",
    "read_part",
    "read_table",
    "row_flags",
    "write_table",
]

# Parts are staging files, read back once or twice and never filtered on: LZ4 is the cheapest
# codec to write and read, column statistics are not needed, and a small dictionary page limit
# makes unique-ish text (ids, emails) give up dictionary encoding early while low-cardinality
# columns (status, lineage) keep it. Together about 40 % less CPU than the defaults.
PARQUET_WRITE_OPTIONS: dict[str, Any] = {
    "compression": "lz4",
    "dictionary_pagesize_limit": 64 * 1024,
    "write_statistics": False,
}


def write_table(table: pa.Table, path: Any) -> None:
    """Write a staging part (the one place that chooses codec and encodings)."""
    with path.open("wb") as handle:
        pq.write_table(table, handle, **PARQUET_WRITE_OPTIONS)


def read_table(path: Any, columns: list[str] | None = None) -> pa.Table:
    """Read a staging part (or some of its columns) as Arrow."""
    with path.open("rb") as handle:
        return pq.read_table(handle, columns=columns)


def read_parquet(path: Any, columns: list[str] | None = None) -> pd.DataFrame:
    """A part as pandas, with the nullable dtypes normalization coerces to (Int64, Float64, boolean)."""
    frame: pd.DataFrame = read_table(path, columns).to_pandas(types_mapper=NULLABLE_PANDAS_TYPES.get)
    return frame


def clear_dir(directory: Any) -> None:
    """Empty a stage's output directory (and its subdirectories) before the stage writes it again."""
    if directory.exists():
        for entry in directory.iterdir():
            if entry.is_dir():
                clear_dir(entry)
            else:
                entry.unlink()


def _same_type(actual: pa.DataType, target: pa.DataType) -> bool:
    """Large and small string layouts hold the same values: converting one to the other only costs a copy."""
    if pa.types.is_string(target):
        return bool(pa.types.is_string(actual) or pa.types.is_large_string(actual))
    return bool(actual == target)


def row_flags(numbers: np.ndarray) -> np.ndarray:
    """A boolean array indexed by row number, True at ``numbers`` (as long as the largest of them needs)."""
    flags = np.zeros(int(numbers.max()) + 1 if len(numbers) else 0, dtype=bool)
    flags[numbers] = True
    return flags


@dataclass(frozen=True)
class RowMask:
    """Rows to keep, looked up by the row number in ``column``; numbers past the end of ``keep``
    get ``beyond``."""

    column: str
    keep: np.ndarray  # bool, indexed by row number
    beyond: bool = False

    def select(self, table: pa.Table) -> pa.Table:
        numbers = table.column(self.column).to_numpy()
        inside = numbers < len(self.keep)
        selected = np.full(len(numbers), self.beyond, dtype=bool)
        selected[inside] = self.keep[numbers[inside]]
        return table.filter(pa.array(selected))


def read_part(
    path: Any, columns: dict[str, str], extra: dict[str, str], keep: RowMask | None = None
) -> pa.Table:
    """Read a part as exactly ``columns`` (cast to their logical types) plus ``extra`` renames.

    A column absent from the part (a field no record of that part carried) comes back as nulls.
    ``keep`` drops the rows it does not select before anything is cast.
    """
    with path.open("rb") as handle:
        parquet = pq.ParquetFile(handle)
        present = set(parquet.schema_arrow.names)
        wanted = [*columns, *extra, *([keep.column] if keep else [])]
        table = parquet.read(columns=[name for name in dict.fromkeys(wanted) if name in present])
    if keep is not None:
        table = keep.select(table)
    arrays: dict[str, pa.ChunkedArray] = {}
    for column, kind in columns.items():
        target = arrow_type(kind)
        if column not in present:
            arrays[column] = pa.chunked_array([pa.nulls(table.num_rows, target)])
            continue
        array = table.column(column)
        if pa.types.is_null(array.type):
            array = pa.chunked_array([pa.nulls(len(array), target)])
        elif not _same_type(array.type, target):
            array = array.cast(target)
        arrays[column] = array
    for source, target_name in extra.items():
        arrays[target_name] = table.column(source)
    return pa.table(arrays)
