"""scripts/localstack.py's Airflow environment: where `make run`'s servers listen (issue 13 case 6).

tests/e2e/test_listening_sockets.py checks the sockets of a whole running stack; these check the
settings and the log-server pin on their own, without starting a stack.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from scripts.localstack import BIND_ENV, REPO_ROOT, airflow_env, bind_env, free_port


def test_make_run_binds_airflow_to_this_machine_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(BIND_ENV, raising=False)
    env = bind_env()
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["APISYNC_LOG_SERVER_HOST"] == "127.0.0.1"
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "airflow_local_settings.log_server_hostname"
    # where Airflow finds the module that callable and the log-server pin live in
    assert str(REPO_ROOT / "config") in airflow_env(tmp_path)["PYTHONPATH"].split(os.pathsep)


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_apisync_bind_opts_in_to_every_interface(monkeypatch: pytest.MonkeyPatch, bind: str) -> None:
    monkeypatch.setenv(BIND_ENV, bind)
    env = bind_env()
    assert env["AIRFLOW__API__HOST"] == bind
    # Airflow's own default for the log servers and the task hostname: nothing pinned.
    assert "APISYNC_LOG_SERVER_HOST" not in env
    assert "AIRFLOW__CORE__HOSTNAME_CALLABLE" not in env


def test_an_explicit_bind_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BIND_ENV, "0.0.0.0")
    env = bind_env("127.0.0.1")
    assert env["AIRFLOW__API__HOST"] == env["APISYNC_LOG_SERVER_HOST"] == "127.0.0.1"


def test_the_connection_test_button_is_enabled(tmp_path: Path) -> None:
    assert airflow_env(tmp_path)["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"


def test_airflows_log_server_listens_on_the_bind_address_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Airflow's own serve_logs, in a process with make run's environment: loopback, not every interface."""
    monkeypatch.delenv(BIND_ENV, raising=False)
    port = free_port()
    env = {**os.environ, **airflow_env(tmp_path), **bind_env()}
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    code = (
        "from airflow.utils.serve_logs import serve_logs\n"
        "from airflow.utils.net import get_hostname\n"
        "print('hostname', get_hostname(), flush=True)\n"
        f"serve_logs({port})\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_until_listening(proc, port, timeout_s=120)
        listening = {
            c.laddr.ip
            for c in psutil.Process(proc.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert "hostname 127.0.0.1" in output, output


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, timeout_s: float) -> None:
    """Until 127.0.0.1:``port`` accepts a connection (bound there or on every interface)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the log server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 1):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"nothing listened on 127.0.0.1:{port} within {timeout_s:.0f}s")
