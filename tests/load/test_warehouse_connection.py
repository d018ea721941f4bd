"""Warehouse engines come from Airflow connections; credentials never live in code."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from airflow.sdk import Connection

from apisync.load import WarehouseConfigError, warehouse_from_connection, warehouse_url


def test_postgres_connection_becomes_psycopg2_url() -> None:
    conn = Connection(
        conn_id="wh",
        conn_type="postgres",
        host="db.internal",
        login="loader",
        password="s3cr@t",
        port=5433,
        schema="dw",
    )
    url = sa.make_url(warehouse_url(conn))
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+psycopg2",
        "db.internal",
        5433,
        "dw",
    )
    assert (url.username, url.password) == ("loader", "s3cr@t")


def test_sqlite_and_explicit_url() -> None:
    assert (
        warehouse_url(Connection(conn_id="wh", conn_type="sqlite", host="/data/wh.db"))
        == "sqlite:////data/wh.db"
    )
    explicit = Connection(
        conn_id="wh", conn_type="generic", extra=json.dumps({"sqlalchemy_url": "sqlite://"})
    )
    assert warehouse_url(explicit) == "sqlite://"
    with pytest.raises(WarehouseConfigError, match="conn_type 'mysql' is not a supported warehouse"):
        warehouse_url(Connection(conn_id="wh", conn_type="mysql", host="x"))


def test_warehouse_from_connection_env(
    postgres_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sa.make_url(postgres_url)
    conn = {
        "conn_type": "postgres",
        "host": url.host,
        "port": url.port,
        "login": url.username,
        "schema": url.database,
        "extra": {"schema": pg_schema},
    }
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps(conn))
    warehouse = warehouse_from_connection()
    assert warehouse.db_schema == pg_schema
    with warehouse.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT 1")).scalar() == 1
    warehouse.engine.dispose()
