"""A real Airflow (standalone: scheduler, dag-processor, triggerer, api-server) plus the sandbox APIs.

Everything runs in a throwaway Airflow home on free ports, so it never collides with `make run`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from scripts.localstack import (
    REPO_ROOT,
    admin_password,
    airflow_env,
    bind_env,
    connections_env,
    free_port,
    running_sandboxes,
    stop_process_group,
    wait_for_http,
)


def iso(moment: datetime) -> str:
    """``2026-01-07T03:00:00Z``: how the REST API takes a moment."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = 900) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``.

    A poll that times out (the API server of a loaded 2-core machine can take 30 s to answer) is
    just asked again.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = condition()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")


def logged_in_session(api_url: str, home: Path) -> requests.Session:
    """A session carrying the home's admin JWT from ``POST /auth/token``."""
    token = requests.post(
        f"{api_url}/auth/token", json={"username": "admin", "password": admin_password(home)}, timeout=30
    )
    token.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return session


LOOPBACK = frozenset({"127.0.0.1", "::1"})


def listening_sockets(pids: Iterable[int]) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket of ``pids`` and their descendants."""
    sockets: set[tuple[str, int]] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                connections = process.net_connections(kind="inet")
            except psutil.NoSuchProcess:  # a task process that finished meanwhile
                continue
            sockets |= {(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN}
    return sockets


def assert_listening_on_loopback_only(pids: Iterable[int], servers: dict[str, int]) -> None:
    """Once every one of ``servers`` ({name: port}) listens, no socket of ``pids``' process trees
    listens beyond this machine (issue 13 case 6). Waiting for the named servers first keeps the
    check from passing on a stack that has not opened them yet."""
    pids = list(pids)

    def all_servers_listening() -> set[tuple[str, int]] | None:
        sockets = listening_sockets(pids)
        return sockets if set(servers.values()) <= {port for _, port in sockets} else None

    sockets = wait_until(all_servers_listening, f"{', '.join(servers)} to listen", timeout_s=300)
    names = {port: name for name, port in servers.items()}
    exposed = sorted(
        f"{names.get(port, 'port')} on {ip}:{port}" for ip, port in sockets if ip not in LOOPBACK
    )
    assert not exposed, f"listening beyond this machine: {', '.join(exposed)}"


@dataclass
class AirflowStack:
    """Handles for one running stack: the REST API, the sandbox URLs and the Airflow home.

    ``log`` is the log whose tail a timeout shows (standalone's, or a cluster's dag-processor).
    ``process`` is the started ``airflow standalone`` and ``env`` the environment it got, so a test
    can look at what its process tree listens on.
    """

    api_url: str
    home: Path
    sandbox_urls: dict[str, str]
    session: requests.Session
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, path: str, **kwargs: object) -> requests.Response:
        return self.session.request(method, f"{self.api_url}/api/v2{path}", timeout=30, **kwargs)

    def wait_for_dag(self, dag_id: str, timeout_s: float = 600) -> dict:
        """Wait until the dag-processor has parsed the DAG and the API serves it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            response = self.api("GET", f"/dags/{dag_id}")
            if response.status_code == 200:
                return response.json()
            time.sleep(2)
        errors = self.api("GET", "/importErrors").json()
        log = self.log or self.home / "logs" / "standalone.log"
        log_tail = log.read_text(errors="replace")[-3000:]
        raise TimeoutError(
            f"{dag_id} not parsed within {timeout_s}s; import errors: {errors}; {log.name}:\n{log_tail}"
        )

    def wait_for_backfill(self, backfill_id: int, timeout_s: float = 900) -> None:
        wait_until(
            lambda: self.api("GET", f"/backfills/{backfill_id}").json().get("completed_at"),
            f"backfill {backfill_id} to complete",
            timeout_s,
        )


@contextmanager
def throwaway_database(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the test server, dropped afterwards; yields its URL."""
    import sqlalchemy as sa

    name = f"apisync_e2e_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def metadata_db_url(postgres_url: str) -> Iterator[str]:
    """A throwaway PostgreSQL database for Airflow's metadata.

    SQLite refuses backfill creation under concurrent access (the scheduler holds it), so the
    end-to-end stack runs on PostgreSQL like a real deployment.
    """
    with throwaway_database(postgres_url) as url:
        yield url


E2E_DAGS = Path(__file__).resolve().parent / "dags"


def linked_dags_folder(home: Path, dag_files: Iterable[Path]) -> Path:
    """A DAGs folder in ``home`` holding exactly ``dag_files`` (as links)."""
    folder = home / "dags"
    folder.mkdir()
    for dag_file in dag_files:
        (folder / dag_file.name).symlink_to(dag_file)
    return folder


def project_and_e2e_dag_files() -> list[Path]:
    """The project's DAG files plus the e2e-only ones (bounded in time)."""
    return [*sorted((REPO_ROOT / "dags").glob("*.py")), *sorted(E2E_DAGS.glob("*.py"))]


@contextmanager
def running_airflow(
    home: Path,
    metadata_db_url: str,
    *,
    dag_files: Iterable[Path],
    scheduled_runs: bool,
    connection_extras: dict[str, dict[str, object]] | None = None,
) -> Iterator[AirflowStack]:
    """``airflow standalone`` in ``home`` with the sandboxes, until the block ends.

    ``scheduled_runs=False`` turns the scheduler's own runs off (``use_job_schedule``): only the
    runs a test asks for (manual, backfill) exist. With ``True`` the scheduler creates scheduled
    and catchup runs like in production, so ``dag_files`` must be bounded in time.
    ``connection_extras`` are merged into the named connections' extras (see ``connections_env``).
    """
    (home / "logs").mkdir()
    admin_password(home)  # the passwords file exists before the api-server reads it
    port = free_port()
    with running_sandboxes(ephemeral_ports=True, log_dir=home / "logs") as urls:
        env = {
            **os.environ,
            **airflow_env(home),
            **bind_env(),
            **connections_env(urls, home, api_url=f"http://127.0.0.1:{port}", extras=connection_extras),
            "AIRFLOW__CORE__DAGS_FOLDER": str(linked_dags_folder(home, dag_files)),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db_url,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(scheduled_runs),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
        env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        log = open(home / "logs" / "standalone.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            ["airflow", "standalone"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            api_url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{api_url}/api/v2/monitor/health", 300, proc)
            session = logged_in_session(api_url, home)
            yield AirflowStack(
                api_url=api_url, home=home, sandbox_urls=urls, session=session, process=proc, env=env
            )
        finally:
            stop_process_group(proc, grace_s=30)
            log.close()


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory, metadata_db_url: str) -> Iterator[AirflowStack]:
    """The shared stack: every project DAG plus the e2e ones, and only the runs a test asks for
    (no catchup of scheduled intervals competing for 2 cores)."""
    home = tmp_path_factory.mktemp("airflow-home")
    dag_files = project_and_e2e_dag_files()
    with running_airflow(home, metadata_db_url, dag_files=dag_files, scheduled_runs=False) as stack:
        yield stack
