"""Auth strategies from the connection, OAuth2 refresh mid-sync, and secrets kept out of every output."""

from __future__ import annotations

import logging

import pytest

from apisync.http import ApiAuthError, ApiHook
from apisync.redaction import redact_url

PAGINATION = {"type": "offset", "page_size": 10}


def _count(hook: ApiHook) -> int:
    return sum(len(page.records) for page in hook.paginate("/api/orders", pagination=PAGINATION))


@pytest.mark.parametrize(
    ("auth", "login", "password"),
    [
        ({"type": "api_key", "header": "X-API-Key"}, None, "sandbox-key"),
        ({"type": "api_key", "query": "api_key"}, None, "sandbox-key"),
        ({"type": "bearer"}, None, "sandbox-key"),
        ({"type": "basic"}, "sandbox", "sandbox"),
        ({"type": "oauth2", "token_url": "/oauth/token"}, "sandbox-client", "sandbox-secret"),
    ],
    ids=["api_key_header", "api_key_query", "bearer", "basic", "oauth2"],
)
def test_each_auth_type_reads_everything(sandbox, api_conn, auth, login, password) -> None:
    sb = sandbox(records=30)
    hook = ApiHook(api_conn(sb, auth=auth, login=login, password=password))
    assert _count(hook) == 30
    ok, message = hook.test_connection()
    assert ok, message


def test_wrong_key_fails_at_once_without_leaking_it(sandbox, api_conn) -> None:
    sb = sandbox(records=5)
    hook = ApiHook(api_conn(sb, auth={"type": "api_key", "query": "api_key"}, password="wrong-key-123"))
    with pytest.raises(ApiAuthError) as info:
        hook.request("GET", "/v1/orders")
    assert info.value.status == 401 and "wrong-key-123" not in str(info.value)
    assert "api_key=***" in str(info.value)
    ok, message = hook.test_connection()
    assert not ok and "wrong-key-123" not in message


def test_oauth2_token_expiry_mid_sync_refreshes_and_repeats(sandbox, api_conn) -> None:
    """Tokens live 1 s, pages take 0.3 s: the cached token expires during the sync."""
    sb = sandbox(records=60, token_ttl=1, latency_ms=300)
    conn_id = api_conn(
        sb,
        auth={"type": "oauth2", "token_url": "/oauth/token", "refresh_margin_s": 0},
        login="sandbox-client",
        password="sandbox-secret",
    )
    hook = ApiHook(conn_id)
    assert _count(hook) == 60
    assert hook._auth.refreshes >= 2, "a new token was fetched after the first one expired"
    served_401 = sb.stats()["by_status"].get("401", 0)
    # Every 401 (token expired in flight) was followed by one refresh and a successful repeat.
    assert hook.stats()["token_refreshes"] >= served_401


def test_secrets_never_reach_logs_errors_or_page_state(sandbox, api_conn, caplog, capsys) -> None:
    sb = sandbox(records=25, retry_after="zero")
    caplog.set_level(logging.DEBUG)
    conn_id = api_conn(sb, auth={"type": "api_key", "query": "api_key"}, max_attempts=2)
    hook = ApiHook(conn_id)
    pages = list(hook.paginate("/api/v2/orders", pagination={"type": "next_url", "page_size": 10}))
    sb.storm(5)
    with pytest.raises(Exception) as info:
        hook.request("GET", "/v1/orders")
    oauth = ApiHook(
        api_conn(
            sb,
            auth={"type": "oauth2", "token_url": "/oauth/missing"},
            login="sandbox-client",
            password="sandbox-secret",
        )
    )
    with pytest.raises(Exception) as oauth_info:
        oauth.request("GET", "/v1/orders")
    outputs = [
        caplog.text,
        *capsys.readouterr(),
        str(info.value),
        str(oauth_info.value),
        repr([(p.url, p.state) for p in pages]),
        repr(hook.stats()),
    ]
    assert len(pages) == 3
    for output in outputs:
        assert "sandbox-key" not in output
        assert "sandbox-secret" not in output
    assert all("api_key=***" in p.url for p in pages)
    assert all("api_key" not in repr(p.state) for p in pages)


def test_redact_url() -> None:
    url = "https://user:pw@api.example.com/v1/x?api_key=s3cr3t&limit=5&token=abc"
    redacted = redact_url(url)
    assert "s3cr3t" not in redacted and "abc" not in redacted and "pw" not in redacted
    assert "limit=5" in redacted
