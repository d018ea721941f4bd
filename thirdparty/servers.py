"""API servers nobody on this project wrote, each behind a real rate limit, for tests and benchmarks.

- json-server 0.17.4 (npm, typicode): REST over a JSON file. ``_page``/``_limit`` (first page 1),
  ``_start``/``_end``/``_limit``, ``_sort``/``_order``, ``<field>_gte``/``_lte`` filters,
  ``X-Total-Count`` and a ``Link`` header on paged lists; ETag/304 from Express.
- json-graphql-server 3.3.2 (npm, marmelab): GraphQL on ``/`` over the same kind of JSON:
  ``allOrders(page, perPage, sortField, sortOrder, filter)`` (page 0-based) and
  ``_allOrdersMeta(filter) { count }``; filters ``<field>_gte``/``_lt``/...
- Datasette 0.65.5 (PyPI, its own venv: its pins are not Airflow's): a read-only JSON API over a
  SQLite file, keyset pages with ``next``/``next_url`` in the body, ``<column>__gte``/``__lt``.

In front of each: nginx (Debian ``nginx-light``) with ``limit_req`` — a leaky bucket of ``rate`` r/s
and ``burst`` — answering ``429`` with ``Retry-After: 1`` and no rate-limit headers, as most real
APIs do. ``make thirdparty`` installs all three (``npm ci`` here, a venv, apt); nginx's access log is
the ground truth of what was served (:meth:`ThirdPartyServer.status_counts`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
NODE_BIN = HERE / "node_modules" / ".bin"
DATASETTE = HERE / ".venv-datasette" / "bin" / "datasette"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0
INSTALL_HINT = "run `make thirdparty` (npm ci in thirdparty/, the Datasette venv, apt nginx-light)"

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format ratelimit '$status $request_method "$request_uri"';
    access_log {prefix}/access.log ratelimit;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    limit_req_zone $server_port zone=api:1m rate={rate}r/s;
    server {{
        listen {host}:{port};
        location / {{
            limit_req zone=api burst={burst} nodelay;
            limit_req_status 429;
            error_page 429 = @limited;
            proxy_pass http://{host}:{upstream_port};
            proxy_set_header Host $http_host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location @limited {{
            add_header Retry-After 1 always;
            default_type application/json;
            return 429 '{{"error": "rate limited"}}';
        }}
    }}
}}
"""


class ThirdPartyServerError(RuntimeError):
    """A third-party server is not installed, exited, or never answered; the message says which."""


@dataclass
class ThirdPartyServer:
    """A running server: ``url`` is through the rate limit, ``direct_url`` bypasses it (ground truth)."""

    name: str
    url: str
    direct_url: str
    workdir: Path
    rate: float
    burst: int

    def status_counts(self) -> Counter[int]:
        """Responses nginx sent through the rate limit, by status (its access log)."""
        log = self.workdir / "nginx" / "access.log"
        counts: Counter[int] = Counter()
        if log.exists():
            for line in log.read_text().splitlines():
                counts[int(line.split(" ", 1)[0])] += 1
        return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def orders(count: int, *, start: datetime, step: timedelta = timedelta(seconds=37)) -> list[dict[str, Any]]:
    """Deterministic orders: ``id`` 1..count, ``updated_at`` ISO with milliseconds (UTC, ``Z``),
    spread from ``start`` by ``step``; an amount, a status and a customer email."""
    statuses = ("paid", "open", "refunded", "void")
    rows = []
    for n in range(1, count + 1):
        at = start + step * (n - 1)
        rows.append(
            {
                "id": n,
                "updated_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "amount": round((n * 7919) % 100000 / 100, 2),
                "status": statuses[n % len(statuses)],
                "customer_email": f"customer{n % 97}@example.com",
            }
        )
    return rows


def _sqlite_type(value: Any) -> str:
    """A declared column type: Datasette's keyset ``_next`` compares the key as its column's type
    (an untyped column compares a number with text, and page 2 comes back empty)."""
    if isinstance(value, bool | int):
        return "INTEGER"
    return "REAL" if isinstance(value, float) else "TEXT"


def _require(path: Path | str) -> None:
    if not Path(path).exists():
        raise ThirdPartyServerError(f"{path} is missing: {INSTALL_HINT}")


def _wait_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, *, method: str = "GET", **kwargs: Any
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ThirdPartyServerError(
                f"{process.args!r} exited {process.returncode}: {log.read_text()[-2000:]}"
            )
        with contextlib.suppress(requests.RequestException):
            if requests.request(method, url, timeout=2, **kwargs).status_code < 500:
                return
        time.sleep(0.1)
    raise ThirdPartyServerError(
        f"{url} did not answer in {STARTUP_TIMEOUT_S:.0f} s: {log.read_text()[-2000:]}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def _rate_limited(
    name: str,
    command: Sequence[str],
    upstream_port: int,
    workdir: Path,
    ready_path: str,
    *,
    rate: float,
    burst: int,
    ready_kwargs: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[ThirdPartyServer]:
    _require(NGINX)
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            list(command),
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        direct = f"http://{HOST}:{upstream_port}"
        _wait_ready(direct + ready_path, server, log, **(ready_kwargs or {}))
        prefix = workdir / "nginx"
        prefix.mkdir()
        port = free_port()
        conf = NGINX_CONF.format(
            prefix=prefix, host=HOST, port=port, upstream_port=upstream_port, rate=rate, burst=burst
        )
        (prefix / "nginx.conf").write_text(conf)
        nginx_log = prefix / "stderr.log"
        with nginx_log.open("wb") as out:
            proxy = subprocess.Popen(
                [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            url = f"http://{HOST}:{port}"
            _wait_ready(url + ready_path, proxy, nginx_log, **(ready_kwargs or {}))
            # The readiness probe is not part of what is measured: nginx logs a request after its
            # response went out, so wait for the probe's line before emptying the log.
            access = prefix / "access.log"
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not (access.exists() and access.read_text().strip()) and time.monotonic() < deadline:
                time.sleep(0.05)
            access.write_text("")
            subprocess.run(
                [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-s", "reopen"],
                check=True,
                capture_output=True,
            )
            yield ThirdPartyServer(name, url, direct, workdir, rate, burst)
        finally:
            _stop(proxy)
    finally:
        _stop(server)


@contextlib.contextmanager
def run_json_server(
    data: dict[str, list[dict[str, Any]]], *, rate: float = 20, burst: int = 5
) -> Iterator[ThirdPartyServer]:
    """json-server over ``data`` (collection name -> rows), writable (POST/PATCH change it live)."""
    binary = NODE_BIN / "json-server"
    _require(binary)
    with tempfile.TemporaryDirectory(prefix="json-server-") as tmp:
        workdir = Path(tmp)
        (workdir / "db.json").write_text(json.dumps(data))
        port = free_port()
        command = [str(binary), "--host", HOST, "--port", str(port), "--quiet", "db.json"]
        first = next(iter(data))
        with _rate_limited(
            "json-server", command, port, workdir, f"/{first}?_limit=1", rate=rate, burst=burst
        ) as s:
            yield s


@contextlib.contextmanager
def run_json_graphql_server(
    data: dict[str, list[dict[str, Any]]], *, rate: float = 20, burst: int = 5
) -> Iterator[ThirdPartyServer]:
    """json-graphql-server over ``data``; the GraphQL endpoint is the root path ``/``."""
    binary = NODE_BIN / "json-graphql-server"
    _require(binary)
    with tempfile.TemporaryDirectory(prefix="json-graphql-server-") as tmp:
        workdir = Path(tmp)
        (workdir / "db.json").write_text(json.dumps(data))
        port = free_port()
        command = [str(binary), "db.json", "--host", HOST, "--port", str(port)]
        probe = {"method": "POST", "json": {"query": "{ __typename }"}}
        with _rate_limited(
            "json-graphql-server", command, port, workdir, "/", rate=rate, burst=burst, ready_kwargs=probe
        ) as s:
            yield s


@contextlib.contextmanager
def run_datasette(
    data: dict[str, list[dict[str, Any]]], *, rate: float = 20, burst: int = 5, primary_key: str = "id"
) -> Iterator[ThirdPartyServer]:
    """Datasette over a SQLite file ``db.db`` holding ``data`` (one table per collection, keyed on
    ``primary_key``); its JSON API is ``/db/<table>.json``."""
    _require(DATASETTE)
    with tempfile.TemporaryDirectory(prefix="datasette-") as tmp:
        workdir = Path(tmp)
        with contextlib.closing(sqlite3.connect(workdir / "db.db")) as conn:
            for table, rows in data.items():
                columns = list(rows[0])
                spec = ", ".join(
                    f'"{c}" {_sqlite_type(rows[0][c])}' + (" PRIMARY KEY" if c == primary_key else "")
                    for c in columns
                )
                conn.execute(f'CREATE TABLE "{table}" ({spec})')
                marks = ", ".join("?" for _ in columns)
                conn.executemany(
                    f'INSERT INTO "{table}" VALUES ({marks})', [[r[c] for c in columns] for r in rows]
                )
            conn.commit()
        port = free_port()
        command = [
            str(DATASETTE),
            "serve",
            "db.db",
            "--host",
            HOST,
            "--port",
            str(port),
            "--setting",
            "max_returned_rows",
            "1000",
        ]
        with _rate_limited("datasette", command, port, workdir, "/db.json", rate=rate, burst=burst) as s:
            yield s
