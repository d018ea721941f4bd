"""Every pagination dialect against the sandbox: complete vs ground truth, resumable from any page."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from apisync.errors import PaginationError
from apisync.http import ApiHook, GraphQLError, MalformedResponseError
from apisync.http.body import RawRecords
from sandbox.testing import SandboxHandle, run_sandbox
from tests.http.scripted_server import Call, Reply, Script, ScriptedServer, scripted_server

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
    "header_cursor": ("orders", "/cursor/orders", "GET", {"type": "header_cursor", "page_size": PAGE}, None),
    "range_header": ("issues", "/range/issues", "GET", {"type": "range_header", "page_size": PAGE}, None),
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


# -- issue 9: pathological paging against a scripted server ---------------------------------------
def _issue(number: int, name: str = "", updated: str = "2026-01-02T00:00:00Z") -> dict[str, Any]:
    return {"id": number, "name": name or f"issue {number}", "updated_at": updated}


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _two_pages(first: list[Any], second: bytes) -> Script:
    """GitHub-style: page 1 (with a next link), then page 2 (raw bytes, no link)."""

    def script(call: Call, server: ScriptedServer) -> Reply:
        if call.query.get("page") == "2":
            return Reply(second)
        return Reply(_json(first), headers={"Link": f'<{server.url}/issues?page=2>; rel="next"'})

    return script


def _records(hook: ApiHook, pagination: dict[str, Any], **kwargs: Any) -> list[Any]:
    return [
        record
        for page in hook.paginate("/issues", pagination=pagination, **kwargs)
        for record in page.records
    ]


def test_case2_newer_version_of_a_record_on_the_next_page_is_kept(api_conn) -> None:
    old, newer = _issue(1, "old"), _issue(1, "new", "2026-01-03T00:00:00Z")
    with scripted_server(_two_pages([old, _issue(2)], _json([newer, _issue(3)]))) as server:
        hook = ApiHook(api_conn(server))
        records = _records(hook, {"type": "link_header"})
    assert records == [old, _issue(2), newer, _issue(3)]
    assert hook.stats()["records"] == 4 and hook.stats()["repeated"] == 0


def test_case2_a_byte_identical_repeat_is_dropped_and_counted_also_after_a_resume(api_conn) -> None:
    first = [_issue(1), _issue(2)]
    with scripted_server(_two_pages(first, _json([_issue(2), _issue(3)]))) as server:
        conn_id = api_conn(server)
        hook = ApiHook(conn_id)
        assert _records(hook, {"type": "link_header"}) == [_issue(1), _issue(2), _issue(3)]
        assert hook.stats()["repeated"] == 1 and hook.stats()["records"] == 3
        # Deferred after page 1: the resumed read still knows page 1's records.
        pages = ApiHook(conn_id).paginate("/issues", pagination={"type": "link_header"})
        state = json.loads(json.dumps(next(pages).state))
        pages.close()
        resumed = ApiHook(conn_id)
        rest = [
            r
            for p in resumed.paginate("/issues", pagination={"type": "link_header"}, state=state)
            for r in p.records
        ]
    assert rest == [_issue(3)]
    assert resumed.stats()["repeated"] == 1


def test_case2_an_undecodable_record_passes_the_repeat_guard_untouched(api_conn) -> None:
    # Record 2 again, now with a byte that is not UTF-8: normalize quarantines it, not the paginator.
    broken = b'{"id": 2, "name": "issue \xff", "updated_at": "2026-01-02T00:00:00Z"}'
    with scripted_server(_two_pages([_issue(1), _issue(2)], b"[" + broken + b"]")) as server:
        hook = ApiHook(api_conn(server))
        pages = list(hook.paginate("/issues", pagination={"type": "link_header"}))
    assert len(pages[1].records) == 1
    assert isinstance(pages[1].records, RawRecords) and pages[1].records.jsonl() == broken
    assert pages[1].state["done"] is True
    assert hook.stats()["repeated"] == 0


def test_case2_an_undecodable_last_record_still_gives_the_cursor(api_conn) -> None:
    broken = b'{"id": "o2", "name": "\xff"}'

    def script(call: Call, server: ScriptedServer) -> Reply:
        if call.query.get("starting_after") == "o2":
            return Reply(_json({"data": [{"id": "o3"}], "has_more": False}))
        return Reply(b'{"data": [{"id": "o1"}, ' + broken + b'], "has_more": true}')

    with scripted_server(script) as server:
        pages = list(ApiHook(api_conn(server)).paginate("/orders", pagination={"type": "cursor_body"}))
    assert [len(page.records) for page in pages] == [2, 1]
    assert pages[0].records.jsonl().endswith(broken)


def _pages_only_when_asked(total: int, default_size: int) -> Script:
    """A server that paginates (Link header) only when the request names a page: 417 issues, the
    first 100 by default."""

    def script(call: Call, server: ScriptedServer) -> Reply:
        size = int(call.query.get("per_page", default_size))
        if "page" not in call.query:
            return Reply(_json([_issue(n) for n in range(1, min(size, total) + 1)]))
        number = int(call.query["page"])
        page = [_issue(n) for n in range((number - 1) * size + 1, min(number * size, total) + 1)]
        more = number * size < total
        link = f'<{server.url}/issues?page={number + 1}&per_page={size}>; rel="next"'
        return Reply(_json(page), headers={"Link": link} if more else {})

    return script


def test_case3_a_full_page_without_a_next_link_fails_loudly(api_conn) -> None:
    with scripted_server(_pages_only_when_asked(417, 100)) as server:
        hook = ApiHook(api_conn(server, auth={"type": "api_key", "query": "api_key"}))
        with pytest.raises(PaginationError) as info:
            _records(hook, {"type": "link_header", "page_size": 100})
    message = str(info.value)
    assert "page 1" in message and f"{server.url}/issues" in message and "100 records" in message
    assert "full_page_without_next: warn" in message
    assert "sandbox-key" not in message and "api_key=***" in message
    assert isinstance(info.value, MalformedResponseError)


def test_case3_a_full_page_without_a_next_link_warns_when_the_spec_says_the_api_does_that(
    api_conn, caplog: pytest.LogCaptureFixture
) -> None:
    with scripted_server(_pages_only_when_asked(417, 100)) as server:
        hook = ApiHook(api_conn(server))
        with caplog.at_level(logging.WARNING, logger="apisync.http.pagination"):
            records = _records(
                hook, {"type": "link_header", "page_size": 100, "full_page_without_next": "warn"}
            )
    assert len(records) == 100
    assert any("page 1" in r.getMessage() and "no next-page marker" in r.getMessage() for r in caplog.records)


def test_case3_a_short_page_without_a_next_link_is_the_end(api_conn) -> None:
    with scripted_server(_pages_only_when_asked(417, 100)) as server:
        records = _records(ApiHook(api_conn(server)), {"type": "link_header", "page_size": 500})
    assert len(records) == 417


# name -> (pagination, a full page of 5 records whose body has no next marker); page size 5
_FULL = [_issue(n) for n in range(1, 6)]
UNMARKED_FULL_PAGES: dict[str, tuple[dict[str, Any], Reply]] = {
    "link_header": ({"type": "link_header", "page_size": 5}, Reply(_json(_FULL))),
    "next_url": ({"type": "next_url", "page_size": 5}, Reply(_json({"results": _FULL}))),
    "hubspot": ({"type": "hubspot", "page_size": 5}, Reply(_json({"results": _FULL}))),
    "cursor_body": ({"type": "cursor_body", "page_size": 5}, Reply(_json({"data": _FULL}))),
    "graphql_relay": (
        {"type": "graphql_relay", "connection_path": "data.issues", "page_size": 5},
        Reply(_json({"data": {"issues": {"edges": [{"node": r} for r in _FULL]}}})),
    ),
}


@pytest.mark.parametrize("dialect", sorted(UNMARKED_FULL_PAGES))
def test_case3_every_dialect_that_ends_on_a_missing_marker_fails_on_a_full_page(
    dialect: str, api_conn
) -> None:
    pagination, reply = UNMARKED_FULL_PAGES[dialect]
    body = {
        "query": "query($first: Int) { issues(first: $first) { edges { node { id } } } }",
        "variables": {},
    }
    method, json_body = ("POST", body) if dialect == "graphql_relay" else ("GET", None)
    with (
        scripted_server(lambda call, server: reply) as server,
        pytest.raises(PaginationError, match=r"page 1.*5 records"),
    ):
        _records(ApiHook(api_conn(server)), pagination, method=method, json=json_body)


# HubSpot's only end marker is a missing paging.next (see the sandbox test): no explicit marker.
@pytest.mark.parametrize("dialect", sorted(set(UNMARKED_FULL_PAGES) - {"hubspot"}))
def test_case3_an_explicit_end_marker_on_a_full_page_is_the_end(dialect: str, api_conn) -> None:
    pagination, reply = UNMARKED_FULL_PAGES[dialect]
    marked = {
        "link_header": Reply(reply.body, headers={"Link": '<http://127.0.0.1/issues?page=1>; rel="first"'}),
        "next_url": Reply(_json({"results": _FULL, "next": None})),
        "cursor_body": Reply(_json({"data": _FULL, "has_more": False})),
        "graphql_relay": Reply(
            _json(
                {
                    "data": {
                        "issues": {"edges": [{"node": r} for r in _FULL], "pageInfo": {"hasNextPage": False}}
                    }
                }
            )
        ),
    }
    body = {
        "query": "query($first: Int) { issues(first: $first) { edges { node { id } } } }",
        "variables": {},
    }
    method, json_body = ("POST", body) if dialect == "graphql_relay" else ("GET", None)
    with scripted_server(lambda call, server: marked[dialect]) as server:
        assert len(_records(ApiHook(api_conn(server)), pagination, method=method, json=json_body)) == 5


def test_case3_sandbox_totals_that_are_a_multiple_of_the_page_size_complete(sandbox, api_conn) -> None:
    box = sandbox(records=6 * PAGE)
    conn_id = api_conn(box)
    for dialect, (resource, endpoint, method, pagination, body) in sorted(DIALECTS.items()):
        ids = [
            r["id"]
            for page in ApiHook(conn_id).paginate(endpoint, pagination=pagination, method=method, json=body)
            for r in page.records
        ]
        truth = [r["id"] for r in box.truth(resource)]
        assert len(truth) % PAGE == 0, dialect
        assert sorted(ids) == sorted(truth), dialect


def _cycling_cursor(cycle: list[str], safety_stop: int = 40) -> Script:
    """HubSpot-style: the first page hands out cycle[0], then each cursor leads to the next, and
    the last back to cycle[0]. After ``safety_stop`` calls it ends (so a broken guard cannot hang)."""

    def script(call: Call, server: ScriptedServer) -> Reply:
        after = call.query.get("after")
        if len(server.calls) >= safety_stop:
            return Reply(_json({"results": []}))
        following = cycle[0] if after is None else cycle[(cycle.index(after) + 1) % len(cycle)]
        results = [_issue(len(server.calls))]
        return Reply(_json({"results": results, "paging": {"next": {"after": following}}}))

    return script


def test_case7_a_cursor_cycle_ends_the_read_with_an_error_naming_the_cursor(api_conn) -> None:
    with scripted_server(_cycling_cursor(["A", "B"])) as server:
        hook = ApiHook(api_conn(server))
        with pytest.raises(PaginationError) as info:
            _records(hook, {"type": "hubspot"})
    message = str(info.value)
    assert "page 3" in message and "after=A" in message and "page 2" in message
    assert len(server.calls) == 3


def test_case7_a_cycle_is_detected_across_a_resume(api_conn) -> None:
    with scripted_server(_cycling_cursor(["A", "B", "C"])) as server:
        conn_id = api_conn(server)
        pages = ApiHook(conn_id).paginate("/issues", pagination={"type": "hubspot"})
        for page in pages:
            if page.number == 2:
                state = json.loads(json.dumps(page.state))
                break
        pages.close()
        assert len(json.dumps(state)) < 200  # fingerprints, not requests
        with pytest.raises(PaginationError, match=r"page 4.*after=A"):
            list(ApiHook(conn_id).paginate("/issues", pagination={"type": "hubspot"}, state=state))


def test_case7_max_pages_ends_the_read(api_conn) -> None:
    def endless(call: Call, server: ScriptedServer) -> Reply:
        n = len(server.calls)
        if n >= 40:
            return Reply(_json({"results": []}))
        return Reply(_json({"results": [_issue(n)], "paging": {"next": {"after": f"c{n}"}}}))

    with scripted_server(endless) as server:
        hook = ApiHook(api_conn(server))
        with pytest.raises(PaginationError) as info:
            _records(hook, {"type": "hubspot", "max_pages": 5})
        assert (
            "page 5" in str(info.value) and "max_pages 5" in str(info.value) and "after=c5" in str(info.value)
        )
        assert len(server.calls) == 5
        # A read that ends on page max_pages is complete, not an error.
        server.calls.clear()
        assert len(_records(ApiHook(api_conn(server)), {"type": "hubspot", "max_pages": 40})) == 39


@pytest.mark.parametrize(
    ("endpoint", "pagination"),
    [
        ("/cursor/orders", {"type": "header_cursor", "page_size": PAGE}),
        ("/range/issues", {"type": "range_header", "page_size": PAGE}),
    ],
)
def test_dialects_paging_in_headers_are_never_replayed_from_a_304(
    endpoint: str, pagination: dict[str, Any], sandbox: Any, api_conn: Any
) -> None:
    """A 304 replays the staged body with Link and X-Total-Count only, matched by URL, params and
    body: a next cursor in another header would be lost with it (the read ending early), and
    every Range page has the same URL. Such reads are fetched whole, every time."""
    from apisync.http.conditional import ConditionalPages, EarlierPage

    box = sandbox(records=RECORDS)
    conn_id = api_conn(box)
    first = ApiHook(conn_id)
    first.conditional = ConditionalPages()
    pages = list(first.paginate(endpoint, pagination=pagination))
    earlier = {
        page.validators["request"]: EarlierPage.from_entry(page.validators, lambda raw=page.raw: raw)
        for page in pages
        if page.validators is not None
    }
    if pagination["type"] == "header_cursor":  # (a 206 is not kept at all)
        assert earlier, "the sandbox sends validators on these pages too"
    again = ApiHook(conn_id)
    again.conditional = ConditionalPages(earlier)
    records = [r["id"] for page in again.paginate(endpoint, pagination=pagination) for r in page.records]
    assert records == [r["id"] for page in pages for r in page.records]
    assert len(set(records)) == len(box.truth(endpoint.rsplit("/", 1)[1]))
    assert again.stats()["not_modified"] == 0
