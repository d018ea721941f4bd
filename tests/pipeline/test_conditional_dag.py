"""Conditional requests inside real DAG runs (dag.test): a rerun of a window asks with the validators
the first run staged, and its ``sync_runs`` row counts the 304s (carried through the tasks' XComs)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.pipeline.test_sync_stream_dag import _connect, _dag

pytestmark = pytest.mark.slow

REPO_INCLUDE = Path(__file__).resolve().parents[2] / "include"


def test_a_rerun_of_a_window_counts_its_304s_in_sync_runs(
    airflow_db: Path, sandbox: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    include = tmp_path / "include"
    shutil.copytree(REPO_INCLUDE, include)
    orders = include / "streams" / "orders.yaml"
    orders.write_text(orders.read_text().replace("source:\n", "source:\n  conditional_requests: true\n", 1))
    monkeypatch.setenv("APISYNC_INCLUDE_DIR", str(include))
    box = sandbox(records=3000, max_page_size=100)
    database = _connect(box, tmp_path, monkeypatch)
    dag = _dag(tmp_path, monkeypatch)

    first = dag.test(logical_date=datetime(2026, 1, 3, tzinfo=UTC))
    assert first.state == "success"
    rerun = dag.test(
        logical_date=datetime(2026, 1, 3, 12, tzinfo=UTC),
        run_conf={"window_start": "2026-01-02T00:00:00Z", "window_end": "2026-01-03T00:00:00Z"},
    )
    assert rerun.state == "success"
    truth = box.truth("orders", updated_gte="2026-01-02T00:00:00Z", updated_lt="2026-01-03T00:00:00Z")
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        runs = conn.execute(
            sa.text(
                "SELECT api_calls, api_not_modified, status_counts, records_inserted, records_unchanged"
                " FROM sync_runs ORDER BY id"
            )
        ).all()
    engine.dispose()
    pages = -(-len(truth) // 100)
    assert pages >= 4
    assert runs[0][:2] == (pages, 0) and runs[0][3] == len(truth)
    assert runs[1] == (pages, pages - 1, f'{{"200": 1, "304": {pages - 1}}}', 0, len(truth))
