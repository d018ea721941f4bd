"""Fixtures shared by the data-path test folders: warehouses (SQLite file, PostgreSQL schema)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from apisync.pipeline.runner import WindowRun, run_window
from apisync.spec import StreamSpec
from apisync.staging.layout import RunPaths
from tests.transform.order_records import pages_of

WINDOW = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC))


@dataclass
class Target:
    engine: sa.Engine
    db_schema: str | None

    def table(self, name: str) -> str:
        return f'"{self.db_schema}"."{name}"' if self.db_schema else f'"{name}"'

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def has_table(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return sa.inspect(conn).has_table(name, schema=self.db_schema)

    def checksum(
        self, name: str, order_by: str = "id", exclude: tuple[str, ...] = ()
    ) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            columns = [c["name"] for c in sa.inspect(conn).get_columns(name, schema=self.db_schema)]
        wanted = ", ".join(f'"{c}"' for c in columns if c not in exclude)
        return self.rows(f"SELECT {wanted} FROM {self.table(name)} ORDER BY {order_by}")


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
        yield Target(engine, None)
    else:
        schema = request.getfixturevalue("pg_schema")
        engine = sa.create_engine(request.getfixturevalue("postgres_url"))
        yield Target(engine, schema)
    engine.dispose()


def sync_records(
    spec: StreamSpec,
    records: list[dict[str, Any]],
    target: Target,
    root: Path,
    *,
    run_id: str = "run-1",
    page_size: int = 100,
    window: tuple[datetime, datetime] = WINDOW,
) -> WindowRun:
    """The whole Airflow-free data path over generated pages."""
    return run_window(
        spec,
        pages_of(records, page_size),
        RunPaths(root),
        target.engine,
        window=window,
        run_id=run_id,
        source="test",
        db_schema=target.db_schema,
    )
