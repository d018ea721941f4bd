"""Column names every staged part carries besides the data: the contract between the stages.

Normalize writes them, validate reads page/line/errors to quarantine a row with its raw record and
drops them from the good parts, load selects rows by their row numbers. Internal columns start
with ``_apisync_`` and never reach the warehouse; lineage columns do.
"""

from __future__ import annotations

__all__ = [
    "ERRORS",
    "INTERNAL_COLUMNS",
    "LINE",
    "LINEAGE_COLUMNS",
    "PAGE",
    "PARENT_ROW",
    "POSITION",
    "ROW",
]

# Lineage of every row, stored in the warehouse: column -> logical type.
LINEAGE_COLUMNS = {
    "_synced_at": "timestamp",
    "_source": "string",
    "_run_id": "string",
    "_interval_start": "timestamp",
    "_interval_end": "timestamp",
}
PAGE = "_apisync_page"  # raw page number of the row's record
LINE = "_apisync_line"  # line of the record within its raw page
ROW = "_apisync_row"  # row number within the window (parent rows), unique across its parts
ERRORS = "_apisync_errors"  # coercion messages; a row with any is quarantined
PARENT_ROW = "_apisync_parent_row"  # on child rows: the ROW of their parent
INTERNAL_COLUMNS = (PAGE, LINE, ROW, ERRORS, PARENT_ROW)
POSITION = "_position"  # on child rows: the element's index in its parent's array (stored)
