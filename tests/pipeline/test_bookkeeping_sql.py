"""The checked-in DDL under include/sql/ is what the code creates (regenerate with bookkeeping_ddl)."""

from __future__ import annotations

import pytest

from apisync.pipeline.bookkeeping import bookkeeping_ddl
from apisync.spec import include_dir


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_checked_in_ddl_matches_code(dialect: str) -> None:
    path = include_dir() / "sql" / f"bookkeeping.{dialect}.sql"
    assert path.read_text() == bookkeeping_ddl(dialect), f"stale {path}: regenerate it with bookkeeping_ddl()"
