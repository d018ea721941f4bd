"""What the stack listens on (issue 13 case 6): `make run`'s servers answer this machine only.

The shared stack starts ``airflow standalone`` with the settings `make run` gives it
(:func:`scripts.localstack.airflow_env` and :func:`~scripts.localstack.bind_env`), so the sockets
checked here are the ones a user's laptop opens.
"""

from __future__ import annotations

import psutil

from tests.e2e.conftest import AirflowStack, wait_until

LOOPBACK = {"127.0.0.1", "::1"}


def listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket of ``pid`` and its descendants."""
    root = psutil.Process(pid)
    sockets: set[tuple[str, int]] = set()
    for process in (root, *root.children(recursive=True)):
        try:
            connections = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:  # a task process that finished meanwhile
            continue
        sockets |= {(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN}
    return sockets


def test_make_run_listens_on_loopback_only(airflow_stack: AirflowStack) -> None:
    assert airflow_stack.process is not None
    servers = {
        "api-server": int(airflow_stack.api_url.rsplit(":", 1)[1]),
        "scheduler log server": int(airflow_stack.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]),
        "triggerer log server": int(airflow_stack.env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]),
    }

    def all_servers_listening() -> set[tuple[str, int]] | None:
        sockets = listening_sockets(airflow_stack.process.pid)  # type: ignore[union-attr]
        return sockets if set(servers.values()) <= {port for _, port in sockets} else None

    sockets = wait_until(all_servers_listening, f"{', '.join(servers)} to listen", timeout_s=300)
    names = {port: name for name, port in servers.items()}
    exposed = sorted(
        f"{names.get(port, 'port')} on {ip}:{port}" for ip, port in sockets if ip not in LOOPBACK
    )
    assert not exposed, f"listening beyond this machine: {', '.join(exposed)}"
