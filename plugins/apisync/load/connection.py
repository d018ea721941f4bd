"""Warehouse engine from an Airflow connection: credentials stay in Connections.

conn_type ``postgres`` -> ``postgresql+psycopg2://``; ``sqlite`` -> the file in ``host``; any
connection may instead carry a SQLAlchemy URL in extras (``{"sqlalchemy_url": "..."}``) and a
target schema (``{"schema": "analytics"}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from apisync.errors import WarehouseConfigError

__all__ = ["DEFAULT_WAREHOUSE_CONN_ID", "Warehouse", "warehouse_from_connection", "warehouse_url"]

DEFAULT_WAREHOUSE_CONN_ID = "warehouse_default"


@dataclass(frozen=True)
class Warehouse:
    engine: sa.Engine
    db_schema: str | None


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
    engine = sa.create_engine(warehouse_url(conn), pool_pre_ping=True)
    return Warehouse(engine=engine, db_schema=extra.get("schema"))
