"""Every pagination dialect against the sandbox: complete vs ground truth, resumable from any page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apisync.http import ApiHook, GraphQLError, MalformedResponseError
from sandbox.testing import SandboxHandle, run_sandbox

RECORDS = 230
PAGE = 40
GRAPHQL = (
    "query($first: Int!, $after: String) { products(first: $first, after: $after) "
    "{ edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"
)

# name -> (resource, endpoint, method, pagination, json)
DIALECTS: dict[str, tuple[str, str, str, dict[str, Any], Any]] = {
    "cursor_body": ("orders", "/v1/orders", "GET", {"type": "cursor_body", "page_size": PAGE}, None),
    "link_header": (
        "issues",
        "/repos/acme/shop/issues",
        "GET",
        {"type": "link_header", "page_size": PAGE},
        None,
    ),
    "hubspot": (
        "customers",
        "/crm/v3/objects/customers",
        "GET",
        {"type": "hubspot", "page_size": PAGE},
        None,
    ),
    "offset": ("orders", "/api/orders", "GET", {"type": "offset", "page_size": PAGE}, None),
    "page_number": ("issues", "/api/v2/issues", "GET", {"type": "page_number", "page_size": PAGE}, None),
    "next_url": ("customers", "/api/v2/customers", "GET", {"type": "next_url", "page_size": PAGE}, None),
    "graphql_relay": (
        "products",
        "/graphql",
        "POST",
        {"type": "graphql_relay", "connection_path": "data.products", "page_size": PAGE},
        {"query": GRAPHQL, "variables": {}},
    ),
}


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SandboxHandle]:
    # fault_repeat: some pages start with the previous page's last row; the client must drop it.
    with run_sandbox(records=RECORDS, fault_repeat=0.3) as sb:
        yield sb


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_dialect_complete_and_resumable(dialect: str, shared_sandbox: SandboxHandle, api_conn) -> None:
    resource, endpoint, method, pagination, body = DIALECTS[dialect]
    conn_id = api_conn(shared_sandbox)
    seen: list[Any] = []
    hook = ApiHook(conn_id)
    pages = hook.paginate(endpoint, pagination=pagination, method=method, json=body)
    for page in pages:
        seen += [r["id"] for r in page.records]
        if page.number == 2:
            resume_state = page.state
            break
    pages.close()
    # A fresh hook (as after a deferral or a task retry) continues after page 2.
    numbers = []
    for page in ApiHook(conn_id).paginate(
        endpoint, pagination=pagination, method=method, json=body, state=resume_state
    ):
        numbers.append(page.number)
        seen += [r["id"] for r in page.records]
    truth = [r["id"] for r in shared_sandbox.truth(resource)]
    assert len(seen) == len(set(seen)), "a record was repeated"
    assert set(seen) == set(truth), "a record was missed"
    assert numbers[0] == 3 and numbers == list(range(3, 3 + len(numbers)))
    assert hook.stats()["pages"] == 2 and hook.stats()["records"] > 0


def test_window_filter_matches_truth(shared_sandbox: SandboxHandle, api_conn) -> None:
    gte, lt = "2026-01-03T00:00:00Z", "2026-01-05T00:00:00Z"
    hook = ApiHook(api_conn(shared_sandbox))
    ids = [
        r["id"]
        for page in hook.paginate(
            "/api/orders", params={"updated_gte": gte, "updated_lt": lt}, pagination="offset"
        )
        for r in page.records
    ]
    truth = [r["id"] for r in shared_sandbox.truth("orders", updated_gte=gte, updated_lt=lt)]
    assert 0 < len(truth) < RECORDS
    assert sorted(ids) == sorted(truth)


def test_pages_stream_lazily(shared_sandbox: SandboxHandle, api_conn) -> None:
    hook = ApiHook(api_conn(shared_sandbox))
    pages = hook.paginate("/v1/orders", pagination={"type": "cursor_body", "page_size": 10})
    first = next(pages)
    assert first.number == 1 and len(first.records) == 10
    assert hook.stats()["requests"] == 1  # nothing fetched ahead
    pages.close()


def test_graphql_errors_in_200_raise(shared_sandbox: SandboxHandle, api_conn) -> None:
    hook = ApiHook(api_conn(shared_sandbox))
    with pytest.raises(GraphQLError) as info:
        list(
            hook.paginate(
                "/graphql",
                method="POST",
                json={"query": "query { products(first: 5) { nosuchfield { x } } ", "variables": {}},
                pagination={"type": "graphql_relay", "connection_path": "data.products"},
            )
        )
    assert info.value.errors and "/graphql" in str(info.value)


def test_malformed_json_names_page_and_url(sandbox, api_conn) -> None:
    sb = sandbox(records=50, fault_malformed=1.0)
    hook = ApiHook(api_conn(sb, auth={"type": "api_key", "query": "api_key"}))
    with pytest.raises(MalformedResponseError) as info:
        list(hook.paginate("/v1/orders", pagination={"type": "cursor_body", "page_size": 10}))
    message = str(info.value)
    assert "page 1" in message and "/v1/orders" in message and "invalid JSON" in message
    assert "sandbox-key" not in message and "api_key=***" in message


def test_truncated_pages_are_read_again_and_nothing_is_lost(sandbox, api_conn) -> None:
    sb = sandbox(records=300, fault_malformed=0.15, seed=11)
    hook = ApiHook(api_conn(sb))
    pages = list(hook.paginate("/v1/orders", pagination={"type": "cursor_body", "page_size": 10}))
    ids = [record["id"] for page in pages for record in page.records]
    assert sorted(ids) == sorted(record["id"] for record in sb.truth("orders"))
    assert len(ids) == len(set(ids))
    assert sb.stats()["faults"]["malformed"] > 0
    assert hook.stats()["retries"] >= sb.stats()["faults"]["malformed"]
