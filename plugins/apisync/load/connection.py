"""Warehouse engine from an Airflow connection: credentials stay in Connections.

conn_type ``postgres`` -> ``postgresql+psycopg2://``; ``sqlite`` -> the file in ``host``; any
connection may instead carry a SQLAlchemy URL in extras (``{"sqlalchemy_url": "..."}``) and a
target schema (``{"schema": "analytics"}``).

A schema that does not exist fails the task on its first try, naming the schema
(:class:`~apisync.errors.WarehouseSchemaError`, a ConfigError the retry policy does not retry),
unless the extras say ``"create_schema": true``: then apisync creates it (``CREATE SCHEMA IF NOT
EXISTS``). Tables are created as needed either way, but a schema is not made silently: it usually
carries grants and an owner a person set up, and a typo in its name would otherwise put the data
where nobody looks. SQLite has no schemas to create (only attached database files).

A SQLite warehouse waits up to :data:`SQLITE_BUSY_TIMEOUT_S` for another writer (mapped slices
load into one file at once) instead of pysqlite's 5 s, after which it said "database is locked".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from apisync.errors import WarehouseConfigError, WarehouseSchemaError

__all__ = [
    "DEFAULT_WAREHOUSE_CONN_ID",
    "SQLITE_BUSY_TIMEOUT_S",
    "Warehouse",
    "ensure_schema",
    "warehouse_from_connection",
    "warehouse_url",
]

SQLITE_BUSY_TIMEOUT_S = 120.0  # a neighbouring slice's load of a big window, on a busy machine

DEFAULT_WAREHOUSE_CONN_ID = "warehouse_default"


@dataclass(frozen=True)
class Warehouse:
    engine: sa.Engine
    db_schema: str | None
    conn_id: str = DEFAULT_WAREHOUSE_CONN_ID
    create_schema: bool = False

    def ensure_schema(self, name: str | None) -> None:
        """Make sure schema ``name`` (e.g. a stream's ``destination.schema``) is there; see the module."""
        ensure_schema(self.engine, name, create=self.create_schema, conn_id=self.conn_id)


def ensure_schema(engine: sa.Engine, name: str | None, *, create: bool, conn_id: str) -> None:
    """Raise :class:`~apisync.errors.WarehouseSchemaError` naming schema ``name`` when it does not
    exist, or create it when ``create``; ``None`` (the default schema) is always there."""
    if not name:
        return
    with engine.connect() as conn:
        if sa.inspect(conn).has_schema(name):
            return
    where = f"connection {conn_id}: schema {name!r} does not exist"
    if engine.dialect.name == "sqlite":
        raise WarehouseSchemaError(
            f"{where}: SQLite has no schemas, only attached database files; leave out the schema "
            "(the connection's extra \"schema\", the stream's destination.schema)"
        )
    if not create:
        quoted = engine.dialect.identifier_preparer.quote_identifier(name)
        raise WarehouseSchemaError(
            f"{where} in the warehouse; create it (CREATE SCHEMA {quoted}) or set "
            f'"create_schema": true in the connection\'s extras to let apisync create it'
        )
    try:
        with engine.begin() as conn:
            conn.execute(sa.schema.CreateSchema(name, if_not_exists=True))
    except sa.exc.DBAPIError as exc:
        raise WarehouseSchemaError(f"{where} and could not be created: {exc.orig}") from exc


def warehouse_url(conn: Any) -> sa.URL | str:
    """SQLAlchemy URL for an Airflow Connection-like object (conn_type, host, login, ...)."""
    extra = conn.extra_dejson or {}
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    conn_type = (conn.conn_type or "").lower()
    if conn_type in ("postgres", "postgresql"):
        return sa.URL.create(
            "postgresql+psycopg2",
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or "127.0.0.1",
            port=conn.port or None,
            database=conn.schema or None,
        )
    if conn_type == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise WarehouseConfigError(
                f"connection {conn.conn_id}: sqlite needs the database file path in host"
            )
        return f"sqlite:///{path}"
    raise WarehouseConfigError(
        f"connection {conn.conn_id}: conn_type {conn.conn_type!r} is not a supported warehouse "
        "(use postgres or sqlite, or put a sqlalchemy_url in the extras)"
    )


def warehouse_from_connection(conn_id: str = DEFAULT_WAREHOUSE_CONN_ID) -> Warehouse:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson or {}
    create_schema = extra.get("create_schema", False)
    if not isinstance(create_schema, bool):
        raise WarehouseConfigError(
            f"connection {conn_id}: extra create_schema must be true or false, got {create_schema!r}"
        )
    url = sa.make_url(warehouse_url(conn))
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S} if url.get_backend_name() == "sqlite" else {}
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    warehouse = Warehouse(
        engine=engine, db_schema=extra.get("schema"), conn_id=conn_id, create_schema=create_schema
    )
    try:
        warehouse.ensure_schema(warehouse.db_schema)
    except WarehouseSchemaError:
        engine.dispose()
        raise
    return warehouse
