"""Retries against real failures: 429 storms, Retry-After forms, 5xx bursts, 4xx, exhausted retries."""

from __future__ import annotations

import io
import json
import time

import pytest
import requests
import tenacity
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from apisync.http import ApiClientError, ApiHook, RetriesExhaustedError
from apisync.http.retry import MIN_RETRY_WAIT_S, RetryableResponseError, RetryPolicy

PAGINATION = {"type": "offset", "page_size": 25}


def _ids(hook: ApiHook, endpoint: str = "/api/orders") -> list[str]:
    return [r["id"] for page in hook.paginate(endpoint, pagination=PAGINATION) for r in page.records]


@pytest.mark.parametrize("retry_after", ["delta", "date"])
def test_storm_is_waited_out_honouring_retry_after(sandbox, api_conn, retry_after: str) -> None:
    sb = sandbox(records=60, retry_after=retry_after)
    hook = ApiHook(api_conn(sb))
    sb.storm(2)
    started = time.monotonic()
    ids = _ids(hook)
    assert sorted(ids) == sorted(r["id"] for r in sb.truth("orders"))
    stats = hook.stats()
    assert stats["r429"] >= 1 and stats["retries"] == stats["r429"]
    # Retry-After (>= 1 s, rounded up) was honoured: few attempts, and we waited out the storm.
    assert stats["r429"] <= 3
    assert time.monotonic() - started >= 1.5


def test_retry_after_zero_does_not_hot_loop(sandbox, api_conn) -> None:
    sb = sandbox(records=10, retry_after="zero")
    hook = ApiHook(api_conn(sb))
    sb.storm(3)
    ids = _ids(hook)
    assert len(ids) == 10
    served = sb.stats()["requests"]
    # 3 s of storm with backoff 0.5, 1, 2... s: a handful of requests, not hundreds.
    assert served <= 8, served


def test_5xx_bursts_are_retried_and_nothing_is_lost(sandbox, api_conn) -> None:
    sb = sandbox(records=200, fault_5xx=0.3, seed=7)
    hook = ApiHook(api_conn(sb, max_attempts=10))
    ids = _ids(hook)
    assert sorted(ids) == sorted(r["id"] for r in sb.truth("orders"))
    assert hook.stats()["r5xx"] >= 1
    assert sb.stats()["faults"].get("5xx", 0) == hook.stats()["r5xx"]


def test_timeouts_and_disconnects_are_retried(sandbox, api_conn) -> None:
    sb = sandbox(records=120, fault_timeout=0.15, fault_disconnect=0.15, timeout_hang_s=3, seed=3)
    hook = ApiHook(api_conn(sb, timeout={"connect": 2, "read": 0.5}, max_attempts=10))
    ids = [
        r["id"]
        for page in hook.paginate("/api/orders", pagination={"type": "offset", "page_size": 10})
        for r in page.records
    ]
    assert sorted(ids) == sorted(r["id"] for r in sb.truth("orders"))
    faults = sb.stats()["faults"]
    assert faults.get("timeout", 0) + faults.get("disconnect", 0) >= 1
    assert hook.stats()["retries"] == faults.get("timeout", 0) + faults.get("disconnect", 0)


def test_4xx_fails_at_once_with_body_excerpt(sandbox, api_conn) -> None:
    sb = sandbox(records=10)
    hook = ApiHook(api_conn(sb))
    with pytest.raises(ApiClientError) as info:
        hook.request("GET", "/v1/orders", params={"limit": 100000})
    assert info.value.status == 400
    assert "/v1/orders" in str(info.value) and "400" in str(info.value)
    assert info.value.body and info.value.body in str(info.value)
    assert hook.stats()["requests"] == 1 and hook.stats()["retries"] == 0


def test_exhausted_retries_say_what_where_how_often_how_long(sandbox, api_conn) -> None:
    sb = sandbox(records=10, retry_after="zero")
    hook = ApiHook(api_conn(sb, auth={"type": "api_key", "query": "api_key"}, max_attempts=3))
    sb.storm(30)
    with pytest.raises(RetriesExhaustedError) as info:
        hook.request("GET", "/v1/orders", params={"limit": 5})
    error = info.value
    message = str(error)
    assert error.status == 429 and error.attempts == 3 and error.waited_s >= 1.0
    assert "GET" in message and "/v1/orders" in message and "3 attempts" in message
    assert "HTTP 429" in message and "waited" in message
    assert "sandbox-key" not in message
    assert sb.stats()["requests"] == 3


def test_non_idempotent_post_is_not_retried_on_5xx(sandbox, api_conn) -> None:
    sb = sandbox(records=10, fault_5xx=1.0)
    hook = ApiHook(api_conn(sb))
    mutation = {"query": "mutation { deleteProduct(id: 1) { id } }"}
    with pytest.raises(Exception) as info:
        hook.request("POST", "/graphql", json=mutation)
    assert not isinstance(info.value, RetriesExhaustedError)
    assert sb.stats()["requests"] == 1


def test_idempotency_rules() -> None:
    policy = RetryPolicy.for_connection(8, ["/crm/v3/objects/contacts/batch/upsert"])
    assert policy.is_idempotent("GET", "http://h/v1/orders")
    assert policy.is_idempotent("PUT", "http://h/x") and policy.is_idempotent("DELETE", "http://h/x")
    assert policy.is_idempotent("POST", "http://h/crm/v3/objects/contacts/batch/upsert")
    assert not policy.is_idempotent("POST", "http://h/crm/v3/objects/contacts")
    assert policy.is_idempotent("POST", "http://h/graphql", {"query": "query { a }"})
    assert policy.is_idempotent("POST", "http://h/graphql", {"query": "# c\n{ a }"})
    assert not policy.is_idempotent("POST", "http://h/graphql", {"query": " mutation { x }"})
    assert policy.wait_for(1, 30.0) == 30.0
    assert policy.wait_for(1, 0.0) >= 0.5


# -- offline: the tenacity pieces on their own ----------------------------------------------------
def test_wait_is_the_backoff_but_at_least_retry_after() -> None:
    policy = RetryPolicy()
    sleeps: list[float] = []
    replies = iter([RetryableResponseError(429, 30.0), RetryableResponseError(429, 0.0), None])

    def attempt() -> str:
        error = next(replies)
        if error is not None:
            raise error
        return "ok"

    retrying = tenacity.Retrying(
        wait=policy.wait,
        sleep=sleeps.append,
        retry=tenacity.retry_if_exception_type(RetryableResponseError),
        stop=tenacity.stop_after_attempt(5),
    )
    assert retrying(attempt) == "ok"
    assert sleeps[0] == 30.0  # Retry-After beats a 0.5-1.5 s backoff
    assert MIN_RETRY_WAIT_S <= sleeps[1] <= 1 + 2 * MIN_RETRY_WAIT_S  # Retry-After: 0 -> the backoff


def _refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.ConnectionError(MaxRetryError(None, "/v1/orders", reason=reason))  # type: ignore[arg-type]


def _dropped() -> requests.ConnectionError:
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))


@pytest.mark.parametrize(
    ("error", "for_any_method", "when_idempotent"),
    [
        (_refused(), True, True),  # never sent: safe for every method
        (requests.ConnectTimeout("connect timed out"), True, True),
        (_dropped(), False, True),  # the server may have acted on it
        (requests.ReadTimeout("read timed out"), False, True),
        (requests.ConnectionError("NewConnectionError: Connection refused"), False, True),  # text only
        (requests.exceptions.InvalidURL("nope"), False, False),
        (ValueError("not a transport failure"), False, False),
    ],
)
def test_transport_failures_are_retried_by_type(
    error: BaseException, for_any_method: bool, when_idempotent: bool
) -> None:
    policy = RetryPolicy()
    assert policy.should_retry(error, idempotent=False) is for_any_method
    assert policy.should_retry(error, idempotent=True) is when_idempotent
    assert policy.should_retry(RetryableResponseError(503, None), idempotent=False)


def test_exhausted_retries_carry_the_last_body(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    conn = {"conn_type": "http", "host": "http://api.test", "extra": {"max_attempts": 3}}
    conn["extra"]["rate_limit"] = {"path": str(tmp_path / "rl.sqlite")}
    monkeypatch.setenv("AIRFLOW_CONN_RETRY_OFFLINE", json.dumps(conn))
    hook = ApiHook("retry_offline")
    session = hook.get_conn()
    assert hook._retrying is not None
    hook._retrying.sleep = lambda seconds: None  # one Retrying per hook: its sleep is the only clock
    sent: list[str] = []

    def reply(method: str, url: str, **kwargs: object) -> requests.Response:
        sent.append(url)
        response = requests.Response()
        response.status_code, response.url = 503, url
        response.raw = io.BytesIO(b'{"error": "down for maintenance"}')
        return response

    monkeypatch.setattr(session, "request", reply)
    with pytest.raises(RetriesExhaustedError) as info:
        hook.request("GET", "/v1/orders")
    assert len(sent) == 3 and info.value.attempts == 3 and info.value.status == 503
    assert "down for maintenance" in str(info.value) and "3 attempts" in str(info.value)
    assert hook.stats()["retries"] == 2 and hook.stats()["r5xx"] == 3
