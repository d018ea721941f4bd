"""Shared fixtures: an isolated Airflow home, real services, and the sandbox APIs.

Services come from env vars with loopback defaults. In CI (CI=true) a missing service fails the
test; on a laptop it skips with a reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_AIRFLOW_HOME = REPO_ROOT / ".airflow-test"

# Airflow reads its config at import time: isolate it before any test imports airflow.
for _name in list(os.environ):
    if _name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__")):
        del os.environ[_name]
os.environ["AIRFLOW_HOME"] = str(TEST_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{TEST_AIRFLOW_HOME}/airflow.db"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
TEST_AIRFLOW_HOME.mkdir(exist_ok=True)

POSTGRES_URL = os.environ.get(
    "APISYNC_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("APISYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), 2):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> None:
    """Fail in CI, skip on a laptop, when a service the test needs is not there."""
    if _reachable(url, default_port):
        return
    message = f"{name} not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services are required, not optional)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    return POSTGRES_URL


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema per test, dropped afterwards, so parallel runs never collide."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    require_service("Redis", REDIS_URL, 6379)
    return REDIS_URL


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB (SQLite) for dag.test() and DagBag-level tests."""
    marker = TEST_AIRFLOW_HOME / ".migrated"
    if not marker.exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            env=os.environ.copy(),
            capture_output=True,
        )
        marker.touch()
    return TEST_AIRFLOW_HOME


@pytest.fixture
def sandbox() -> Iterator[Callable[..., object]]:
    """Factory: ``sandbox(**config)`` starts a sandbox server process on a free port.

    Returns the handle from ``sandbox.testing.run_sandbox`` (``.url``, ``.truth(...)``,
    ``.stats()``, ...). Every server started is stopped at teardown.
    """
    from sandbox.testing import run_sandbox

    stack = []

    def start(**config: object) -> object:
        ctx = run_sandbox(**config)
        handle = ctx.__enter__()
        stack.append(ctx)
        return handle

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)
