"""The local stack in one place: sandbox services, Airflow settings and connections.

`make run`, `make demo` and the end-to-end tests all build their environment here, so the
connection ids the DAGs use, the sandbox ports and the Airflow home never drift apart.
Credentials here are the sandbox's public defaults, not secrets.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AIRFLOW_HOME = REPO_ROOT / ".airflow"
SANDBOX_WINDOW = ("2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z")


@dataclass(frozen=True)
class SandboxService:
    """One sandbox server process standing in for one real API."""

    name: str
    port: int
    config: Mapping[str, object] = field(default_factory=dict)


# Each source is its own server so each speaks its own rate-limit header dialect, like the real APIs.
SANDBOX_SERVICES: tuple[SandboxService, ...] = (
    SandboxService("shop", 8901, {"ratelimit_headers": "ietf", "rate": 25, "burst": 5, "records": 5000}),
    SandboxService("tracker", 8902, {"ratelimit_headers": "github", "rate": 25, "burst": 5, "records": 5000}),
    SandboxService(
        "accounts", 8903, {"ratelimit_headers": "ietf-legacy", "rate": 25, "burst": 5, "records": 5000}
    ),
    SandboxService("catalog", 8904, {"ratelimit_headers": "github", "rate": 25, "burst": 5, "records": 5000}),
    SandboxService("crm", 8905, {"crm_rate": 10, "crm_burst": 10}),
)


def sandbox_command(
    service: SandboxService, *, host: str = "127.0.0.1", port: int | None = None
) -> list[str]:
    start, end = SANDBOX_WINDOW
    args = [sys.executable, "-m", "sandbox", "--host", host, "--port", str(port or service.port)]
    args += ["--window-start", start, "--window-end", end]
    for key, value in service.config.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


POOLS_FILE = REPO_ROOT / "include" / "pools.json"  # the one pool definition (apisync.pools reads it)


def prepare_metadata_db(env: Mapping[str, str]) -> None:
    """Migrate the metadata DB and create the pools the DAGs use (both idempotent)."""
    subprocess.run(["airflow", "db", "migrate"], env=dict(env), check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["airflow", "pools", "import", str(POOLS_FILE)], env=dict(env), check=True, stdout=subprocess.DEVNULL
    )


DEFAULT_API_URL = "http://127.0.0.1:8080"


def connections_env(
    urls: Mapping[str, str],
    airflow_home: Path,
    api_url: str = DEFAULT_API_URL,
    *,
    rate_budget: str | None = None,
    extras: Mapping[str, Mapping[str, object]] | None = None,
) -> dict[str, str]:
    """AIRFLOW_CONN_* for every connection the DAGs use, pointed at the given sandbox URLs.

    ``airflow_api`` is Airflow's own REST API at ``api_url`` with the home's admin login: the
    sync_coverage DAG asks it which runs are in progress and creates its repair backfills.
    ``rate_budget`` (a Redis URL) puts every source connection's rate budget in Redis, for
    components that share no disk or run on several machines; without it the budget is the
    SQLite file in this machine's temp directory, shared by the processes of one machine.
    ``extras`` are merged into the named connections' extras (e.g. ``defer_after_s`` for a test).
    """
    conns: dict[str, dict[str, object]] = {
        "shop_api": {
            "conn_type": "apisync",
            "host": urls["shop"],
            "password": "sandbox-key",
            "extra": {"auth": {"type": "bearer"}, "rate_limit_headers": "ietf"},
        },
        "tracker_api": {
            "conn_type": "apisync",
            "host": urls["tracker"],
            "password": "sandbox-key",
            "extra": {
                "auth": {"type": "api_key", "header": "X-API-Key"},
                "rate_limit": {"requests": 20, "period_s": 1, "burst": 5},
                "rate_limit_headers": "github",
            },
        },
        "accounts_api": {
            "conn_type": "apisync",
            "host": urls["accounts"],
            "login": "sandbox-client",
            "password": "sandbox-secret",
            "extra": {"auth": {"type": "oauth2", "token_url": "/oauth/token"}},
        },
        "catalog_api": {
            "conn_type": "apisync",
            "host": urls["catalog"],
            "login": "sandbox",
            "password": "sandbox",
            "extra": {"auth": {"type": "basic"}},
        },
        "crm_api": {
            "conn_type": "apisync",
            "host": urls["crm"],
            "password": "sandbox-key",
            "extra": {
                "auth": {"type": "bearer"},
                "rate_limit_headers": "hubspot",
                "idempotent_post_paths": ["/crm/v3/objects/contacts/batch/upsert"],
            },
        },
        "warehouse_default": {
            "conn_type": "sqlite",
            "host": str(airflow_home / "warehouse.db"),
        },
        "airflow_api": {
            "conn_type": "http",
            "host": api_url,
            "login": "admin",
            # The login `make run` prints; read, never created, here (no home, no password yet).
            "password": admin_password(airflow_home) if (airflow_home / "passwords.json").exists() else "",
        },
    }
    for cid, body in conns.items():
        extra = body.get("extra")
        if not isinstance(extra, dict):
            continue
        if rate_budget:
            extra["rate_limit"] = {
                **extra.get("rate_limit", {}),
                "backend": "redis",
                "redis_url": rate_budget,
            }
        extra.update((extras or {}).get(cid, {}))
    return {f"AIRFLOW_CONN_{cid.upper()}": json.dumps(body) for cid, body in conns.items()}


BIND_ENV = "APISYNC_BIND"  # `APISYNC_BIND=0.0.0.0 make run`: the UI for other machines too
DEFAULT_BIND = "127.0.0.1"
ALL_INTERFACES = frozenset({"0.0.0.0", "::"})


def bind_env(bind: str | None = None) -> dict[str, str]:
    """Where Airflow's servers listen: ``bind``, else ``$APISYNC_BIND``, else this machine only.

    For the launchers that start servers (`make run`, `make cluster`, the e2e stack), on top of
    :func:`airflow_env`; not for in-process runs (`make demo`), which serve nothing and lack the
    ``config/`` import path the hostname callable needs. The api-server takes ``[api] host``; the
    scheduler's and triggerer's log servers have no host setting in Airflow 3.3.2, so
    ``config/airflow_local_settings.py`` gives them this one (its docstring says why and how).
    All interfaces is Airflow's own default, so it needs no pin.
    """
    host = bind or os.environ.get(BIND_ENV) or DEFAULT_BIND
    env = {"AIRFLOW__API__HOST": host}
    if host not in ALL_INTERFACES:
        env["APISYNC_LOG_SERVER_HOST"] = host
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "airflow_local_settings.log_server_hostname"
    return env


def airflow_env(airflow_home: Path) -> dict[str, str]:
    """Airflow settings for a repo-local home: SQLite, LocalExecutor, our dags/plugins, no examples.

    The sync DAGs are scheduled over the sandbox's data span only (``APISYNC_START_DATE`` ..
    ``APISYNC_END_DATE`` = :data:`SANDBOX_WINDOW`): unpausing one queues the week the sandbox
    serves, not every empty hour from then to today.
    """
    return {
        "APISYNC_START_DATE": SANDBOX_WINDOW[0],
        "APISYNC_END_DATE": SANDBOX_WINDOW[1],
        # The connection form's "Test" button (Airflow disables it by default).
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The LocalExecutor, with GX & co. imported before its workers fork (apisync.pipeline.executor).
        "AIRFLOW__CORE__EXECUTOR": "apisync.pipeline.executor.PreloadingLocalExecutor",
        # A laptop-sized pool: standalone otherwise forks 32 LocalExecutor workers.
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "APISYNC_STAGING_URL": f"file://{airflow_home}/staging",
        "PYTHONPATH": os.pathsep.join(
            [str(REPO_ROOT / "plugins"), str(REPO_ROOT), str(REPO_ROOT / "config")]
        ),
        "GX_ANALYTICS_ENABLED": "False",
    }


def admin_password(airflow_home: Path) -> str:
    """The UI login: generated once per home and kept in the (git-ignored) passwords file."""
    path = airflow_home / "passwords.json"
    if path.exists():
        return json.loads(path.read_text())["admin"]
    airflow_home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(json.dumps({"admin": password}))
    path.chmod(0o600)
    return password


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s")


def stop_process_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the whole group (standalone spawns children), then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


@contextmanager
def running_sandboxes(
    *,
    ephemeral_ports: bool = False,
    log_dir: Path | None = None,
    overrides: Mapping[str, Mapping[str, object]] | None = None,
) -> Iterator[dict[str, str]]:
    """Start every sandbox service; yield {service name: base URL}; stop them all on exit.

    ``overrides`` changes a service's configuration, e.g. ``{"accounts": {"records": 200_000}}``.
    """
    procs: list[subprocess.Popen] = []
    urls: dict[str, str] = {}
    try:
        for service in SANDBOX_SERVICES:
            port = free_port() if ephemeral_ports else service.port
            log = open(log_dir / f"sandbox-{service.name}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
            try:
                if overrides and service.name in overrides:
                    service = SandboxService(
                        service.name, service.port, {**service.config, **overrides[service.name]}
                    )
                proc = subprocess.Popen(
                    sandbox_command(service, port=port),
                    cwd=REPO_ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                if not isinstance(log, int):
                    log.close()  # the child has its own descriptor; ours would leak (ResourceWarning)
            procs.append(proc)
            urls[service.name] = f"http://127.0.0.1:{port}"
        for proc, url in zip(procs, urls.values(), strict=True):
            wait_for_http(f"{url}/_sandbox/health", 30, proc)
        yield urls
    finally:
        for proc in procs:
            stop_process_group(proc, grace_s=5)


class StopSignals:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, so ``with`` blocks stop what
    they started; ``requested`` says whether one came. Explicit handlers: a shell that starts us in
    the background sets SIGINT to "ignore"."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

    def _stop(self, signum: int, _frame: object) -> None:
        self.requested = True
        raise KeyboardInterrupt


def run_dag_once(dag: object, interval_end: object) -> object:
    """`dag.test()` for the data interval ending at `interval_end`; returns the DagRun.

    Airflow 3.3.2's dag.test() cannot finish a *successful* run of a DAG that has a deadline: it
    looks the alerts up by id, but dag.test never stores them (DeadlineAlertModel.get_by_id({})).
    The deadline only matters to a scheduler anyway, so it is dropped for in-process runs.
    """
    dag.deadline = None
    return dag.test(logical_date=interval_end)
