"""The one ASGI middleware in front of the API routes: auth, storm, rate limit, faults, counting.

Written as raw ASGI (no BaseHTTPMiddleware) so the per-request cost stays a few dict lookups; the
/_sandbox ground-truth routes bypass it entirely (never authenticated, limited, faulted or counted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec

from sandbox.auth import authenticate, echo_of_request
from sandbox.faults import MALFORMED_KEEP_SHARE, RETRY_AFTER_503_S
from sandbox.ratelimit import retry_after_header
from sandbox.state import SandboxState

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]

TOKEN_PATH = "/oauth/token"
CRM_PREFIX = "/crm/v3/objects/contacts"
GROUND_TRUTH_PREFIX = "/_sandbox"
JSON = (b"content-type", b"application/json")
ERROR_BODIES = {
    500: (b"application/json", b'{"message":"internal server error (sandbox fault)"}'),
    502: (b"text/html", b"<html><body><h1>502 Bad Gateway</h1>sandbox fault</body></html>"),
    503: (b"application/json", b'{"message":"service unavailable (sandbox fault)"}'),
}


async def send_json(send: Any, status: int, body: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = msgspec.json.encode(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON, (b"content-length", str(len(payload)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def drop_connection(send: Any) -> None:
    """Close the socket without a response (uvicorn exposes its transport on the send callable)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.abort()
        await asyncio.sleep(0)
        return
    # Fallback for other servers: promise a body, send part of it, stop.
    await send(
        {"type": "http.response.start", "status": 200, "headers": [JSON, (b"content-length", b"1000")]}
    )
    await send({"type": "http.response.body", "body": b'{"data": [', "more_body": True})
    raise ConnectionAbortedError("sandbox fault: dropped connection")


class Guard:
    def __init__(self, app: Any, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(GROUND_TRUTH_PREFIX):
            await self.app(scope, receive, send)
            return
        state = self.state
        stats = state.stats
        if path == TOKEN_PATH:
            stats.request(None, "oauth")
            await self.app(scope, receive, self._counting(send, None, []))
            return
        config = state.config
        is_crm = path.startswith(CRM_PREFIX)
        limiter = state.crm_limiter if is_crm else state.source_limiter
        auth = authenticate(dict(scope["headers"]), scope.get("query_string", b""), config, state.tokens)
        credential = auth.credential
        stats.request(credential, "crm" if is_crm else "source")
        error = auth.error
        if error is None and config.reject_after and stats.requests_of(credential) > config.reject_after:
            error = (401, {"error": "invalid_token", "message": "Credentials revoked"}, [])
        if error is not None:
            status, body, headers = error
            if config.auth_error_body == "echo":
                body = {**body, "request": echo_of_request(scope)}
            stats.status(credential, status)
            await send_json(send, status, body, headers)
            return
        if credential is None:  # authenticate() returns a credential or an error, never neither
            raise RuntimeError("authentication returned neither a credential nor an error")
        storm_left = state.storm_left()
        if storm_left > 0:
            stats.fault("storm")
            headers = limiter.headers(limiter.peek(credential)) + retry_after_header(
                config.retry_after, storm_left
            )
            stats.status(credential, 429)
            await send_json(send, 429, {"message": "rate limit exceeded"}, headers)
            return
        decision = limiter.take(credential)
        extra = limiter.headers(decision)
        if decision is not None and not decision.allowed:
            stats.status(credential, 429)
            headers = extra + retry_after_header(config.retry_after, decision.wait_s)
            if is_crm:
                body = {
                    "status": "error",
                    "message": "You have reached your secondly limit.",
                    "category": "RATE_LIMITS",
                }
            else:
                body = {"message": "rate limit exceeded"}
            await send_json(send, 429, body, headers)
            return
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000.0)
        fault = None
        if config.fault_5xx or config.fault_timeout or config.fault_disconnect or config.fault_malformed:
            fault = state.faults.draw(
                config.fault_5xx, config.fault_timeout, config.fault_disconnect, config.fault_malformed
            )
        if fault is not None:
            stats.fault(fault)
        if fault == "5xx":
            await self._server_error(send, credential, extra)
        elif fault == "timeout":
            await asyncio.sleep(config.timeout_hang_s)
            await drop_connection(send)
        elif fault == "disconnect":
            await drop_connection(send)
        elif fault == "malformed":
            await self._malformed(scope, receive, send, credential, extra)
        else:
            await self.app(scope, receive, self._counting(send, credential, extra))

    def _counting(self, send: Any, credential: str | None, extra: Headers) -> Any:
        stats = self.state.stats

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                stats.status(credential, message["status"])
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return counting_send

    async def _server_error(self, send: Any, credential: str, extra: Headers) -> None:
        status, with_retry_after = self.state.faults.server_error()
        content_type, body = ERROR_BODIES[status]
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
        if with_retry_after:
            headers.append((b"retry-after", str(RETRY_AFTER_503_S).encode()))
        self.state.stats.status(credential, status)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _malformed(
        self, scope: Scope, receive: Any, send: Any, credential: str, extra: Headers
    ) -> None:
        """Run the route, then serve its body cut in half with status 200 and a matching length."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def buffer(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, buffer)
        body = b"".join(chunks)
        body = body[: max(1, int(len(body) * MALFORMED_KEEP_SHARE))]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers += [(b"content-length", str(len(body)).encode()), *extra]
        self.state.stats.status(credential, 200)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
