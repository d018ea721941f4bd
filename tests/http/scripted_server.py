"""A real HTTP server on loopback that answers from a script: for paging sequences no sane API serves.

The sandbox pages correctly by design; the pathological cases (a cursor that cycles, a server that
pages only when asked, a record that changes between two pages) are easier to state as a function
from the request to the response. Requests go through the real network stack, so ApiHook, its
retries, rate limiter and body decoding all run as they do against a real API.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Call:
    """One request the server received: path, query (first value of each parameter), body, headers."""

    path: str
    query: dict[str, str]
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Script = Callable[[Call, "ScriptedServer"], Reply]


@dataclass
class ScriptedServer:
    url: str
    calls: list[Call] = field(default_factory=list)


def _handler(script: Script, server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            call = Call(
                split.path,
                {k: v[0] for k, v in parse_qs(split.query).items()},
                self.rfile.read(length) if length else b"",
                {name.lower(): value for name, value in self.headers.items()},
            )
            server.calls.append(call)
            reply = script(call, server)
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def scripted_server(script: Script) -> Iterator[ScriptedServer]:
    """Serve ``script`` on a free loopback port until the block ends."""
    handle = ScriptedServer(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script, handle))
    handle.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield handle
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
