"""Read validated Parquet parts as the manifest's logical types, optionally keeping only some rows.

Row selection works on the global row numbers normalize writes (``_apisync_row`` for parent rows,
``_apisync_parent_row`` on child rows): a boolean array indexed by row number is a bit per row of
the window (1 MB per million rows), cheap to build once and to apply to every part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from apisync.transform.logical_types import arrow_type

__all__ = ["RowMask", "read_part", "row_flags"]


def _same_type(actual: pa.DataType, target: pa.DataType) -> bool:
    """Large and small string layouts hold the same values: converting one to the other only costs a copy."""
    if pa.types.is_string(target):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual)
    return actual == target


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
