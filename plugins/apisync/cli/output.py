"""What the commands print: plain-text tables (rich, which Airflow's own CLI uses) and errors.

Tables go to stdout without colour or borders when it is not a terminal, so a pipe to ``grep`` or
a test sees one line per row; problems go to stderr, redacted.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from apisync.redaction import redact

__all__ = ["MISSING", "print_error", "print_table"]

MISSING = "—"  # a value a row does not have (an older warehouse's column, a NULL)
WIDE = 400  # columns when stdout is no terminal: rows stay on one line (status has 18 columns)


def _console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = shutil.get_terminal_size((WIDE, 24)).columns if stream.isatty() else WIDE
    return Console(file=stream, width=width, highlight=False, soft_wrap=True)


def print_table(title: str | None, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """One table (``title`` above it, none for ``None``); ``None`` cells print as :data:`MISSING`."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(MISSING if cell is None else str(cell) for cell in row))
    _console().print(table)


def print_error(message: str) -> None:
    _console(stderr=True).print(f"apisync: {redact(message)}", markup=False)
