"""Auth strategies from the connection, OAuth2 refresh mid-sync, and secrets kept out of every output."""

from __future__ import annotations

import base64
import logging
import uuid

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


# -- Issue 13 case 1: an API whose 401 body echoes the request (sandbox auth_error_body=echo) --------


def _secret(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def _leaks(text: str, *secrets: str) -> list[str]:
    """The secrets (or their base64, or an 8-character prefix of either) found in ``text``."""
    found = []
    for secret in secrets:
        for form in (secret, base64.b64encode(secret.encode()).decode()):
            if form[:8] in text:
                found.append(form)
    return found


def test_oauth2_access_tokens_echoed_in_a_401_body_are_masked(sandbox, api_conn) -> None:
    client_secret = _secret("cs_")
    sb = sandbox(records=30, clients=[f"leak-client:{client_secret}"], auth_error_body="echo", reject_after=1)
    hook = ApiHook(
        api_conn(sb, auth={"type": "oauth2"}, login="leak-client", password=client_secret),
    )
    with pytest.raises(ApiAuthError) as info:
        list(hook.paginate("/api/orders", pagination=PAGINATION))
    tokens = sb.issued_tokens()
    assert len(tokens) == 2, "the 401 made the hook fetch a second token and repeat once"
    message = str(info.value)
    assert '"authorization":"***"' in message, "the echoed token reached the message, masked"
    assert _leaks(message + info.value.body, client_secret, *tokens) == []


def test_basic_credentials_echoed_in_a_401_body_are_masked(sandbox, api_conn) -> None:
    password = _secret("bpw_")
    sb = sandbox(records=5, auth_error_body="echo")
    hook = ApiHook(api_conn(sb, auth={"type": "basic"}, login="leak-user", password=password))
    with pytest.raises(ApiAuthError) as info:
        hook.request("GET", "/v1/orders")
    basic = base64.b64encode(f"leak-user:{password}".encode()).decode()
    message = str(info.value)
    assert "leak-user" not in basic and basic[:8] not in message and password[:8] not in message
    assert "authorization" in message.lower(), "the echo really reached the message"


def test_secret_query_parameters_and_cookies_never_reach_hook_errors(sandbox, api_conn) -> None:
    key, sig, password, other_key, cookie = (_secret(p) for p in ("ak_", "sig_", "pw_", "k_", "ck_"))
    sb = sandbox(records=5, auth_error_body="echo")
    hook = ApiHook(
        api_conn(
            sb,
            auth={"type": "api_key", "query": "api_key"},
            password=key,
            headers={"Cookie": f"theme=dark; session={cookie}"},
        )
    )
    with pytest.raises(ApiAuthError) as info:
        hook.request("GET", f"/v1/orders?sig={sig}&password={password}&key={other_key}")
    message = str(info.value)
    assert "sig=***" in message and "password=***" in message and "key=***" in message
    assert _leaks(message + info.value.url + info.value.body, key, sig, password, other_key, cookie) == []
    assert '"cookie":"***"' in message, "the echoed cookie header reached the message"


def test_a_key_straddling_the_body_cut_never_survives_in_the_error(sandbox, api_conn) -> None:
    """The echoed X-API-Key lands at every position around the 500-character cut in turn."""
    key = _secret("straddle_")
    sb = sandbox(records=5, auth_error_body="echo")
    hook = ApiHook(api_conn(sb, auth={"type": "api_key", "header": "X-API-Key"}, password=key))
    leaked = []
    for pad in range(0, 420):
        with pytest.raises(ApiAuthError) as info:
            hook.request("GET", "/v1/orders", headers={"X-Pad": "p" * pad})
        message = str(info.value)
        if any(key[:n] in message for n in range(6, len(key) + 1)):
            leaked.append(pad)
    assert leaked == []
    assert "p" * 400 not in message and message.endswith("…"), "the cut really was reached"
