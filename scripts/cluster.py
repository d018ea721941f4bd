"""`make cluster`: the distributed CeleryExecutor stack as plain processes on this machine.

The same components as docker-compose.yaml, without Docker: metadata on PostgreSQL, Redis as the
Celery broker *and* the shared rate budget, an api-server, a scheduler, a dag-processor, a triggerer
and N Celery workers, plus the sandbox APIs. The distributed end-to-end test starts it through
:func:`running_cluster`, so what the test proves is what a user runs.

What every distributed deployment needs, and this launcher sets (docker-compose.yaml and
kubernetes/ do the same):

- **One JWT secret, one Fernet key and one API secret key for every component.** Left unset, each
  component generates its own and every task fails with ``Invalid auth token``. They are generated
  once per cluster home and kept in its (git-ignored, 0600) ``cluster-secrets.json``.
- **The pools the DAGs use**, created from ``include/pools.json`` (`airflow pools import`).
- **The Redis rate budget on every HTTP connection**: workers share no rate state otherwise.
- **Servers on this machine only** unless ``APISYNC_BIND`` says otherwise (``bind_env``): the
  api-server and the triggerer's log server (the scheduler's CeleryExecutor starts none; workers
  run with ``--skip-serve-logs``).
- Workers on one machine need distinct names: ``-H worker-N@host`` for Celery, and the task
  hostname Airflow records (``[core] hostname_callable`` = :func:`worker_hostname`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in (None, ""):  # `python scripts/cluster.py`: make `scripts.localstack` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.localstack import (
    REPO_ROOT,
    StopSignals,
    admin_password,
    airflow_env,
    bind_env,
    connections_env,
    free_port,
    prepare_metadata_db,
    running_sandboxes,
    stop_process_group,
    wait_for_http,
)

DEFAULT_CLUSTER_HOME = REPO_ROOT / ".airflow-cluster"
DEFAULT_METADATA_URL = "postgresql://postgres@127.0.0.1:5432/apisync_cluster"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
DEFAULT_API_PORT = 8080
WORKER_NAME_ENV = "APISYNC_WORKER_NAME"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")


def worker_hostname() -> str:
    """``[core] hostname_callable`` for workers sharing one machine: the name the launcher gave the
    worker (so a task instance says which worker ran it), else the machine's FQDN."""
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


def cluster_secrets(home: Path) -> dict[str, str]:
    """The secrets every component must share, generated once per home."""
    path = home / "cluster-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    values = {
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
    }
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def redis_db_url(redis_url: str, db: int) -> str:
    """``redis_url`` pointed at database ``db`` (``redis://host:6379`` -> ``redis://host:6379/1``)."""
    return urlsplit(redis_url)._replace(path=f"/{db}").geturl()


def cluster_env(
    home: Path,
    *,
    metadata_url: str,
    redis_url: str,
    sandbox_urls: Mapping[str, str],
    api_port: int,
    broker_db: int = 0,
    budget_db: int = 1,
    broker_prefix: str = "apisync-cluster:",
    worker_concurrency: int = 2,
    connection_extras: Mapping[str, Mapping[str, object]] | None = None,
) -> dict[str, str]:
    """The environment every component of one cluster shares (one definition, so none drifts)."""
    api_url = f"http://127.0.0.1:{api_port}"
    plain_url = metadata_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    return {
        **airflow_env(home),
        **bind_env(),
        **connections_env(
            sandbox_urls,
            home,
            api_url=api_url,
            rate_budget=redis_db_url(redis_url, budget_db),
            extras=connection_extras,
        ),
        **cluster_secrets(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "16",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": redis_db_url(redis_url, broker_db),
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{plain_url}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
        # Several clusters (a user's, a test's) may share one Redis: keep their queues apart.
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": broker_prefix,
        # A task unacknowledged this long is redelivered (Airflow's default, stated so it is not warned).
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def worker_command(index: int, concurrency: int) -> list[str]:
    # Logs are on this machine's disk, which the api-server reads: no per-worker log server needed.
    return [
        "airflow",
        "celery",
        "worker",
        "-H",
        f"worker-{index}@%h",
        "-c",
        str(concurrency),
        "--skip-serve-logs",
    ]


@dataclass
class Cluster:
    """Handles for a running cluster: its API, home, sandbox URLs and processes by name."""

    api_url: str
    home: Path
    env: dict[str, str]
    sandbox_urls: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"

    def exited(self) -> dict[str, int]:
        """Components that have stopped, with their exit codes (a healthy cluster has none)."""
        return {name: proc.returncode for name, proc in self.processes.items() if proc.poll() is not None}


def ensure_database(metadata_url: str) -> None:
    """Create the metadata database on its server if it does not exist."""
    import sqlalchemy as sa

    url = sa.make_url(metadata_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}
            )
            if exists.scalar() is None:
                conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    finally:
        admin.dispose()


def wait_for_workers(cluster: Cluster, count: int, timeout_s: float) -> list[str]:
    """Wait until ``count`` Celery workers answer a ping on the broker; their names."""
    deadline = time.monotonic() + timeout_s
    names: list[str] = []
    while time.monotonic() < deadline:
        if cluster.exited():
            raise RuntimeError(f"cluster components exited: {cluster.exited()}")
        ping = subprocess.run(
            [
                "celery",
                "--app",
                "airflow.providers.celery.executors.celery_executor.app",
                "inspect",
                "ping",
                "--json",
            ],
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        replies = [line for line in ping.stdout.splitlines() if line.startswith("{")]  # logs go to stdout too
        if ping.returncode == 0 and replies:
            names = sorted(json.loads(replies[-1]))
            if len(names) >= count:
                return names
        time.sleep(2)
    raise TimeoutError(f"{count} Celery workers did not answer within {timeout_s:.0f}s (saw {names})")


@contextmanager
def running_cluster(
    home: Path,
    *,
    metadata_url: str = DEFAULT_METADATA_URL,
    redis_url: str = DEFAULT_REDIS_URL,
    workers: int = 2,
    worker_concurrency: int = 2,
    api_port: int = DEFAULT_API_PORT,
    ephemeral_ports: bool = False,
    broker_db: int = 0,
    budget_db: int = 1,
    broker_prefix: str = "apisync-cluster:",
    dags_folder: Path | None = None,
    sandbox_overrides: Mapping[str, Mapping[str, object]] | None = None,
    connection_extras: Mapping[str, Mapping[str, object]] | None = None,
    extra_env: Mapping[str, str] | None = None,
    startup_timeout_s: float = 300,
) -> Iterator[Cluster]:
    """Start sandboxes, prepare the metadata DB, start every component; stop all on exit."""
    (home / "logs").mkdir(parents=True, exist_ok=True)
    admin_password(home)
    ensure_database(metadata_url)
    with ExitStack() as stack:
        urls = stack.enter_context(
            running_sandboxes(
                ephemeral_ports=ephemeral_ports, log_dir=home / "logs", overrides=sandbox_overrides
            )
        )
        env = {
            **os.environ,
            **cluster_env(
                home,
                metadata_url=metadata_url,
                redis_url=redis_url,
                sandbox_urls=urls,
                api_port=api_port,
                broker_db=broker_db,
                budget_db=budget_db,
                broker_prefix=broker_prefix,
                worker_concurrency=worker_concurrency,
                connection_extras=connection_extras,
            ),
            **({"AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder)} if dags_folder else {}),
            **(extra_env or {}),
        }
        env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        prepare_metadata_db(env)
        cluster = Cluster(api_url=env["AIRFLOW__API__BASE_URL"], home=home, env=env, sandbox_urls=urls)
        stack.callback(_stop_all, cluster)
        commands = {name: ["airflow", name] for name in SERVICES}
        worker_env = {**env, "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.cluster.worker_hostname"}
        for name, command in commands.items():
            cluster.processes[name] = _start(command, env, cluster.log(name))
        for index in range(1, workers + 1):
            name = f"worker-{index}"
            cluster.processes[name] = _start(
                worker_command(index, worker_concurrency),
                {**worker_env, WORKER_NAME_ENV: name},
                cluster.log(name),
            )
        wait_for_http(
            f"{cluster.api_url}/api/v2/monitor/health", startup_timeout_s, cluster.processes["api-server"]
        )
        wait_for_workers(cluster, workers, startup_timeout_s)
        yield cluster


def _start(command: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop_all(cluster: Cluster) -> None:
    """Workers first (they finish or hand back their tasks), then the services."""
    for name in sorted(cluster.processes, key=lambda n: not n.startswith("worker")):
        stop_process_group(cluster.processes[name], grace_s=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker")
    parser.add_argument("--metadata-url", default=os.environ.get("APISYNC_CLUSTER_DB", DEFAULT_METADATA_URL))
    parser.add_argument("--redis-url", default=os.environ.get("APISYNC_CLUSTER_REDIS", DEFAULT_REDIS_URL))
    parser.add_argument("--port", type=int, default=DEFAULT_API_PORT)
    args = parser.parse_args(argv)
    home = DEFAULT_CLUSTER_HOME
    stop = StopSignals()
    print(
        f"starting the cluster in {home} (metadata {args.metadata_url}, Redis {args.redis_url})…", flush=True
    )
    try:
        with running_cluster(
            home,
            metadata_url=args.metadata_url,
            redis_url=args.redis_url,
            workers=args.workers,
            worker_concurrency=args.concurrency,
            api_port=args.port,
        ) as cluster:
            print(
                f"\n  Airflow UI: {cluster.api_url}\n  login: admin / {admin_password(home)}\n"
                f"  components: {', '.join(cluster.processes)} (logs in {home / 'logs'})\n"
                "  DAGs start paused: unpause one in the UI, or trigger it.\n  Ctrl-C stops everything.\n",
                flush=True,
            )
            while not cluster.exited():
                time.sleep(2)
            print(f"components exited: {cluster.exited()}; stopping the rest", flush=True)
            return 1
    except KeyboardInterrupt:
        print("\nstopping the cluster…", flush=True)
    return 0 if stop.requested else 1


if __name__ == "__main__":
    sys.exit(main())
