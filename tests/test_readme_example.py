"""The README's "Add a sync" example, run exactly as written against the sandbox.

If the README drifts from the code (a renamed argument, a spec field that no longer validates),
this fails: the newcomer's first sync must work.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = re.compile(r"<!-- readme-example: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)\n```", re.DOTALL)

pytestmark = pytest.mark.slow


def readme_examples() -> dict[str, str]:
    return {m["path"]: m["body"] + "\n" for m in EXAMPLE.finditer((REPO_ROOT / "README.md").read_text())}


def test_readme_has_the_three_files_of_a_sync() -> None:
    assert set(readme_examples()) == {
        "include/streams/tickets.yaml",
        "include/expectations/tickets.json",
        "dags/tickets_to_warehouse.py",
    }


def test_readme_example_syncs_tickets_from_the_sandbox(
    airflow_db: Path, sandbox: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow import settings
    from airflow.configuration import conf

    include = tmp_path / "include"
    shutil.copytree(REPO_ROOT / "include", include)
    dags = tmp_path / "dags"
    dags.mkdir()
    for path, body in readme_examples().items():
        target = (
            (include / path.removeprefix("include/"))
            if path.startswith("include/")
            else dags / Path(path).name
        )
        target.write_text(body)
    monkeypatch.setenv("APISYNC_INCLUDE_DIR", str(include))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
    conf.set("core", "dags_folder", str(dags))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(dags))

    box = sandbox(records=2000, ratelimit_headers="github")
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRACKER_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": box.url,
                "password": box.api_key,
                "extra": {"auth": {"type": "api_key", "header": "X-API-Key"}},
            }
        ),
    )
    warehouse = tmp_path / "warehouse.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
    )
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")

    from airflow.dag_processing.dagbag import DagBag

    from scripts.localstack import run_dag_once

    bag = DagBag(dag_folder=str(dags))
    assert bag.import_errors == {}
    run = run_dag_once(bag.dags["tickets_to_warehouse"], datetime(2026, 1, 3, 12, tzinfo=UTC))
    assert str(run.state) == "success"

    truth = box.truth("issues", updated_gte="2026-01-03T11:00:00Z", updated_lt="2026-01-03T12:00:00Z")
    engine = sa.create_engine(f"sqlite:///{warehouse}")
    with engine.connect() as conn:
        loaded = {row[0]: row[1] for row in conn.execute(sa.text("SELECT id, state FROM tickets"))}
    engine.dispose()
    assert truth and loaded == {record["id"]: record["state"] for record in truth}
