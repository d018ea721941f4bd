"""Fixtures for apisync.http tests: Airflow connections (as env vars) pointing at a sandbox."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

API_KEY_HEADER = {"type": "api_key", "header": "X-API-Key"}


@pytest.fixture
def api_conn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., str]:
    """Factory: ``api_conn(sb, auth=..., password=..., **extras)`` -> a fresh connection id.

    The rate-limit state file lives in this test's tmp_path, so tests never share a budget.
    """

    def make(
        sb: Any,
        *,
        auth: dict[str, Any] | None = None,
        login: str | None = None,
        password: str | None = "sandbox-key",
        conn_id: str | None = None,
        **extras: Any,
    ) -> str:
        conn_id = conn_id or f"api_{uuid.uuid4().hex[:10]}"
        extras.setdefault("auth", auth or API_KEY_HEADER)
        rate_limit = extras.setdefault("rate_limit", {})
        if isinstance(rate_limit, dict) and rate_limit.get("backend", "sqlite") == "sqlite":
            rate_limit.setdefault("path", str(tmp_path / "ratelimit.sqlite"))
        conn: dict[str, Any] = {"conn_type": "http", "host": sb.url, "extra": extras}
        if login is not None:
            conn["login"] = login
        if password is not None:
            conn["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return make


def dag_in_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_name: str, source: str
) -> tuple[Any, Path]:
    """The DAG ``source`` defines (as ``dag``), written to ``file_name`` in a dags folder of its own
    that Airflow is pointed at: dag.test() runs the DAG its bundle serialized, so it needs a file."""
    from airflow import settings
    from airflow.configuration import conf

    dags = tmp_path / "dags"
    dags.mkdir()
    path = dags / file_name
    path.write_text(source)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
    conf.set("core", "dags_folder", str(dags))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(dags))
    namespace: dict[str, Any] = {}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace["dag"], dags


def run_dag_test(dag: Any, dag_folder: Path) -> Any:
    """dag.test() for a DAG built in a test: Airflow 3.3 only runs DAGs already serialized in the DB."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(dag_folder), collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test()
