"""The bookkeeping tables as the warehouse has them now (reflected, not as this release defines them).

A reader must work on a warehouse an older release wrote: a column added since is simply absent
there, and :func:`optional` reads it as NULL instead of failing the query.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["optional", "reflected_table"]


def reflected_table(engine: sa.Engine, name: str, db_schema: str | None) -> sa.Table | None:
    """The table ``name`` as it is in the warehouse, or ``None`` when no run created it yet."""
    if not sa.inspect(engine).has_table(name, schema=db_schema):
        return None
    return sa.Table(name, sa.MetaData(schema=db_schema), autoload_with=engine)


def optional(table: sa.Table, column: str, type_: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
    """``table.<column>``, or a typed NULL labelled ``column`` when the table lacks it."""
    if column in table.c:
        return table.c[column].label(column)
    return sa.null().cast(type_).label(column)
