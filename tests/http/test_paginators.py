"""The pagination dialects offline: fake responses, no server.

Each dialect is driven through its contract: the start request, ``update_state`` from a page, the
next request, the stop after the last page, and a resume from the JSON state of any page.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from apisync.errors import ApiConfigError, MalformedResponseError
from apisync.http.body import RawRecords, decode_response
from apisync.http.pagination import (
    PAGINATORS,
    DialectOptions,
    PageRequest,
    Paginator,
    make_paginator,
    pagination_options,
)
from apisync.spec import SourceSpec

BASE = "https://api.test/items"
RECORDS = [{"id": f"r{n:02d}", "n": n} for n in range(1, 26)]  # 25 records: pages of 10, 10, 5
SIZE = 10
QUERY = (
    "query($first: Int, $after: String) { products(first: $first, after: $after) { edges { node { id } } } }"
)


def _response(body: Any, *, headers: dict[str, str] | None = None, url: str = BASE) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    response.headers.update(headers or {})
    response.url = url
    return response


def _page_number(request: PageRequest, name: str = "page") -> int:
    if request.url:
        return int(parse_qs(urlsplit(request.url).query)[name][0])
    return int(request.params.get(name, 1))


def _slice_after(cursor: str | None) -> list[dict[str, Any]]:
    start = 0 if cursor is None else next(i for i, r in enumerate(RECORDS) if r["id"] == cursor) + 1
    return RECORDS[start : start + SIZE]


# -- fake servers: PageRequest -> Response, one per dialect ------------------------------------
def serve_cursor_body(request: PageRequest) -> requests.Response:
    page = _slice_after(request.params.get("starting_after"))
    return _response({"data": page, "has_more": page[-1] is not RECORDS[-1]})


def serve_link_header(request: PageRequest) -> requests.Response:
    number = _page_number(request)
    page = RECORDS[(number - 1) * SIZE : number * SIZE]
    more = number * SIZE < len(RECORDS)
    link = {"Link": f'<{BASE}?page={number + 1}&per_page={SIZE}>; rel="next"'} if more else {}
    return _response(page, headers=link)


def serve_hubspot(request: PageRequest) -> requests.Response:
    page = _slice_after(request.params.get("after"))
    more = page[-1] is not RECORDS[-1]
    return _response({"results": page, **({"paging": {"next": {"after": page[-1]["id"]}}} if more else {})})


def serve_offset(request: PageRequest) -> requests.Response:
    offset, limit = int(request.params["offset"]), int(request.params["limit"])
    return _response({"items": RECORDS[offset : offset + limit], "total": len(RECORDS)})


def serve_page_number(request: PageRequest) -> requests.Response:
    number, size = int(request.params["page"]), int(request.params["page_size"])
    return _response({"results": RECORDS[(number - 1) * size : number * size], "count": len(RECORDS)})


def serve_next_url(request: PageRequest) -> requests.Response:
    number = _page_number(request)
    page = RECORDS[(number - 1) * SIZE : number * SIZE]
    more = number * SIZE < len(RECORDS)
    return _response({"results": page, "next": f"{BASE}?page={number + 1}" if more else None})


def serve_header_cursor(request: PageRequest) -> requests.Response:
    page = _slice_after(request.params.get("cursor"))[: int(request.params["limit"])]
    more = page[-1] is not RECORDS[-1]
    return _response(page, headers={"X-Next-Cursor": page[-1]["id"]} if more else {})


def serve_range_header(request: PageRequest) -> requests.Response:
    unit, _, span = request.headers["Range"].partition("=")
    first, last = (int(n) for n in span.split("-"))
    page = RECORDS[first : last + 1]
    response = _response(
        page, headers={"Content-Range": f"{unit} {first}-{first + len(page) - 1}/{len(RECORDS)}"}
    )
    response.status_code = 206
    return response


def serve_graphql_relay(request: PageRequest) -> requests.Response:
    variables = request.json["variables"]
    page = _slice_after(variables.get("after"))[: variables["first"]]
    info = {"hasNextPage": page[-1] is not RECORDS[-1], "endCursor": page[-1]["id"]}
    edges = [{"node": record} for record in page]
    return _response({"data": {"products": {"edges": edges, "pageInfo": info}}})


@dataclass(frozen=True)
class Dialect:
    config: dict[str, Any]
    serve: Callable[[PageRequest], requests.Response]
    first: PageRequest  # what start() must ask for
    second: PageRequest  # what update_state() must ask for after page 1
    json: Any = None


GRAPHQL_BODY = {"query": QUERY, "variables": {}}
DIALECTS: dict[str, Dialect] = {
    "cursor_body": Dialect(
        {"type": "cursor_body", "page_size": SIZE},
        serve_cursor_body,
        PageRequest(params={"limit": SIZE}),
        PageRequest(params={"limit": SIZE, "starting_after": "r10"}),
    ),
    "link_header": Dialect(
        {"type": "link_header", "page_size": SIZE},
        serve_link_header,
        PageRequest(params={"per_page": SIZE}),
        PageRequest(url=f"{BASE}?page=2&per_page={SIZE}"),
    ),
    "hubspot": Dialect(
        {"type": "hubspot", "page_size": SIZE},
        serve_hubspot,
        PageRequest(params={"limit": SIZE}),
        PageRequest(params={"limit": SIZE, "after": "r10"}),
    ),
    "offset": Dialect(
        {"type": "offset", "page_size": SIZE},
        serve_offset,
        PageRequest(params={"offset": 0, "limit": SIZE}),
        PageRequest(params={"offset": SIZE, "limit": SIZE}),
    ),
    "page_number": Dialect(
        {"type": "page_number", "page_size": SIZE},
        serve_page_number,
        PageRequest(params={"page": 1, "page_size": SIZE}),
        PageRequest(params={"page": 2, "page_size": SIZE}),
    ),
    "next_url": Dialect(
        {"type": "next_url"},
        serve_next_url,
        PageRequest(),
        PageRequest(url=f"{BASE}?page=2"),
    ),
    "header_cursor": Dialect(
        {"type": "header_cursor", "page_size": SIZE},
        serve_header_cursor,
        PageRequest(params={"limit": SIZE}),
        PageRequest(params={"limit": SIZE, "cursor": "r10"}),
    ),
    "range_header": Dialect(
        {"type": "range_header", "page_size": SIZE},
        serve_range_header,
        PageRequest(headers={"Range": "items=0-9"}),
        PageRequest(headers={"Range": "items=10-19"}),
    ),
    "graphql_relay": Dialect(
        {"type": "graphql_relay", "connection_path": "data.products", "page_size": SIZE},
        serve_graphql_relay,
        PageRequest(json={"query": QUERY, "variables": {"first": SIZE}}),
        PageRequest(json={"query": QUERY, "variables": {"first": SIZE, "after": "r10"}}),
        json=GRAPHQL_BODY,
    ),
}


def _read(paginator: Paginator, dialect: Dialect, request: PageRequest) -> list[str]:
    """One page through the contract: serve, decode, records, update_state; the page's ids."""
    response = dialect.serve(request)
    data = decode_response(response, paginator.records_location(None))
    records = paginator.records(data, None, method="GET", url=BASE)
    paginator.update_state(response, data, records, request)
    return [record["id"] for record in records]


def _crawl(paginator: Paginator, dialect: Dialect, request: PageRequest) -> list[list[str]]:
    pages = []
    while True:
        pages.append(_read(paginator, dialect, request))
        if not paginator.has_next:
            return pages
        assert paginator.next is not None
        request = paginator.next


def _ids(pages: list[list[str]]) -> list[str]:
    return [i for page in pages for i in page]


def test_the_registry_is_the_dialects_and_the_spec_uses_it() -> None:
    assert set(PAGINATORS) == set(DIALECTS)
    required = {"graphql_relay": {"connection_path": "data.products"}}
    for name in PAGINATORS:
        options = pagination_options({"type": name, **required.get(name, {})})
        assert type(options) is PAGINATORS[name].options_model
        assert type(make_paginator(options)) is PAGINATORS[name]
    assert all(PAGINATORS[name].type == name for name in PAGINATORS)
    # The spec's source.pagination is the union of exactly these dialects' option models.
    assert SourceSpec.model_fields["pagination"].annotation == typing.get_args(DialectOptions)[0]
    union = typing.get_args(typing.get_args(DialectOptions)[0])
    assert set(union) == {cls.options_model for cls in PAGINATORS.values()}


@pytest.mark.parametrize("name", DIALECTS)
def test_start_asks_for_the_first_page(name: str) -> None:
    dialect = DIALECTS[name]
    paginator = make_paginator(dialect.config)
    assert paginator.start(None, dialect.json) == dialect.first
    assert not paginator.has_next and paginator.next is None


@pytest.mark.parametrize("name", DIALECTS)
def test_update_state_gives_the_next_request(name: str) -> None:
    dialect = DIALECTS[name]
    paginator = make_paginator(dialect.config)
    ids = _read(paginator, dialect, paginator.start(None, dialect.json))
    assert ids == [r["id"] for r in RECORDS[:SIZE]]
    assert paginator.has_next
    assert paginator.next == dialect.second


@pytest.mark.parametrize("name", DIALECTS)
def test_walks_every_page_and_stops_after_the_last(name: str) -> None:
    dialect = DIALECTS[name]
    paginator = make_paginator(dialect.config)
    pages = _crawl(paginator, dialect, paginator.start(None, dialect.json))
    assert [len(page) for page in pages] == [10, 10, 5]
    assert _ids(pages) == [r["id"] for r in RECORDS]
    assert not paginator.has_next and paginator.next is None


@pytest.mark.parametrize("name", DIALECTS)
@pytest.mark.parametrize("after_pages", [1, 2])
def test_resumes_from_the_json_state_of_a_page(name: str, after_pages: int) -> None:
    dialect = DIALECTS[name]
    first = make_paginator(dialect.config)
    request = first.start(None, dialect.json)
    seen: list[str] = []
    for _ in range(after_pages):
        seen += _read(first, dialect, request)
        assert first.next is not None
        request = first.next
    # What the hook stores: the next request plus the dialect's private state, through JSON.
    state = json.loads(json.dumps({"next": request.to_state(), **first.extra_state_later()()}))

    resumed = make_paginator(dialect.config)
    resumed.restore_extra(state)
    rest = _crawl(resumed, dialect, PageRequest.from_state(state["next"]))
    assert seen + _ids(rest) == [r["id"] for r in RECORDS]


def test_records_repeated_at_the_top_of_the_next_page_are_dropped() -> None:
    paginator = make_paginator({"type": "offset", "page_size": 2})
    first = _response({"items": RECORDS[0:2], "total": 5})
    second = _response({"items": RECORDS[1:4], "total": 5})  # the server shifted: r02 again
    request = paginator.start(None, None)
    data = decode_response(first, "items")
    paginator.update_state(first, data, paginator.records(data, None, method="GET", url=BASE), request)
    assert paginator.next is not None
    data = decode_response(second, "items")
    records = paginator.records(data, None, method="GET", url=BASE)
    assert [r["id"] for r in records] == ["r03", "r04"]
    paginator.update_state(second, data, records, paginator.next)
    # Advance by at most the limit, so the row after the repeat is not skipped.
    assert paginator.next is not None and paginator.next.params["offset"] == 4


def test_records_stay_raw_json_texts() -> None:
    paginator = make_paginator({"type": "offset"})
    data = decode_response(_response({"items": RECORDS[:3], "total": 3}), paginator.records_location(None))
    records = paginator.records(data, None, method="GET", url=BASE)
    assert isinstance(records, RawRecords)
    assert records.jsonl().splitlines() == [json.dumps(r).encode() for r in RECORDS[:3]]


def test_offset_without_total_stops_at_a_short_page() -> None:
    paginator = make_paginator({"type": "offset", "page_size": 10, "total_path": None})
    request = paginator.start(None, None)
    response = _response({"items": RECORDS[:4]})
    data = decode_response(response, "items")
    paginator.update_state(response, data, paginator.records(data, None, method="GET", url=BASE), request)
    assert not paginator.has_next and paginator.next is None


def test_no_pagination_is_one_request() -> None:
    paginator = make_paginator(None)
    assert type(paginator) is Paginator
    request = paginator.start({"q": "x"}, None)
    assert request == PageRequest(params={"q": "x"})
    response = _response(RECORDS[:3])
    data = decode_response(response, paginator.records_location(None))
    paginator.update_state(response, data, paginator.records(data, None, method="GET", url=BASE), request)
    assert not paginator.has_next and paginator.next is None


def test_a_body_without_the_records_list_is_malformed() -> None:
    paginator = make_paginator({"type": "cursor_body"})
    with pytest.raises(MalformedResponseError, match="expected a list at 'data'"):
        paginator.records({"data": {"not": "a list"}}, None, method="GET", url=BASE)


def test_the_spec_rejects_what_the_paginator_rejects() -> None:
    source = {"endpoint": "/x", "params": {"a": "{window_start}", "b": "{window_end}"}}
    with pytest.raises(ValueError, match="connection_path"):
        SourceSpec.model_validate({**source, "pagination": {"type": "graphql_relay"}})
    with pytest.raises(ValueError, match="full_page_without_next"):
        SourceSpec.model_validate(
            {**source, "pagination": {"type": "link_header", "full_page_without_next": "ignore"}}
        )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "scroll"}, "pagination type must be one of"),
        ({"type": "hubspot", "max_pages": 0}, "max_pages must be a whole number"),
        ({"type": "hubspot", "max_pages": True}, "max_pages must be a whole number"),
        ({"type": "next_url", "full_page_without_next": "ok"}, "full_page_without_next must be one of"),
        ({"type": "offset", "cursor": "x"}, "pagination 'offset' has no option 'cursor'"),
        ({"type": "graphql_relay"}, "needs connection_path"),
        ({"type": "offset", "page_size": "100"}, r"page_size must be a whole number >= 1, got '100'"),
        ({"type": "page_number", "start_page": 1.5}, "start_page must be a whole number, got 1.5"),
        ({"type": "next_url", "next_path": ["next"]}, r"next_path must be a body path .*, got \['next'\]"),
        ({"type": "next_url", "next_path": "$..next"}, r"next_path: '\$\.\.next' is not a body path: use \$"),
        ({"type": "offset", "end_on": "short"}, r"end_on must be one of \['short_page', 'empty_page'\]"),
    ],
)
def test_bad_configs_fail_at_once(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiConfigError, match=message):
        make_paginator(config)


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        (
            {"type": "cursor_body", "page_sise": 100},
            [
                "pagination.page_sise: pagination 'cursor_body' has no option 'page_sise'",
                "did you mean 'page_size'?",
            ],
        ),
        (
            {"type": "link_header", "limit_param": "limit"},
            [
                "(an option of cursor_body, header_cursor, hubspot, offset)",
                "did you mean 'size_param'?",
                "size_param (text",
            ],
        ),
        ({"type": "cursor_bdy"}, ["got 'cursor_bdy'; did you mean 'cursor_body'?"]),
    ],
)
def test_case5_a_an_unknown_option_names_the_closest_one_and_the_dialects_options(
    config: dict[str, Any], fragments: list[str]
) -> None:
    """Issue 13 case 5a, for callers of the hook without a spec: the same checks, the same words."""
    with pytest.raises(ApiConfigError) as caught:
        make_paginator(config)
    for fragment in fragments:
        assert fragment in str(caught.value)


def _pages_of_a_list(paginator: Paginator, serve: Callable[[PageRequest], requests.Response]) -> list[int]:
    """Page sizes of a read whose body is the list (records_path "$")."""
    request, sizes = paginator.start(None, None), []
    while True:
        response = serve(request)
        data = decode_response(response, "$")
        records = paginator.records(data, "$", method="GET", url=BASE)
        paginator.update_state(response, data, records, request)
        sizes.append(len(records))
        if not paginator.has_next:
            return sizes
        assert paginator.next is not None
        request = paginator.next


def test_a_total_header_ends_the_read_without_asking_for_an_empty_page() -> None:
    def serve(request: PageRequest) -> requests.Response:
        page, size = int(request.params["_page"]), int(request.params["_limit"])
        body = RECORDS[(page - 1) * size : page * size]
        return _response(body, headers={"X-Total-Count": str(len(RECORDS))})

    config = {"type": "page_number", "page_param": "_page", "size_param": "_limit", "page_size": 5}
    assert _pages_of_a_list(make_paginator({**config, "total_header": "X-Total-Count"}), serve) == [5] * 5
    assert _pages_of_a_list(make_paginator(config), serve) == [5] * 5 + [0]  # no total: an empty page


def test_end_on_empty_page_reads_past_the_short_pages_of_a_server_that_caps_the_size() -> None:
    def serve(request: PageRequest) -> requests.Response:  # asked 10, serves at most 4
        offset = int(request.params["offset"])
        return _response(RECORDS[offset : offset + min(4, int(request.params["limit"]))])

    config = {"type": "offset", "page_size": 10, "total_path": None}
    assert _pages_of_a_list(make_paginator(config), serve) == [4]  # short page: the end, rows lost
    assert _pages_of_a_list(make_paginator({**config, "end_on": "empty_page"}), serve) == [4] * 6 + [1, 0]


def test_a_cursor_from_a_body_field_at_any_path() -> None:
    def serve(request: PageRequest) -> requests.Response:
        page = _slice_after(request.params.get("cursor"))
        more = page[-1] is not RECORDS[-1]
        return _response({"items": page, "meta": {"next_cursor": page[-1]["id"] if more else None}})

    paginator = make_paginator(
        {
            "type": "cursor_body",
            "cursor_path": "$.meta.next_cursor",
            "cursor_param": "cursor",
            "has_more_field": None,
            "page_size": SIZE,
        }
    )
    request, ids = paginator.start(None, None), []
    while True:
        response = serve(request)
        data = decode_response(response, "items")
        records = paginator.records(data, "items", method="GET", url=BASE)
        paginator.update_state(response, data, records, request)
        ids += [r["id"] for r in records]
        if not paginator.has_next:
            break
        assert paginator.next is not None
        request = paginator.next
    assert ids == [r["id"] for r in RECORDS]
