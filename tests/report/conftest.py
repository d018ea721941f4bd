"""The report's warehouse, on both backends a warehouse can be: SQLite and real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa


@dataclass(frozen=True)
class ReportWarehouse:
    engine: sa.Engine
    db_schema: str | None

    def add_columns(self, table: str, columns: dict[str, str]) -> None:
        """What the metrics release's migration does to an existing table: ALTER TABLE ADD COLUMN."""
        prefix = f'"{self.db_schema}".' if self.db_schema else ""
        with self.engine.begin() as conn:
            for name, type_ in columns.items():
                conn.execute(sa.text(f'ALTER TABLE {prefix}"{table}" ADD COLUMN "{name}" {type_}'))


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse(request: pytest.FixtureRequest, tmp_path) -> Iterator[ReportWarehouse]:
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
        yield ReportWarehouse(engine, None)
    else:
        schema = request.getfixturevalue("pg_schema")
        engine = sa.create_engine(request.getfixturevalue("postgres_url"))
        yield ReportWarehouse(engine, schema)
    engine.dispose()
