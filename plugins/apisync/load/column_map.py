"""The bookkeeping table ``apisync_columns``: the source-key -> column mapping kept with each table.

One row per (destination table, source path): the column the key was first given and the run that
gave it. The pipeline reads it before normalizing (so a later run names the same keys the same
way) and writes a run's new entries in the load's transaction. The primary key (one column per
key) and the unique (table, column) constraint (one key per column) make a concurrent run that
named a key differently fail loudly instead of mixing two keys in one column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import NoReturn

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from apisync.errors import ColumnMapConflictError
from apisync.naming import SourcePath
from apisync.spec import StreamSpec
from apisync.staging.column_map import decode_path, stream_tables
from apisync.staging.tables import ensure_table_columns

__all__ = ["COLUMN_MAP_TABLE", "column_map_table", "column_map_writer", "read_column_maps"]

COLUMN_MAP_TABLE = "apisync_columns"


def column_map_table(db_schema: str | None = None) -> sa.Table:
    return sa.Table(
        COLUMN_MAP_TABLE,
        sa.MetaData(schema=db_schema),
        sa.Column("destination_table", sa.Text(), primary_key=True),  # schema.table, as loaded
        sa.Column("source_path", sa.Text(), primary_key=True),  # JSON array of keys: ["meta","tag"]
        sa.Column("column_name", sa.Text(), nullable=False),
        sa.Column("first_seen_run", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("destination_table", "column_name", name="uq_apisync_columns_column"),
    )


def _qualified(spec: StreamSpec, db_schema: str | None) -> dict[str, str]:
    """Destination table name -> its name in ``apisync_columns`` (with the schema load writes to)."""
    schema = spec.destination.db_schema or db_schema
    return {table: f"{schema}.{table}" if schema else table for table in stream_tables(spec)}


def read_column_maps(
    engine: sa.Engine, spec: StreamSpec, db_schema: str | None = None
) -> dict[str, dict[SourcePath, str]]:
    """The stored mapping of each of the stream's tables (none yet: empty), keyed by table name.

    ``db_schema``: the connection's schema, where the bookkeeping tables live (as ``sync_runs``).
    """
    names = _qualified(spec, db_schema)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(COLUMN_MAP_TABLE, schema=db_schema):
            return {}
        stored = column_map_table(db_schema)
        rows = conn.execute(
            sa.select(stored.c.destination_table, stored.c.source_path, stored.c.column_name).where(
                stored.c.destination_table.in_(list(names.values()))
            )
        )
        by_name = {qualified: table for table, qualified in names.items()}
        maps: dict[str, dict[SourcePath, str]] = {}
        for qualified, path, column in rows:
            maps.setdefault(by_name[qualified], {})[decode_path(path)] = column
    return maps


def column_map_writer(
    spec: StreamSpec,
    entries: Mapping[str, Mapping[str, str]],
    *,
    run_id: str,
    db_schema: str | None = None,
) -> Callable[[sa.Connection], None]:
    """A callable that stores ``entries`` (table -> encoded path -> column, as normalize added them)
    on the load's connection, and raises :class:`~apisync.errors.ColumnMapConflictError` when the
    table already maps one of those keys, or one of those columns, otherwise (a concurrent run)."""
    names = _qualified(spec, db_schema)

    def write(conn: sa.Connection) -> None:
        if not any(entries.values()):
            return
        stored = column_map_table(db_schema)
        ensure_table_columns(conn, stored)  # race-safe first create, as sync_runs
        added = [
            (names[table], path, column)
            for table, table_entries in entries.items()
            for path, column in table_entries.items()
        ]
        recorded_at = datetime.now(UTC)
        insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(  # a key or column stored meanwhile is skipped here, and reported below
            insert(stored).on_conflict_do_nothing(),
            [
                {
                    "destination_table": table,
                    "source_path": path,
                    "column_name": column,
                    "first_seen_run": run_id,
                    "recorded_at": recorded_at,
                }
                for table, path, column in added
            ],
        )
        found = conn.execute(
            sa.select(
                stored.c.destination_table,
                stored.c.source_path,
                stored.c.column_name,
                stored.c.first_seen_run,
            ).where(stored.c.destination_table.in_([names[table] for table in entries]))
        ).all()
        by_path = {(t, p): (c, run) for t, p, c, run in found}
        by_column = {(t, c): (p, run) for t, p, c, run in found}
        for table, path, column in added:
            stored_column, by_run = by_path.get((table, path), (column, run_id))  # absent: lost on the column
            if stored_column != column:
                _conflict(
                    spec,
                    table,
                    f"named source key {path} {column!r}, but run {by_run} stored {stored_column!r}",
                )
            stored_path, by_run = by_column[(table, column)]
            if stored_path != path:
                _conflict(
                    spec,
                    table,
                    f"gave column {column!r} to source key {path}, but run {by_run} stored {stored_path}",
                )

    return write


def _conflict(spec: StreamSpec, table: str, what: str) -> NoReturn:
    raise ColumnMapConflictError(
        f"stream {spec.name}, table {table}: this run {what} in {COLUMN_MAP_TABLE} meanwhile (a "
        "concurrent run saw the key first); nothing was loaded: normalize the window again (re-run it "
        "from its normalize step) so it names its columns by the stored mapping"
    )
