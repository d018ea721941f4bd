"""Creating the warehouse tables every stage writes, safely when runs race, and upgrading them.

Two runs that create the same new table at once would both pass the "does it exist?" check; on
PostgreSQL the second CREATE then fails on ``pg_type_typname_nsp_index`` (or "already exists").
:func:`table_exists_or_lock` closes that gap with a transaction-scoped advisory lock on the table's
name, taken only when the table is missing: the second creator waits for the first to commit, then
finds the table. :func:`ensure_table_columns` does that for the bookkeeping tables (``sync_runs``,
``quarantine``, CRM push state) and adds the nullable columns a table of an older release lacks.
Here, because load, quality and crm all create such tables and import none of each other.
"""

from __future__ import annotations

import hashlib
import threading
import weakref

import sqlalchemy as sa

from apisync.errors import SchemaEvolutionError

__all__ = ["ensure_table_columns", "lock_table_creation", "table_exists_or_lock"]

# Per engine, the (schema, table) pairs found complete: not inspected again for every row written.
_complete: weakref.WeakKeyDictionary[sa.Engine, set[tuple[str | None, str]]] = weakref.WeakKeyDictionary()
_complete_guard = threading.Lock()


def lock_table_creation(conn: sa.Connection, name: str, db_schema: str | None) -> None:
    """PostgreSQL: wait for, then hold until this transaction ends, the lock on creating ``name``."""
    if conn.dialect.name != "postgresql":
        return  # SQLite has one writer at a time
    digest = hashlib.blake2b(f"apisync.create:{db_schema or ''}.{name}".encode(), digest_size=8).digest()
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest, "big", signed=True)}
    )


def table_exists_or_lock(conn: sa.Connection, name: str, db_schema: str | None) -> bool:
    """True when the table exists; otherwise take the creation lock and look again (a concurrent
    creator has committed by the time the lock is ours). False: create it, the lock is held."""
    if sa.inspect(conn).has_table(name, schema=db_schema):
        return True
    lock_table_creation(conn, name, db_schema)
    return sa.inspect(conn).has_table(name, schema=db_schema)


def _missing_columns(conn: sa.Connection, table: sa.Table) -> list[sa.Column[object]] | None:
    """The columns of ``table`` the database's table lacks; None when there is no such table."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name, schema=table.schema):
        return None
    present = {column["name"] for column in inspector.get_columns(table.name, schema=table.schema)}
    return [column for column in table.columns if column.name not in present]


def ensure_table_columns(conn: sa.Connection, table: sa.Table) -> None:
    """Create ``table`` when missing, or add the columns it gained since the database's copy was
    created (ALTER TABLE ... ADD COLUMN, nullable); in the caller's transaction.

    A table found complete is remembered per engine; one this transaction created or altered is
    not (the transaction may still roll back), so the next use looks again.
    """
    key = (table.schema, table.name)
    with _complete_guard:
        if key in _complete.get(conn.engine, ()):
            return
    missing = _missing_columns(conn, table)
    if missing is not None and not missing:
        with _complete_guard:
            _complete.setdefault(conn.engine, set()).add(key)
        return
    lock_table_creation(conn, table.name, table.schema)
    missing = _missing_columns(conn, table)  # another run may have done it while we waited
    if missing is None:
        table.create(conn)
        return
    preparer = conn.dialect.identifier_preparer
    for column in missing:
        if not column.nullable:
            raise SchemaEvolutionError(
                f"table {preparer.format_table(table)} lacks the NOT NULL column {column.name!r}"
                " (created by an older apisync?): add it by hand with a default for the existing rows"
            )
        conn.execute(
            sa.text(
                f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN"
                f" {preparer.format_column(column)} {column.type.compile(dialect=conn.dialect)}"
            )
        )
