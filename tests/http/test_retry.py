"""Retries against real failures: 429 storms, Retry-After forms, 5xx bursts, 4xx, exhausted retries."""

from __future__ import annotations

import time

import pytest

from apisync.http import ApiClientError, ApiHook, RetriesExhaustedError
from apisync.http.retry import RetryPolicy

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
    policy = RetryPolicy.from_extras({"idempotent_post_paths": ["/crm/v3/objects/contacts/batch/upsert"]})
    assert policy.is_idempotent("GET", "http://h/v1/orders")
    assert policy.is_idempotent("PUT", "http://h/x") and policy.is_idempotent("DELETE", "http://h/x")
    assert policy.is_idempotent("POST", "http://h/crm/v3/objects/contacts/batch/upsert")
    assert not policy.is_idempotent("POST", "http://h/crm/v3/objects/contacts")
    assert policy.is_idempotent("POST", "http://h/graphql", {"query": "query { a }"})
    assert policy.is_idempotent("POST", "http://h/graphql", {"query": "# c\n{ a }"})
    assert not policy.is_idempotent("POST", "http://h/graphql", {"query": " mutation { x }"})
    assert policy.wait_for(1, 30.0) == 30.0
    assert policy.wait_for(1, 0.0) >= 0.5
