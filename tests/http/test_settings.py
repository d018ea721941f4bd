"""Connection extras are a typed model: unknown keys and bad values fail in plain words, before any
request (issue 13 cases 3 and 4); every connection the repo defines still validates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from apisync.errors import ApiConfigError, ConfigError
from apisync.http.hook import ApiHook, ApiSettings
from scripts.localstack import REPO_ROOT, SANDBOX_SERVICES, connections_env
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server

CONN = "shop_api"
KNOWN = (
    "known extras: auth, rate_limit, rate_limit_headers, timeout, max_attempts, retry, defer_after_s, "
    "idempotent_post_paths, verify, headers, api_version, test_endpoint, progress_every_pages"
)


def _ok(call: Call, server: ScriptedServer) -> Reply:
    return Reply(b'{"ok": true}')


def _config_error(api_conn: Any, server: ScriptedServer, **extras: Any) -> str:
    """The message get_conn fails with for these extras; no request may have reached the server."""
    hook = ApiHook(api_conn(server, conn_id=CONN, **extras))
    with pytest.raises(ApiConfigError) as info:
        hook.get_conn()
    assert server.calls == [], "a bad extra must fail before the first request"
    return str(info.value)


@pytest.fixture
def server() -> Any:
    with scripted_server(_ok) as handle:
        yield handle


# -- case 3: unknown extras --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        (
            {"rate_limt": {"requests": 5}},
            f"connection 'shop_api': unknown extra 'rate_limt' (did you mean 'rate_limit'?); {KNOWN}",
        ),
        (
            {"rate_limit_header": "github"},
            "connection 'shop_api': unknown extra 'rate_limit_header' (did you mean "
            f"'rate_limit_headers'?); {KNOWN}",
        ),
        (
            {"max_attempt": 3},
            f"connection 'shop_api': unknown extra 'max_attempt' (did you mean 'max_attempts'?); {KNOWN}",
        ),
        ({"cert": "/etc/ssl/client.pem"}, f"connection 'shop_api': unknown extra 'cert'; {KNOWN}"),
        ({"proxy": "http://proxy:3128"}, f"connection 'shop_api': unknown extra 'proxy'; {KNOWN}"),
        (
            {"rate_limit": {"reqests": 5}},
            "connection 'shop_api': unknown extra 'rate_limit.reqests' (did you mean 'requests'?); "
            "known keys of 'rate_limit': requests, period_s, burst, backend, path, redis_url, "
            "key_prefix, key",
        ),
        (
            {"timeout": {"connect": 1, "raed": 5}},
            "connection 'shop_api': unknown extra 'timeout.raed' (did you mean 'read'?); "
            "known keys of 'timeout': connect, read",
        ),
    ],
    ids=[
        "rate_limt",
        "rate_limit_header",
        "max_attempt",
        "cert",
        "proxy",
        "rate_limit.reqests",
        "timeout.raed",
    ],
)
def test_unknown_extras_are_refused(api_conn, server, extras: dict[str, Any], message: str) -> None:
    assert _config_error(api_conn, server, **extras) == message


def test_string_extras_are_not_sent_as_headers_only_the_headers_extra_is(api_conn, server) -> None:
    hook = ApiHook(api_conn(server, headers={"X-Tenant": "acme"}))
    hook.request("GET", "/v1/orders")
    (call,) = server.calls
    assert call.headers["x-tenant"] == "acme"
    assert not {"cert", "proxy", "rate_limit_header"} & set(call.headers)
    server.calls.clear()
    for name in ("cert", "proxy"):
        assert f"unknown extra '{name}'" in _config_error(api_conn, server, **{name: "/x"})


# -- case 4: bad values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extras", "problem"),
    [
        ({"rate_limit": {"requests": "abc"}}, "extra 'rate_limit.requests' must be a number > 0, got 'abc'"),
        ({"rate_limit": {"requests": 0}}, "extra 'rate_limit.requests' must be a number > 0, got 0"),
        (
            {"rate_limit": {"requests": 5, "period_s": -1}},
            "extra 'rate_limit.period_s' must be a number of seconds > 0, got -1",
        ),
        ({"rate_limit": {"burst": 0}}, "extra 'rate_limit.burst' must be a whole number >= 1, got 0"),
        ({"rate_limit": {"burst": 2.5}}, "extra 'rate_limit.burst' must be a whole number >= 1, got 2.5"),
        (
            {"rate_limit": {"backend": "memcached"}},
            "extra 'rate_limit.backend' must be 'sqlite' or 'redis', got 'memcached'",
        ),
        (
            {"rate_limit": {"redis_url": "redis://redis:6379/1"}},
            "extra 'rate_limit.redis_url' is used only with \"backend\": \"redis\" (the backend is 'sqlite')",
        ),
        (
            {"rate_limit": "20/s"},
            "extra 'rate_limit' must be an object {requests, period_s, burst, backend, path, redis_url, "
            "key_prefix, key}, got '20/s'",
        ),
        (
            {"timeout": "abc"},
            "extra 'timeout' must be a number of seconds > 0 or an object {connect, read}, got 'abc'",
        ),
        (
            {"timeout": -5},
            "extra 'timeout' must be a number of seconds > 0 or an object {connect, read}, got -5",
        ),
        ({"timeout": {"read": 0}}, "extra 'timeout.read' must be a number of seconds > 0, got 0"),
        ({"max_attempts": 0}, "extra 'max_attempts' must be a whole number >= 1, got 0"),
        ({"max_attempts": "many"}, "extra 'max_attempts' must be a whole number >= 1, got 'many'"),
        ({"defer_after_s": -1}, "extra 'defer_after_s' must be a number of seconds >= 0, got -1"),
        ({"progress_every_pages": 0}, "extra 'progress_every_pages' must be a whole number >= 1, got 0"),
        ({"verify": 1}, "extra 'verify' must be true, false or a CA bundle path, got 1"),
        (
            {"headers": "X-Tenant: acme"},
            "extra 'headers' must be an object {header name: value}, got a value of type str",
        ),
        ({"headers": {"X-Tenant": 7}}, "extra 'headers.X-Tenant' must be a string, got a value of type int"),
        (
            {"idempotent_post_paths": "/crm/upsert"},
            "extra 'idempotent_post_paths' must be a list of paths, got '/crm/upsert'",
        ),
        (
            {"idempotent_post_paths": ["/a", 1]},
            "extra 'idempotent_post_paths[1]' must be a path (string), got 1",
        ),
        (
            {"rate_limit_headers": "twitter"},
            "extra 'rate_limit_headers' must be one of 'auto', 'github', 'ietf', 'ietf-legacy', 'hubspot', "
            "'none' or an object {limit, remaining, reset, reset_kind, window, window_kind}, got 'twitter'",
        ),
        (
            {"rate_limit_headers": {"reset": "X-Reset"}},
            "extra 'rate_limit_headers' needs at least 'limit' or 'remaining'",
        ),
        (
            {"rate_limit_headers": {"limit": "X-Limit", "reset_kind": "unix"}},
            "extra 'rate_limit_headers.reset_kind' must be one of 'epoch', 'delta', 'epoch_ms', 'delta_ms', "
            "got 'unix'",
        ),
        (
            {"rate_limit_headers": {"limt": "X-Limit"}},
            "unknown extra 'rate_limit_headers.limt' (did you mean 'limit'?); known keys of "
            "'rate_limit_headers': limit, remaining, reset, reset_kind, window, window_kind",
        ),
    ],
)
def test_bad_values_are_named_with_what_was_expected(
    api_conn, server, extras: dict[str, Any], problem: str
) -> None:
    assert _config_error(api_conn, server, **extras) == f"connection 'shop_api': {problem}"


AUTH_TYPES = "one of 'api_key', 'bearer', 'basic', 'oauth2', 'none'"


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        ("bearer", f"extra 'auth' must be an object with a 'type': {AUTH_TYPES}, got 'bearer'"),
        ({"header": "X-API-Key"}, f"extra 'auth' needs a 'type': {AUTH_TYPES}"),
        ({"type": "kerberos"}, f"extra 'auth.type' must be {AUTH_TYPES}, got 'kerberos'"),
        (
            {"type": "api_key", "header": "X-API-Key", "query": "api_key"},
            "extra 'auth' (type 'api_key') takes exactly one of 'header' or 'query', got both",
        ),
        ({"type": "api_key", "header": 5}, "extra 'auth.header' must be a header name (string), got 5"),
        (
            {"type": "api_key", "heder": "X-API-Key"},
            "unknown extra 'auth.heder' (did you mean 'header'?); known keys of auth type 'api_key': "
            "type, header, query",
        ),
        (
            {"type": "api_key", "key": "s3cret"},
            "unknown extra 'auth.key'; known keys of auth type 'api_key': type, header, query",
        ),
        (
            {"type": "bearer", "header": "X-Token"},
            "unknown extra 'auth.header'; known keys of auth type 'bearer': type",
        ),
        ({"type": "basic", "user": "me"}, "unknown extra 'auth.user'; known keys of auth type 'basic': type"),
        (
            {"type": "none", "token_url": "/t"},
            "unknown extra 'auth.token_url'; known keys of auth type 'none': type",
        ),
        (
            {"type": "oauth2", "token_url": 5},
            "extra 'auth.token_url' must be a URL or a path (string), got 5",
        ),
        (
            {"type": "oauth2", "refresh_margin_s": -1},
            "extra 'auth.refresh_margin_s' must be a number of seconds >= 0, got -1",
        ),
        (
            {"type": "oauth2", "scopes": "read"},
            "unknown extra 'auth.scopes' (did you mean 'scope'?); known keys of auth type 'oauth2': "
            "type, token_url, scope, refresh_margin_s",
        ),
    ],
    ids=[
        "string",
        "no-type",
        "unknown-type",
        "api_key-both",
        "api_key-header-not-string",
        "api_key-typo",
        "api_key-secret-in-extras",
        "bearer-extra-key",
        "basic-extra-key",
        "none-extra-key",
        "oauth2-token_url",
        "oauth2-margin",
        "oauth2-typo",
    ],
)
def test_each_auth_type_refuses_bad_shapes(api_conn, server, auth: Any, problem: str) -> None:
    assert _config_error(api_conn, server, auth=auth) == f"connection 'shop_api': {problem}"


def test_every_problem_is_one_line_and_it_is_a_config_error(api_conn, server) -> None:
    message = _config_error(api_conn, server, rate_limt={}, max_attempts=0, timeout={"read": "long"})
    assert message.splitlines() == [
        "connection 'shop_api': extra 'timeout.read' must be a number of seconds > 0, got 'long'",
        "connection 'shop_api': extra 'max_attempts' must be a whole number >= 1, got 0",
        f"connection 'shop_api': unknown extra 'rate_limt' (did you mean 'rate_limit'?); {KNOWN}",
    ]
    with pytest.raises(ConfigError):  # the Airflow retry_policy fails a ConfigError at once
        ApiHook(api_conn(server, max_attempts=0)).get_conn()


def test_the_test_button_reports_the_same_message_before_any_request(api_conn, server) -> None:
    expected = _config_error(api_conn, server, rate_limit={"requests": "abc"})
    ok, message = ApiHook(CONN).test_connection()
    assert (ok, message) == (False, expected)
    assert server.calls == []
    ok, message = ApiHook(api_conn(server)).test_connection()
    assert ok, message


# -- what stays valid ----------------------------------------------------------------------------


def test_a_number_timeout_sets_read_and_caps_connect() -> None:
    assert ApiSettings.from_extras({"timeout": 30}).timeout == (10.0, 30.0)
    assert ApiSettings.from_extras({"timeout": 5}).timeout == (5.0, 5.0)
    assert ApiSettings.from_extras({"timeout": {"connect": 2}}).timeout == (2.0, 60.0)
    assert ApiSettings.from_extras({}).timeout == (10.0, 60.0)


def test_verify_is_a_bool_or_a_ca_bundle_path() -> None:
    assert ApiSettings.from_extras({"verify": "false"}).verify is False
    assert ApiSettings.from_extras({"verify": "/etc/ssl/ca.pem"}).verify == "/etc/ssl/ca.pem"
    assert ApiSettings.from_extras({}).verify is True


def test_the_example_and_the_docstring_name_every_extra() -> None:
    from apisync.http import hook

    settings = ApiSettings.from_extras(hook.EXTRAS_EXAMPLE)
    assert settings.retry.max_attempts == 8 and settings.rate_limit.burst == 5
    documented = set(re.findall(r"^    (\w+) ", hook.__doc__ or "", re.MULTILINE))
    assert documented == {field.alias or name for name, field in ApiSettings.model_fields.items()}


def _repo_connections() -> dict[str, dict[str, Any]]:
    """Every http connection with extras the repo defines: localstack, compose, kubernetes, README."""
    found: dict[str, dict[str, Any]] = {}
    urls = {service.name: f"http://127.0.0.1:{service.port}" for service in SANDBOX_SERVICES}
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())
    for source, env in (
        ("localstack", connections_env(urls, Path("/nonexistent"))),
        ("localstack-redis", connections_env(urls, Path("/nonexistent"), rate_budget="redis://r:6379/1")),
        ("compose", compose["x-airflow-common"]["environment"]),
    ):
        for var, value in env.items():
            if var.startswith("AIRFLOW_CONN_") and str(value).startswith("{"):
                found[f"{source}:{var}"] = json.loads(value)
    pod = yaml.safe_load((REPO_ROOT / "kubernetes" / "pod_template.yaml").read_text())
    for entry in pod["spec"]["containers"][0]["env"]:
        if entry["name"].startswith("AIRFLOW_CONN_") and str(entry.get("value", "")).startswith("{"):
            found[f"kubernetes:{entry['name']}"] = json.loads(entry["value"])
    readme = (REPO_ROOT / "README.md").read_text()
    for conn_id, extra in re.findall(r"^\| `(\w+_api)` \|[^|]*\|[^|]*\| `(\{.*?\})`", readme, re.MULTILINE):
        found[f"README:{conn_id}"] = {"conn_type": "apisync", "extra": json.loads(extra)}
    return {key: conn for key, conn in found.items() if conn.get("conn_type") == "apisync"}


REPO_CONNECTIONS = _repo_connections()


def test_the_repo_defines_the_connections_we_expect() -> None:
    sources = {key.split(":")[0] for key in REPO_CONNECTIONS}
    assert sources == {"localstack", "localstack-redis", "compose", "kubernetes", "README"}
    assert sum(key.startswith("README:") for key in REPO_CONNECTIONS) == 5


@pytest.mark.parametrize("key", sorted(REPO_CONNECTIONS))
def test_every_connection_the_repo_defines_validates(key: str) -> None:
    ApiSettings.from_extras(REPO_CONNECTIONS[key].get("extra") or {}, conn_id=key)


def test_every_key_has_words_for_its_errors() -> None:
    from typing import get_args

    from apisync.http import settings
    from apisync.http.headers import DIALECTS

    assert get_args(settings.DialectName) == DIALECTS
    keys = {
        *settings._keys(ApiSettings),
        *(f"{name}.{key}" for name, model in settings._NESTED.items() for key in settings._keys(model)),
        *(f"auth.{key}" for model in settings.AUTH_SETTINGS.values() for key in settings._keys(model)),
    }
    assert keys <= set(settings.SHAPES)
