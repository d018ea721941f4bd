"""Warehouse engines come from Airflow connections; credentials never live in code."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

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


def _postgres_connection(postgres_url: str, extra: dict[str, object]) -> str:
    url = sa.make_url(postgres_url)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": url.host,
            "port": url.port,
            "login": url.username,
            "schema": url.database,
            "extra": extra,
        }
    )


@pytest.fixture
def missing_schema(postgres_url: str) -> Iterator[str]:
    """A schema name nobody created; dropped afterwards in case a test creates it."""
    schema = f"t_missing_{uuid.uuid4().hex[:8]}"
    yield schema
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def _schema_exists(postgres_url: str, schema: str) -> bool:
    engine = sa.create_engine(postgres_url)
    try:
        return sa.inspect(engine).has_schema(schema)
    finally:
        engine.dispose()


def test_case5_e_a_missing_schema_fails_the_first_try_naming_it(
    postgres_url: str, missing_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 case 5e: the load used to fail with PostgreSQL's InvalidSchemaName, which the
    retry policy retried (309 s of backoff) before the alert; now a ConfigError at once."""
    from apisync.errors import WarehouseSchemaError
    from apisync.pipeline.retry_policy import fails_on_every_try

    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT", _postgres_connection(postgres_url, {"schema": missing_schema})
    )
    with pytest.raises(WarehouseSchemaError) as caught:
        warehouse_from_connection()
    message = str(caught.value)
    assert f"schema '{missing_schema}' does not exist" in message
    assert "warehouse_default" in message
    assert '"create_schema": true' in message
    assert fails_on_every_try(caught.value)
    assert not _schema_exists(postgres_url, missing_schema)


def test_case5_e_create_schema_creates_a_missing_schema(
    postgres_url: str, missing_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {"schema": missing_schema, "create_schema": True}
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DEFAULT", _postgres_connection(postgres_url, extra))
    warehouse = warehouse_from_connection()
    assert warehouse.db_schema == missing_schema
    assert _schema_exists(postgres_url, missing_schema)
    warehouse_from_connection().engine.dispose()  # an existing schema is fine the second time
    warehouse.engine.dispose()


def test_case5_e_a_destination_schema_is_checked_the_same_way(
    postgres_url: str, pg_schema: str, missing_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream's ``destination.schema`` overrides the connection's: the load task checks it too."""
    from apisync.errors import WarehouseSchemaError

    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT", _postgres_connection(postgres_url, {"schema": pg_schema})
    )
    warehouse = warehouse_from_connection()
    warehouse.ensure_schema(pg_schema)
    warehouse.ensure_schema(None)
    with pytest.raises(WarehouseSchemaError, match=f"schema '{missing_schema}' does not exist"):
        warehouse.ensure_schema(missing_schema)
    warehouse.engine.dispose()


def test_case5_e_sqlite_has_no_schemas_to_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's only "schemas" are attached database files: a schema extra there is a mistake."""
    from apisync.errors import WarehouseSchemaError

    conn = {
        "conn_type": "sqlite",
        "host": str(tmp_path / "wh.db"),
        "extra": {"schema": "analytics", "create_schema": True},
    }
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps(conn))
    with pytest.raises(WarehouseSchemaError, match="schema 'analytics' does not exist") as caught:
        warehouse_from_connection()
    assert "SQLite" in str(caught.value)


def test_a_sqlite_warehouse_waits_for_a_concurrent_writer_instead_of_failing_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mapped slices load into one SQLite file at once; pysqlite gives up after 5 s with "database
    is locked", so a slice whose neighbour's load took longer failed (seen under ``make run``)."""
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    warehouse = warehouse_from_connection()
    with warehouse.engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE rows (id INTEGER)"))
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another slice's load, mid-transaction
    holder.execute("INSERT INTO rows VALUES (1)")
    released = threading.Timer(7.0, holder.execute, args=("COMMIT",))  # longer than pysqlite's 5 s
    released.start()
    try:
        with warehouse.engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO rows VALUES (2)"))
    finally:
        released.join()
        holder.close()
    with warehouse.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM rows")).scalar() == 2
    warehouse.engine.dispose()
