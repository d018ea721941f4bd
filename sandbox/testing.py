"""Start a sandbox server as a subprocess for tests and benchmarks: ``with run_sandbox(**config) as sb:``.

A real process on a free loopback port (not an in-process app) so clients exercise real sockets,
timeouts and dropped connections, and the server's CPU use is its own.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from sandbox.__main__ import config_to_argv
from sandbox.config import (
    DEFAULT_API_KEY,
    DEFAULT_BASIC_PASSWORD,
    DEFAULT_BASIC_USER,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SandboxConfig,
)

HOST = "127.0.0.1"
DEFAULT_STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
HEALTH_PATH = "/_sandbox/health"
PORT_ATTEMPTS = 3
REPO_ROOT = Path(__file__).resolve().parents[1]


class SandboxStartError(RuntimeError):
    """The sandbox process exited or never became healthy; the message carries its stderr."""


@dataclass
class SandboxHandle:
    """A running sandbox server: its URL, credentials and the ground-truth calls."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    config: dict[str, Any]
    api_key: str = DEFAULT_API_KEY
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    basic_user: str = DEFAULT_BASIC_USER
    basic_password: str = DEFAULT_BASIC_PASSWORD
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        """A raw request; with auth=True the default API key is sent unless headers carry credentials."""
        headers = dict(kwargs.pop("headers", None) or {})
        if auth and not {"authorization", "x-api-key"} & {h.lower() for h in headers}:
            headers["X-API-Key"] = self.api_key
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, headers=headers, **kwargs)

    def get_json(self, path: str, params: dict[str, Any] | None = None, *, auth: bool = True) -> Any:
        response = self.request("GET", path, params=params, auth=auth)
        response.raise_for_status()
        return response.json()

    def post_json(self, path: str, body: Any, *, auth: bool = True) -> Any:
        response = self.request("POST", path, json=body, auth=auth)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        return self.get_json("/_sandbox/stats", auth=False)

    def reset(self, *, data: bool = False) -> None:
        """Clear stats, CRM contacts, rate-limit buckets and storms (data=True also undoes mutations)."""
        self.post_json("/_sandbox/reset", {"data": data}, auth=False)

    def configure(self, **changes: Any) -> dict[str, Any]:
        response = self.request("POST", "/_sandbox/config", json=changes, auth=False)
        if response.status_code != 200:
            raise ValueError(f"sandbox rejected config {changes}: {response.text}")
        return response.json()

    def truth(self, resource: str, updated_gte: Any = None, updated_lt: Any = None) -> list[dict[str, Any]]:
        """Every record of `resource` with updated in [updated_gte, updated_lt), by (updated, id)."""
        params = {
            k: v for k, v in (("updated_gte", updated_gte), ("updated_lt", updated_lt)) if v is not None
        }
        return self.get_json(f"/_sandbox/truth/{resource}", params, auth=False)["records"]

    def crm_contacts(self) -> list[dict[str, Any]]:
        return self.get_json("/_sandbox/crm/contacts", auth=False)["results"]

    def mutate(self, count: int, at: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {"count": count}
        if at is not None:
            body["at"] = at
        return self.post_json("/_sandbox/mutate", body, auth=False)

    def issued_tokens(self) -> list[str]:
        """Every OAuth2 access token this server issued (for tests that grep for leaks)."""
        return list(self.get_json("/_sandbox/tokens", auth=False)["issued"])

    def storm(self, seconds: float) -> None:
        self.post_json("/_sandbox/storm", {"seconds": seconds}, auth=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_healthy(process: subprocess.Popen[bytes], url: str, deadline: float) -> bool:
    """True once healthy; False if the process exited first."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + HEALTH_PATH, timeout=1).status_code == 200:
                return True
        time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def run_sandbox(
    *, startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S, **config: Any
) -> Iterator[SandboxHandle]:
    """Run `python -m sandbox` with `config` on a free port until the block exits."""
    SandboxConfig(**config)  # fail fast, in the caller, on unknown keys or bad values
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    with tempfile.TemporaryFile() as stderr:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            command = [
                sys.executable,
                "-m",
                "sandbox",
                "--host",
                HOST,
                "--port",
                str(port),
                *config_to_argv(config),
            ]
            process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
            )
            url = f"http://{HOST}:{port}"
            if _wait_healthy(process, url, time.monotonic() + startup_timeout_s):
                break
            _stop(process)
            stderr.seek(0)
            output = stderr.read().decode(errors="replace")
            if "address already in use" in output.lower() and attempt < PORT_ATTEMPTS:
                stderr.seek(0)
                stderr.truncate()
                continue
            raise SandboxStartError(
                f"sandbox did not become healthy on {url} within {startup_timeout_s} s "
                f"(exit code {process.returncode}); command: {' '.join(command)}\n--- stderr ---\n{output}"
            )
        handle = SandboxHandle(url=url, port=port, process=process, config=dict(config))
        try:
            yield handle
        finally:
            handle.session.close()
            _stop(process)
