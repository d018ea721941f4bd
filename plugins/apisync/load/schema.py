"""Tables from logical column types, and additive schema evolution.

A new source field adds a nullable column; a type change the existing column cannot hold is an
error naming table, column and both types. Identifiers come sanitized from normalize and are
quoted again by SQLAlchemy, so a hostile payload key cannot reach SQL as syntax.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from apisync.errors import SchemaEvolutionError, TooManyColumnsError
from apisync.staging.logical_types import sql_type
from apisync.staging.tables import table_exists_or_lock

__all__ = ["add_keys", "create_table", "ensure_table", "evolve_table", "logical_family"]

MAX_TABLE_COLUMNS = 1600  # PostgreSQL's hard limit


def logical_family(column_type: sa.types.TypeEngine[Any]) -> str:
    """Family of a reflected column type, to compare with the data's logical type."""
    if isinstance(column_type, postgresql.JSONB | sa.JSON):
        return "json"
    if isinstance(column_type, sa.Boolean):
        return "boolean"
    if isinstance(column_type, sa.Integer):
        return "integer"
    if isinstance(column_type, sa.Float):
        return "float"
    if isinstance(column_type, sa.Numeric):
        return "decimal"
    if isinstance(column_type, sa.DateTime):
        return "timestamp"
    if isinstance(column_type, sa.String):
        return "string"
    return type(column_type).__name__.lower()


def _compatible(existing: str, kind: str) -> bool:
    kind = kind.split(":", 1)[0]
    if existing == kind:
        return True
    return (existing, kind) in {("float", "integer"), ("decimal", "integer"), ("string", "json")}


def create_table(
    conn: sa.Connection,
    name: str,
    columns: dict[str, str],
    *,
    primary_key: list[str] | None,
    db_schema: str | None,
    max_columns: int = MAX_TABLE_COLUMNS,
    indexes: list[str] | None = None,
    keys_later: bool = False,
) -> sa.Table:
    """Create the table; return it reflected.

    ``keys_later``: leave out the primary-key constraint and the indexes (the key columns are
    NOT NULL all the same) for :func:`add_keys` to build once the first load is in: one sorted
    index build instead of a b-tree insert per row, several times faster for a large first load.
    Only for a table created in the loading transaction, which nobody else can see until commit.
    """
    if len(columns) > max_columns:
        raise TooManyColumnsError(
            f"table {name}: {len(columns)} columns, more than the maximum {max_columns}"
        )
    metadata = sa.MetaData(schema=db_schema)
    table = sa.Table(
        name,
        metadata,
        *(
            sa.Column(column, sql_type(kind), nullable=column not in (primary_key or []), quote=True)
            for column, kind in columns.items()
        ),
    )
    if not keys_later:
        if primary_key:
            table.append_constraint(sa.PrimaryKeyConstraint(*primary_key, name=_primary_key_name(name)))
        for column in indexes or []:
            sa.Index(_index_name(name, column), table.c[column])
    metadata.create_all(conn)
    return sa.Table(name, sa.MetaData(schema=db_schema), autoload_with=conn)


def add_keys(
    conn: sa.Connection, table: sa.Table, *, primary_key: list[str] | None, indexes: list[str] | None = None
) -> None:
    """Build the primary key and indexes :func:`create_table` left out (same names as it gives them)."""
    preparer = conn.dialect.identifier_preparer
    qualified = preparer.format_table(table)
    if primary_key:
        key_sql = ", ".join(preparer.quote_identifier(column) for column in primary_key)
        constraint = preparer.quote_identifier(_primary_key_name(table.name))
        conn.execute(sa.text(f"ALTER TABLE {qualified} ADD CONSTRAINT {constraint} PRIMARY KEY ({key_sql})"))
    for column in indexes or []:
        index = preparer.quote_identifier(_index_name(table.name, column))
        conn.execute(sa.text(f"CREATE INDEX {index} ON {qualified} ({preparer.quote_identifier(column)})"))


def _primary_key_name(table: str) -> str:
    return f"{table}_pkey"[:63]


def _index_name(table: str, column: str) -> str:
    return f"ix_{table}_{column}"[:63]


def ensure_table(
    conn: sa.Connection,
    name: str,
    columns: dict[str, str],
    *,
    primary_key: list[str] | None,
    db_schema: str | None,
    max_columns: int = MAX_TABLE_COLUMNS,
    indexes: list[str] | None = None,
) -> sa.Table:
    """Create the table, or add the data's new columns to it; return the reflected table."""
    if not table_exists_or_lock(conn, name, db_schema):
        return create_table(
            conn,
            name,
            columns,
            primary_key=primary_key,
            db_schema=db_schema,
            max_columns=max_columns,
            indexes=indexes,
        )
    return evolve_table(conn, name, columns, db_schema=db_schema, max_columns=max_columns)


def evolve_table(
    conn: sa.Connection,
    name: str,
    columns: dict[str, str],
    *,
    db_schema: str | None,
    max_columns: int = MAX_TABLE_COLUMNS,
) -> sa.Table:
    """Add the data's new columns to an existing table (its keys stay as they are); return it reflected."""
    table = sa.Table(name, sa.MetaData(schema=db_schema), autoload_with=conn)
    missing = {column: kind for column, kind in columns.items() if column not in table.c}
    for column, kind in columns.items():
        if column in table.c and not _compatible(logical_family(table.c[column].type), kind):
            raise SchemaEvolutionError(
                f"table {name}: column {column!r} is {table.c[column].type} "
                f"({logical_family(table.c[column].type)}) in the warehouse but the stream now delivers "
                f"{kind}; migrate the column or pin the field's type in the stream spec"
            )
    if len(table.c) + len(missing) > max_columns:
        raise TooManyColumnsError(
            f"table {name}: adding {len(missing)} columns ({sorted(missing)[:10]}...) would exceed the "
            f"maximum of {max_columns}"
        )
    if missing:
        preparer = conn.dialect.identifier_preparer
        qualified = preparer.format_table(table)
        for column, kind in missing.items():
            type_sql = sql_type(kind).compile(dialect=conn.dialect)
            conn.execute(
                sa.text(f"ALTER TABLE {qualified} ADD COLUMN {preparer.quote_identifier(column)} {type_sql}")
            )
        table = sa.Table(name, sa.MetaData(schema=db_schema), autoload_with=conn)
    return table
