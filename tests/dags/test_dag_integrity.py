"""Every DAG file parses cleanly, states its contract, and stays cheap to parse."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p for p in (REPO_ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
HEAVY_MODULES = ("pandas", "numpy", "pyarrow", "great_expectations", "psycopg2", "psycopg", "redis")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


def test_there_are_dag_files() -> None:
    assert DAG_FILES, "dags/ holds no DAG files"


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}, "\n".join(f"{k}: {v}" for k, v in dagbag.import_errors.items())
    assert len(dagbag.dags) >= len(DAG_FILES)


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_contract(dag_file: Path, dagbag) -> None:
    from airflow.sdk import CronDataIntervalTimetable, DeltaDataIntervalTimetable
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable

    from apisync.alerts import FailureAlert
    from apisync.schedule import EndingCronDataIntervalTimetable

    dags = [d for d in dagbag.dags.values() if Path(d.fileloc) == dag_file]
    assert dags, f"{dag_file.name} defines no DAG"
    for dag in dags:
        where = f"{dag_file.name}:{dag.dag_id}"
        assert dag.tags, f"{where}: no tags"
        assert dag.doc_md, f"{where}: no doc_md (use the module docstring)"
        assert dag.max_active_runs is not None, where
        timetable = dag.timetable
        assert isinstance(
            timetable,
            CronDataIntervalTimetable
            | DeltaDataIntervalTimetable
            | AssetTriggeredTimetable
            | EndingCronDataIntervalTimetable,
        ), f"{where}: schedule {timetable!r} gives no real data intervals"
        for t in dag.tasks:
            tid = f"{where}.{t.task_id}"
            assert t.owner and t.owner != "airflow", f"{tid}: set an owner"
            assert t.retries >= 2, f"{tid}: retries={t.retries}"
            assert t.retry_exponential_backoff, f"{tid}: no exponential backoff"
            callbacks = t.on_failure_callback or []
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert any(isinstance(c, FailureAlert) for c in callbacks), f"{tid}: failure alerts not wired"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_catchup_and_max_active_runs_are_explicit(dag_file: Path) -> None:
    """Defaults differ between Airflow versions and deployments: say them in the file."""
    keywords = {
        kw.arg
        for node in ast.walk(ast.parse(dag_file.read_text()))
        if isinstance(node, ast.Call)
        for kw in node.keywords
    }
    assert {"catchup", "max_active_runs"} <= keywords, f"{dag_file.name} must set catchup and max_active_runs"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_nothing_heavy(dag_file: Path) -> None:
    """Parsing runs often in the dag-processor: pandas, GX or DB drivers at top level slow it down."""
    probe = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('probe_dag', {str(dag_file)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'plugins'}:{REPO_ROOT}"},
    )
    heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == [], f"{dag_file.name} imports {heavy} at parse time"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_serializes(dag_file: Path, dagbag) -> None:
    """The scheduler and dag.test() work on the serialized DAG: a DAG that cannot serialize never runs."""
    from airflow.serialization.serialized_objects import DagSerialization

    for dag in (d for d in dagbag.dags.values() if Path(d.fileloc) == dag_file):
        restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        assert set(restored.task_dict) == set(dag.task_dict)
