"""DDL of the bookkeeping tables for DBAs and migrations: load's ``sync_runs`` and ``apisync_columns``
and quality's ``quarantine``, checked in as include/sql/bookkeeping.<dialect>.sql (here, because
only the pipeline may import both packages)."""

from __future__ import annotations

__all__ = ["bookkeeping_ddl"]


def bookkeeping_ddl(dialect_name: str) -> str:
    """DDL of the bookkeeping tables, as checked in under include/sql/bookkeeping.<dialect>.sql."""
    from sqlalchemy.dialects import registry
    from sqlalchemy.schema import CreateIndex, CreateTable

    from apisync.load.audit import sync_runs_table
    from apisync.load.column_map import column_map_table
    from apisync.quality.quarantine import quarantine_table

    dialect = registry.load(dialect_name)()
    parts = [
        "-- Bookkeeping tables of the data path (generated from"
        " apisync.pipeline.bookkeeping.bookkeeping_ddl;\n"
        "-- the pipeline creates them itself when missing; kept here for DBAs and migrations).\n"
    ]
    for table in (sync_runs_table(), quarantine_table(), column_map_table()):
        parts.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";\n")
        parts.extend(
            str(CreateIndex(index).compile(dialect=dialect)).strip() + ";\n" for index in table.indexes
        )
    return "\n".join(parts)
