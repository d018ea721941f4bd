"""API key, OAuth2 client credentials (with expiry) and basic auth; nothing without credentials."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from sandbox.testing import SandboxHandle

TOKEN_TTL_S = 1


@pytest.fixture(scope="module")
def sb(module_sandbox: Callable[..., SandboxHandle]) -> SandboxHandle:
    return module_sandbox(records=20, token_ttl=TOKEN_TTL_S, api_keys=["extra-key"])


def _orders(sb: SandboxHandle, **kwargs: object) -> requests.Response:
    return requests.get(
        f"{sb.url}/v1/orders", params={"limit": 1, **kwargs.pop("params", {})}, timeout=10, **kwargs
    )


def _token(sb: SandboxHandle, **kwargs: object) -> requests.Response:
    return requests.post(f"{sb.url}/oauth/token", timeout=10, **kwargs)


def test_no_credentials_is_401(sb: SandboxHandle) -> None:
    response = _orders(sb)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert "www-authenticate" in response.headers


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"X-API-Key": "sandbox-key"}},
        {"params": {"api_key": "sandbox-key"}},
        {"headers": {"Authorization": "Bearer sandbox-key"}},
        {"headers": {"X-API-Key": "extra-key"}},
        {"auth": ("sandbox", "sandbox")},
    ],
    ids=["header", "query", "bearer-key", "extra-key", "basic"],
)
def test_valid_credentials(sb: SandboxHandle, kwargs: dict) -> None:
    assert _orders(sb, **kwargs).status_code == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"X-API-Key": "wrong"}},
        {"params": {"api_key": "wrong"}},
        {"headers": {"Authorization": "Bearer wrong"}},
        {"auth": ("sandbox", "wrong")},
    ],
    ids=["header", "query", "bearer", "basic"],
)
def test_invalid_credentials_are_401(sb: SandboxHandle, kwargs: dict) -> None:
    response = _orders(sb, **kwargs)
    assert response.status_code == 401
    assert response.json()["error"]


def test_oauth_token_expires_and_a_new_one_works(sb: SandboxHandle) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
    }
    token = _token(sb, data=form).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == TOKEN_TTL_S
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert _orders(sb, headers=bearer).status_code == 200
    time.sleep(TOKEN_TTL_S + 0.2)
    expired = _orders(sb, headers=bearer)
    assert expired.status_code == 401
    assert expired.json()["error"] == "invalid_token"
    fresh = _token(
        sb, data={"grant_type": "client_credentials"}, auth=("sandbox-client", "sandbox-secret")
    ).json()
    assert fresh["access_token"] != token["access_token"]
    assert _orders(sb, headers={"Authorization": f"Bearer {fresh['access_token']}"}).status_code == 200
    assert "client:sandbox-client" in sb.stats()["by_credential"]


def test_token_endpoint_rejects_bad_requests(sb: SandboxHandle) -> None:
    bad_secret = {"grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "nope"}
    response = _token(sb, data=bad_secret)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    response = _token(
        sb, data={"grant_type": "password", "client_id": "sandbox-client", "client_secret": "sandbox-secret"}
    )
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_stats_count_per_credential(sb: SandboxHandle) -> None:
    sb.reset()
    _orders(sb, headers={"X-API-Key": "sandbox-key"})
    _orders(sb, auth=("sandbox", "sandbox"))
    _orders(sb)
    stats = sb.stats()
    assert stats["requests"] == 3
    assert stats["by_status"] == {"200": 2, "401": 1}
    assert stats["by_credential"]["key:sandbox-key"]["requests"] == 1
    assert stats["by_credential"]["basic:sandbox"]["200"] == 1
