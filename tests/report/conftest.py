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

    def create_older_sync_runs(self) -> None:
        """``sync_runs`` as a release before the metrics columns made it (what readers must still read)."""
        prefix = f'"{self.db_schema}".' if self.db_schema else ""
        key = "INTEGER PRIMARY KEY" if self.engine.dialect.name == "sqlite" else "BIGSERIAL PRIMARY KEY"
        moment = "TIMESTAMP" if self.engine.dialect.name == "sqlite" else "TIMESTAMPTZ"
        counts = ", ".join(
            f"{name} BIGINT"
            for name in (
                "records_pulled",
                "records_inserted",
                "records_updated",
                "records_unchanged",
                "records_quarantined",
                "api_calls",
                "api_429s",
            )
        )
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"CREATE TABLE {prefix}sync_runs (id {key}, stream TEXT NOT NULL, interval_start"
                    f" {moment} NOT NULL, interval_end {moment} NOT NULL, run_id TEXT NOT NULL,"
                    f" status TEXT NOT NULL, {counts}, throttled_seconds FLOAT, duration_seconds FLOAT,"
                    f" error TEXT, recorded_at {moment} NOT NULL)"
                )
            )

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
