"""The preloading LocalExecutor imports what the sync tasks use, and is what the local stack runs.

In a fresh interpreter (a subprocess), so what the test process imported before proves nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts.localstack import REPO_ROOT, airflow_env

PROBE = """
import json, sys
from apisync.pipeline.executor import PreloadingLocalExecutor, preload
before = "great_expectations" in sys.modules
failed = preload()
print(json.dumps({
    "before": before,
    "failed": failed,
    "after": [m for m in ("great_expectations", "pandas", "pyarrow.parquet", "sqlalchemy",
                          "apisync.pipeline.steps", "apisync.quality.validation") if m in sys.modules],
    "is_local": PreloadingLocalExecutor.is_local,
}))
"""


def test_preload_imports_gx_and_the_steps_and_nothing_fails() -> None:
    env = airflow_env(Path("/nonexistent-airflow-home"))
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": env["PYTHONPATH"]},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    found = json.loads(probe.stdout.splitlines()[-1])
    # Importing the executor's module (the scheduler does, to load it) does not import GX.
    assert found["before"] is False
    assert found["failed"] == []
    assert len(found["after"]) == 6, found["after"]
    assert found["is_local"] is True  # `airflow standalone` keeps it (it forces non-local executors)


def test_the_local_stack_runs_the_preloading_executor() -> None:
    executor = airflow_env(Path("/tmp/home"))["AIRFLOW__CORE__EXECUTOR"]
    module, _, name = executor.rpartition(".")
    assert (module, name) == ("apisync.pipeline.executor", "PreloadingLocalExecutor")
