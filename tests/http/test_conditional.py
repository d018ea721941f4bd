"""Conditional page requests through ApiHook (apisync.http.conditional): a page an earlier read
kept validators for is asked for with them, a 304 replays the kept body, and nothing about the
read changes but the bodies not downloaded."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from apisync.http import ApiHook, Page
from apisync.http.conditional import ConditionalPages, EarlierPage, request_key
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server

RECORDS = 230
PAGE = 40
GET_DIALECTS: dict[str, tuple[str, dict[str, Any]]] = {
    "cursor_body": ("/v1/orders", {"type": "cursor_body", "page_size": PAGE}),
    "link_header": ("/repos/acme/shop/issues", {"type": "link_header", "page_size": PAGE}),
    "hubspot": ("/crm/v3/objects/customers", {"type": "hubspot", "page_size": PAGE}),
    "offset": ("/api/orders", {"type": "offset", "page_size": PAGE}),
    "page_number": ("/api/v2/issues", {"type": "page_number", "page_size": PAGE}),
    "next_url": ("/api/v2/customers", {"type": "next_url", "page_size": PAGE}),
}


def _read(
    conn_id: str, endpoint: str, pagination: dict[str, Any], conditional: ConditionalPages | None
) -> Any:
    hook = ApiHook(http_conn_id=conn_id)
    hook.conditional = conditional
    return list(hook.paginate(endpoint, pagination=pagination)), hook.stats()


def _kept(pages: list[Page], body: Callable[[Page], Callable[[], bytes]] | None = None) -> ConditionalPages:
    """What the pipeline stages and reads back, held in memory: each page's entry and body."""
    earlier = {}
    for page in pages:
        assert page.validators is not None
        load = body(page) if body is not None else (lambda raw=page.raw: raw)
        earlier[page.validators["request"]] = EarlierPage.from_entry(page.validators, load)
    return ConditionalPages(earlier)


def _records(pages: list[Page]) -> list[list[Any]]:
    return [list(page.records) for page in pages]


@pytest.mark.parametrize("dialect", sorted(GET_DIALECTS))
def test_unchanged_pages_are_not_downloaded_again_and_the_read_is_the_same(
    sandbox: Callable[..., Any], api_conn: Callable[..., str], dialect: str
) -> None:
    box = sandbox(records=RECORDS)
    conn_id = api_conn(box)
    endpoint, pagination = GET_DIALECTS[dialect]
    first, first_stats = _read(conn_id, endpoint, pagination, ConditionalPages())
    assert len(first) >= 6
    for page in first:  # every page kept its validators; only the last one ended the read
        assert page.validators is not None and page.validators["etag"] and page.validators["last_modified"]
        assert page.validators["ended_read"] is (page is first[-1])
    assert first_stats["not_modified"] == 0

    again, stats = _read(conn_id, endpoint, pagination, _kept(first))
    assert _records(again) == _records(first)
    assert [page.raw for page in again] == [page.raw for page in first]
    # The page that ended the earlier read is fetched whole (new records arrive at the end).
    assert stats["not_modified"] == len(first) - 1 == box.stats()["by_status"]["304"]
    assert stats["status_counts"] == {"200": 1, "304": len(first) - 1}
    assert stats["requests"] == len(first) and stats["pages"] == len(first)
    assert stats["bytes"] < first_stats["bytes"] / 3
    assert [page.validators["not_modified"] for page in again if page.validators] == [
        *[True] * (len(first) - 1),
        False,
    ]


@pytest.mark.parametrize("damage", ["missing", "corrupt", "changed"])
def test_a_kept_body_that_cannot_be_read_back_means_a_plain_request(
    sandbox: Callable[..., Any], api_conn: Callable[..., str], damage: str
) -> None:
    box = sandbox(records=RECORDS)
    conn_id = api_conn(box)
    endpoint, pagination = GET_DIALECTS["cursor_body"]
    first, _ = _read(conn_id, endpoint, pagination, ConditionalPages())

    def body(page: Page) -> Callable[[], bytes]:
        if page.number != 2:
            return lambda: page.raw

        def damaged() -> bytes:
            if damage == "missing":
                raise FileNotFoundError("page-000002.body.gz")
            if damage == "corrupt":
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            return page.raw.replace(b'"id"', b'"Id"')

        return damaged

    again, stats = _read(conn_id, endpoint, pagination, _kept(first, body))
    assert _records(again) == _records(first)
    # Page 2: a 304, then the same request without validators; the others as before.
    assert stats["not_modified"] == len(first) - 2
    assert stats["requests"] == len(first) + 1
    assert box.stats()["by_status"] == {"200": len(first) + 2, "304": len(first) - 1}


def test_without_the_switch_nothing_is_kept_and_nothing_asked(
    sandbox: Callable[..., Any], api_conn: Callable[..., str]
) -> None:
    box = sandbox(records=RECORDS)
    conn_id = api_conn(box)
    endpoint, pagination = GET_DIALECTS["link_header"]
    for _ in range(2):
        pages, stats = _read(conn_id, endpoint, pagination, None)
        assert all(page.validators is None for page in pages) and stats["not_modified"] == 0
    assert "304" not in box.stats()["by_status"]


def test_a_304_is_an_answer_not_an_error(sandbox: Callable[..., Any], api_conn: Callable[..., str]) -> None:
    box = sandbox(records=RECORDS)
    hook = ApiHook(http_conn_id=api_conn(box))
    etag = hook.request("GET", "/v1/orders").headers["ETag"]
    response = hook.request("GET", "/v1/orders", headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.content == b""
    stats = hook.stats()
    assert (stats["retries"], stats["errors"], stats["api_errors"], stats["r5xx"]) == (0, 0, 0, 0)
    assert stats["status_counts"] == {"200": 1, "304": 1}


# -- servers that answer 304 as they please ----------------------------------------------------
def _issues(page: int) -> bytes:
    return json.dumps(
        [{"id": page * 10 + n, "updated_at": "2026-01-02T00:00:00Z"} for n in range(2)]
    ).encode()


def test_a_304_without_the_link_header_keeps_paging_and_the_last_page_is_asked_in_full(
    api_conn: Callable[..., str],
) -> None:
    """GitHub-style paging from a server whose 304s carry no Link header, and whose data grew by a
    page between the reads: the kept Link carries the read on, and the page that was the last
    is fetched whole, so its new next link is seen and no record is lost."""
    pages_now = {"count": 3}

    def script(call: Call, server: ScriptedServer) -> Reply:
        page = int(call.query.get("page", "1"))
        etag = f'"issues-{page}"'
        if call.headers.get("if-none-match") == etag:
            return Reply(b"", status=304, headers={"ETag": etag})
        more = page < pages_now["count"]
        link = {"Link": f'<{server.url}/issues?per_page=2&page={page + 1}>; rel="next"'} if more else {}
        return Reply(_issues(page), headers={"ETag": etag, **link})

    with scripted_server(script) as server:
        conn_id = api_conn(server, auth={"type": "none"})
        pagination = {"type": "link_header", "page_size": 2}
        first, _ = _read(conn_id, "/issues", pagination, ConditionalPages())
        assert len(first) == 3
        pages_now["count"] = 4
        server.calls.clear()
        again, stats = _read(conn_id, "/issues", pagination, _kept(first))
    assert [record["id"] for page in again for record in page.records] == [10, 11, 20, 21, 30, 31, 40, 41]
    assert stats["not_modified"] == 2
    asked = [call.headers.get("if-none-match") for call in server.calls]
    assert asked == ['"issues-1"', '"issues-2"', None, None]


def test_a_304_to_a_request_without_validators_is_asked_again_once(api_conn: Callable[..., str]) -> None:
    def script(call: Call, server: ScriptedServer) -> Reply:
        if len(server.calls) == 1:  # a confused cache in front of the API
            return Reply(b"", status=304)
        return Reply(
            json.dumps({"data": [{"id": "o1"}], "has_more": False}).encode(), headers={"ETag": '"x"'}
        )

    with scripted_server(script) as server:
        conn_id = api_conn(server, auth={"type": "none"})
        pages, stats = _read(
            conn_id, "/v1/orders", {"type": "cursor_body", "page_size": 5}, ConditionalPages()
        )
    assert [list(page.records) for page in pages] == [[{"id": "o1"}]]
    assert stats["not_modified"] == 0 and len(server.calls) == 2


def test_only_gets_are_conditional() -> None:
    """A POST (GraphQL) with validators could be answered 412: it is never sent with them."""
    sent: list[dict[str, str] | None] = []
    url = "http://api.example.com/graphql"

    class Answer:
        status_code = 200

    def send(headers: dict[str, str] | None) -> Any:
        sent.append(headers)
        return Answer()

    for method in ("POST", "GET"):
        key = request_key(method, url, {}, {"query": "{ a }"})
        earlier = EarlierPage(etag='"e"', last_modified=None, headers={}, digest="", body=lambda: b"")
        ConditionalPages({key: earlier}).fetch(send, method, url, {}, {"query": "{ a }"})
    assert sent == [None, {"If-None-Match": '"e"'}]


def test_a_server_with_dates_only_is_asked_if_modified_since(api_conn: Callable[..., str]) -> None:
    stamp = "Wed, 07 Jan 2026 12:00:00 GMT"

    def script(call: Call, server: ScriptedServer) -> Reply:
        if call.headers.get("if-modified-since") == stamp:
            return Reply(b"", status=304)
        after = call.query.get("starting_after")
        body = (
            {"data": [{"id": "o2"}], "has_more": False}
            if after
            else {"data": [{"id": "o1"}], "has_more": True}
        )
        return Reply(json.dumps(body).encode(), headers={"Last-Modified": stamp})

    with scripted_server(script) as server:
        conn_id = api_conn(server, auth={"type": "none"})
        pagination = {"type": "cursor_body", "page_size": 1}
        first, _ = _read(conn_id, "/v1/orders", pagination, ConditionalPages())
        server.calls.clear()
        again, stats = _read(conn_id, "/v1/orders", pagination, _kept(first))
    assert _records(again) == _records(first) == [[{"id": "o1"}], [{"id": "o2"}]]
    assert [call.headers.get("if-modified-since") for call in server.calls] == [stamp, None]
    assert all("if-none-match" not in call.headers for call in server.calls)
    assert stats["not_modified"] == 1
