"""Credentials: API keys, OAuth2 client-credentials bearer tokens, HTTP basic.

Every credential maps to a stable id ("key:<k>", "client:<id>", "basic:<user>") that names its
rate-limit bucket and its line in the stats.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from sandbox.config import (
    DEFAULT_API_KEY,
    DEFAULT_BASIC_PASSWORD,
    DEFAULT_BASIC_USER,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SandboxConfig,
)

CLIENTS = {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
BASIC_USERS = {DEFAULT_BASIC_USER: DEFAULT_BASIC_PASSWORD}


@dataclass(frozen=True)
class AuthResult:
    credential: str | None
    # (status, JSON body, extra headers) when refused.
    error: tuple[int, dict[str, str], list[tuple[bytes, bytes]]] | None = None


def _refuse(error: str, message: str, challenge: str) -> AuthResult:
    return AuthResult(
        None, (401, {"error": error, "message": message}, [(b"www-authenticate", challenge.encode())])
    )


class TokenStore:
    """Issued bearer tokens with a monotonic expiry; ``issued`` keeps every one (ground truth)."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self.issued: list[str] = []
        self._lock = threading.Lock()

    def issue(self, client_id: str, ttl_s: float) -> dict[str, object]:
        token = "sbx_" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (client_id, time.monotonic() + ttl_s)
            self.issued.append(token)
        return {"access_token": token, "token_type": "Bearer", "expires_in": max(1, math.ceil(ttl_s))}

    def client_of(self, token: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(token)
            if entry is not None and entry[1] <= time.monotonic():
                del self._tokens[token]
                entry = None
        return entry[0] if entry else None


def api_keys(config: SandboxConfig) -> set[str]:
    return {DEFAULT_API_KEY, *config.api_keys}


def _pairs(defaults: dict[str, str], extra: list[str]) -> dict[str, str]:
    return {**defaults, **dict(pair.split(":", 1) for pair in extra)}


def _basic_pair(value: str) -> tuple[str, str] | None:
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def authenticate(
    headers: dict[bytes, bytes], query_string: bytes, config: SandboxConfig, tokens: TokenStore
) -> AuthResult:
    keys = api_keys(config)
    authorization = headers.get(b"authorization", b"").decode("latin-1").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer":
            if value in keys:
                return AuthResult(f"key:{value}")
            client = tokens.client_of(value)
            if client is None:
                return _refuse(
                    "invalid_token", "The access token is expired or unknown", 'Bearer error="invalid_token"'
                )
            return AuthResult(f"client:{client}")
        if scheme == "basic":
            pair = _basic_pair(value)
            if pair is None or _pairs(BASIC_USERS, config.basic_users).get(pair[0]) != pair[1]:
                return _refuse(
                    "invalid_credentials", "Bad basic auth user or password", 'Basic realm="sandbox"'
                )
            return AuthResult(f"basic:{pair[0]}")
        return _refuse("unsupported_auth_scheme", f"Unsupported scheme {scheme!r}", 'Bearer realm="sandbox"')
    key = headers.get(b"x-api-key")
    if key is None and b"api_key=" in query_string:
        key_text = dict(parse_qsl(query_string.decode("latin-1"))).get("api_key")
        key = key_text.encode() if key_text is not None else None
    if key is not None:
        key_text = key.decode("latin-1")
        if key_text in keys:
            return AuthResult(f"key:{key_text}")
        return _refuse("invalid_api_key", "Unknown API key", 'Bearer realm="sandbox"')
    return _refuse(
        "unauthorized",
        "No credentials: send an API key, a bearer token or basic auth",
        'Bearer realm="sandbox"',
    )


def client_from_token_request(
    form: dict[str, str], authorization: str, config: SandboxConfig
) -> tuple[str | None, str]:
    """Client id if the token request's client credentials are valid, else (None, error code)."""
    client_id = form.get("client_id")
    client_secret = form.get("client_secret")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        pair = _basic_pair(value)
        if pair is not None:
            client_id, client_secret = pair
    if client_id is None or client_secret is None:
        return None, "invalid_client"
    if _pairs(CLIENTS, config.clients).get(client_id) != client_secret:
        return None, "invalid_client"
    return client_id, ""


def echo_of_request(scope: dict[str, object], form: dict[str, str] | None = None) -> dict[str, object]:
    """What ``auth_error_body: echo`` adds to a 401: the request as the server saw it."""
    headers = scope.get("headers") or []
    query = scope.get("query_string") or b""
    assert isinstance(headers, list) and isinstance(query, bytes)
    echo: dict[str, object] = {
        "method": scope.get("method"),
        "path": scope.get("path"),
        "query": dict(parse_qsl(query.decode("latin-1"))),
        "headers": {name.decode("latin-1"): value.decode("latin-1") for name, value in headers},
    }
    if form is not None:
        echo["form"] = form
    return echo
