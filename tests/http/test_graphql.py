"""GraphQL sources (issue 15, item 5): page parameters in the variables, the errors array on every
response whatever the dialect, and queries retried on any path.

Real HTTP throughout: the sandbox's GraphQL endpoint (also served on ``/``) and, for responses no
sane server sends on purpose (data *and* errors, a secret in a message), a scripted server.
json-graphql-server itself is in tests/thirdparty/test_json_graphql_server_sync.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from apisync.errors import ApiResponseError, GraphQLError, MalformedResponseError, SpecError
from apisync.http import ApiHook, RetriesExhaustedError, RetryPolicy
from apisync.http.graphql import check_errors, errors_by_record, graphql_options
from apisync.http.pagination import make_paginator
from apisync.http.retry import graphql_operation, graphql_operations
from apisync.spec import load_spec
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server

ROWS = [{"id": str(n), "amount": n * 10} for n in range(1, 24)]
ALL_ORDERS = (
    "query Orders($page: Int, $perPage: Int, $filter: OrderFilter) {"
    ' allOrders(page: $page, perPage: $perPage, sortField: "id", filter: $filter) { id amount }'
    " _allOrdersMeta(filter: $filter) { count } }"
)
PAGE_NUMBER_IN_VARIABLES = {
    "type": "page_number",
    "in": "variables",
    "page_param": "page",
    "size_param": "perPage",
    "start_page": 0,
    "page_size": 5,
    "total_path": "data._allOrdersMeta.count",
}
RELAY = (
    "query($first: Int!, $after: String) { products(first: $first, after: $after) "
    "{ edges { node { id } } pageInfo { hasNextPage endCursor } } }"
)


def _conn(api_conn: Callable[..., str], url: str, **extras: Any) -> str:
    return api_conn(type("Server", (), {"url": url}), **extras)


# -- retries: a query is safe to send again on any path, a mutation never -------------------------
@pytest.mark.parametrize("path", ["/", "/graphql", "/api", "/v1/query"])
def test_a_graphql_query_is_idempotent_on_any_path(path: str) -> None:
    policy = RetryPolicy()
    url = f"http://h{path}"
    assert policy.is_idempotent("POST", url, {"query": "{ allOrders { id } }"})
    assert policy.is_idempotent("POST", url, {"query": "query Q($p: Int) { allOrders(page: $p) { id } }"})
    assert not policy.is_idempotent("POST", url, {"query": "mutation { createOrder(id: 1) { id } }"})


@pytest.mark.parametrize(
    ("body", "operation"),
    [
        ({"query": "# mutation { x }\n{ a }"}, "query"),
        ({"query": '{ a(text: "mutation { x }") }'}, "query"),
        ({"query": 'query Q($f: Filter = {q: "}"}) @cached { a }'}, "query"),
        ({"query": "fragment F on Order { id } query { allOrders { ...F } }"}, "query"),
        ({"query": "  mutation M { x }"}, "mutation"),
        ({"query": "subscription { orders { id } }"}, "subscription"),
        ({"query": "query A { a } mutation B { b }"}, None),  # which one runs? not retried
        ({"query": "query A { a } mutation B { b }", "operationName": "A"}, "query"),
        ({"query": "query A { a } mutation B { b }", "operationName": "B"}, "mutation"),
        ({"query": "query A { a }", "operationName": "Nope"}, None),
        ({"query": "foo bar"}, None),  # a REST body with a "query" text is not GraphQL
        ({"q": "{ a }"}, None),
    ],
)
def test_the_operation_is_read_from_the_document(body: dict[str, Any], operation: str | None) -> None:
    assert graphql_operation(body) == operation
    assert RetryPolicy().is_idempotent("POST", "http://h/", body) is (operation == "query")


def test_operations_skip_block_strings_and_nested_selections() -> None:
    document = '"""mutation"""\nquery A { a { mutation } }\nmutation B { b }'
    assert graphql_operations(document) == [("query", "A"), ("mutation", "B")]


def test_a_query_on_the_root_path_is_retried_on_5xx(sandbox: Callable[..., Any], api_conn) -> None:
    box = sandbox(records=60, fault_5xx=0.3, seed=1)  # seed 1: the first request gets a 5xx
    hook = ApiHook(api_conn(box))
    ids = [
        record["id"]
        for page in hook.paginate(
            "/",
            method="POST",
            json={"query": RELAY, "variables": {}},
            pagination={"type": "graphql_relay", "connection_path": "data.products", "page_size": 10},
        )
        for record in page.records
    ]
    assert hook.stats()["r5xx"] > 0 and hook.stats()["retries"] >= hook.stats()["r5xx"]
    assert sorted(ids) == sorted(r["id"] for r in box.truth("products"))


def test_a_mutation_on_the_root_path_is_not_retried(sandbox: Callable[..., Any], api_conn) -> None:
    box = sandbox(records=10, fault_5xx=1.0)
    hook = ApiHook(api_conn(box))
    with pytest.raises(ApiResponseError) as info:
        hook.request("POST", "/", json={"query": "mutation { deleteProduct(id: 1) { id } }"})
    assert not isinstance(info.value, RetriesExhaustedError)
    assert "HTTP 500" in str(info.value) and box.stats()["requests"] == 1


# -- page parameters in the variables (or the body) ------------------------------------------------
def _page_of_orders(call: Call, server: ScriptedServer) -> Reply:
    """json-graphql-server's allOrders: page (0-based) and perPage from the variables."""
    variables = json.loads(call.body).get("variables") or {}
    page, per_page = variables.get("page"), variables.get("perPage")
    rows = ROWS if page is None else ROWS[page * per_page : (page + 1) * per_page]
    return Reply(json.dumps({"data": {"allOrders": rows, "_allOrdersMeta": {"count": len(ROWS)}}}).encode())


def test_page_number_puts_page_and_per_page_in_the_variables_and_resumes(api_conn) -> None:
    body = {"query": ALL_ORDERS, "variables": {"filter": {"status": "paid"}}}
    read = {
        "method": "POST",
        "json": body,
        "pagination": PAGE_NUMBER_IN_VARIABLES,
        "records_path": "data.allOrders",
    }
    with scripted_server(_page_of_orders) as server:
        conn = _conn(api_conn, server.url)
        seen: list[str] = []
        pages = ApiHook(conn).paginate("/", **read)
        for page in pages:
            seen += [r["id"] for r in page.records]
            if page.number == 3:
                state = json.loads(json.dumps(page.state))  # what a deferral keeps
                break
        pages.close()
        # A fresh hook, as after a deferral, continues after page 3.
        rest = list(ApiHook(conn).paginate("/", **read, state=state))
        seen += [r["id"] for page in rest for r in page.records]
        sent = [json.loads(call.body) for call in server.calls]
    assert seen == [row["id"] for row in ROWS]
    assert [page.number for page in rest] == [4, 5]
    assert [b["variables"]["page"] for b in sent] == [0, 1, 2, 3, 4]
    assert {b["variables"]["perPage"] for b in sent} == {5}
    assert all(b["variables"]["filter"] == {"status": "paid"} for b in sent)
    assert all(not call.query for call in server.calls), "nothing goes into the URL"
    assert rest[-1].total == len(ROWS)


def test_the_total_from_the_same_query_ends_the_read(api_conn) -> None:
    def twenty(call: Call, server: ScriptedServer) -> Reply:
        variables = json.loads(call.body)["variables"]
        rows = ROWS[:20][variables["page"] * 5 : variables["page"] * 5 + 5]
        return Reply(json.dumps({"data": {"allOrders": rows, "_allOrdersMeta": {"count": 20}}}).encode())

    with scripted_server(twenty) as server:
        pages = list(
            ApiHook(_conn(api_conn, server.url)).paginate(
                "/",
                method="POST",
                json={"query": ALL_ORDERS},
                pagination=PAGE_NUMBER_IN_VARIABLES,
                records_path="data.allOrders",
            )
        )
    # Four full pages and the count says that is all: no fifth, empty request.
    assert [len(page.records) for page in pages] == [5, 5, 5, 5] and len(server.calls) == 4
    assert {page.total for page in pages} == {20}


def test_a_page_size_fixed_in_the_variables_is_the_dialects() -> None:
    paginator = make_paginator({**PAGE_NUMBER_IN_VARIABLES, "page_size": None})
    request = paginator.start({}, {"query": ALL_ORDERS, "variables": {"perPage": 7}})
    assert request.params == {} and request.json["variables"] == {"perPage": 7, "page": 0}


def test_offset_and_limit_in_the_top_level_of_a_json_body(api_conn) -> None:
    def search(call: Call, server: ScriptedServer) -> Reply:
        body = json.loads(call.body)
        rows = ROWS[body["offset"] : body["offset"] + body["limit"]]
        return Reply(json.dumps({"items": rows, "total": len(ROWS)}).encode())

    with scripted_server(search) as server:
        pages = ApiHook(_conn(api_conn, server.url)).paginate(
            "/search",
            method="POST",
            json={"filter": "paid"},
            pagination={"type": "offset", "in": "body", "page_size": 10},
        )
        ids = [r["id"] for page in pages for r in page.records]
        sent = [json.loads(call.body) for call in server.calls]
    assert ids == [row["id"] for row in ROWS]
    assert sent == [{"filter": "paid", "offset": n, "limit": 10} for n in (0, 10, 20)]


@pytest.mark.parametrize(
    ("pagination", "message"),
    [
        ({"type": "link_header", "in": "variables"}, "follows the next-page URL"),
        ({"type": "next_url", "in": "body"}, "follows the next-page URL"),
        ({"type": "graphql_relay", "connection_path": "data.x", "in": "body"}, "use in: variables"),
        ({"type": "page_number", "in": "json"}, "in must be one of ['query', 'body', 'variables']"),
    ],
)
def test_placements_that_cannot_work_fail_naming_why(pagination: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message.replace("[", r"\[").replace("]", r"\]")):
        make_paginator(pagination)


# -- the spec: in and graphql, checked when it loads ------------------------------------------------
def _spec(tmp_path: Path, source: dict[str, Any]) -> Path:
    spec = {
        "name": "gql_orders",
        "source": {"endpoint": "/", "method": "POST", "records_path": "data.allOrders", **source},
        "primary_key": ["id"],
        "cursor_field": "updated_at",
        "fields": {"id": {"type": "string"}, "updated_at": {"type": "timestamp"}},
        "quality": {"suite": "gql_orders"},
        "destination": {"table": "gql_orders"},
    }
    path = tmp_path / "gql_orders.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


WINDOWED = {
    "query": ALL_ORDERS,
    "variables": {"filter": {"updated_at_gte": "{window_start}", "updated_at_lt": "{window_end}"}},
}


def test_a_spec_declares_page_parameters_in_the_variables(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, {"pagination": PAGE_NUMBER_IN_VARIABLES, "json": WINDOWED}))
    dumped = spec.source.pagination.model_dump()  # what the extract hands the hook
    assert dumped["in"] == "variables"
    request = make_paginator(dumped).start({}, spec.source.json_body)
    assert request.json["variables"]["page"] == 0 and request.json["variables"]["perPage"] == 5
    assert spec.source.graphql.partial_results == "fail"


def test_in_variables_without_a_graphql_query_fails_naming_the_option(tmp_path: Path) -> None:
    path = _spec(
        tmp_path,
        {"pagination": PAGE_NUMBER_IN_VARIABLES, "params": {"a": "{window_start}", "b": "{window_end}"}},
    )
    with pytest.raises(SpecError, match=r"source\.pagination\.in: variables .*source\.json\.query"):
        load_spec(path)


def test_unknown_partial_results_fail_listing_the_choices(tmp_path: Path) -> None:
    path = _spec(
        tmp_path,
        {"pagination": PAGE_NUMBER_IN_VARIABLES, "json": WINDOWED, "graphql": {"partial_results": "keep"}},
    )
    with pytest.raises(SpecError, match=r"source\.graphql\.partial_results.*'fail'.*'allow_with_warning'"):
        load_spec(path)


# -- the errors array, on every page of every dialect -----------------------------------------------
def _answering(payload: dict[str, Any]) -> Callable[[Call, ScriptedServer], Reply]:
    return lambda call, server: Reply(json.dumps(payload).encode())


PARTIAL = {
    "data": {"allOrders": ROWS[:3], "_allOrdersMeta": {"count": 3}},
    "errors": [{"message": "amount: resolver timed out", "path": ["allOrders", 1, "amount"]}],
}


def test_data_with_errors_fails_with_the_servers_message(api_conn) -> None:
    with scripted_server(_answering(PARTIAL)) as server:
        hook = ApiHook(_conn(api_conn, server.url))
        with pytest.raises(GraphQLError) as info:
            list(
                hook.paginate(
                    "/",
                    method="POST",
                    json={"query": ALL_ORDERS},
                    pagination=PAGE_NUMBER_IN_VARIABLES,
                    records_path="data.allOrders",
                )
            )
    assert "amount: resolver timed out (at allOrders.1.amount)" in str(info.value)
    assert "partial results" in str(info.value) and info.value.errors == PARTIAL["errors"]


def test_data_with_errors_fails_with_query_placement_too(api_conn) -> None:
    with scripted_server(_answering(PARTIAL)) as server:
        hook = ApiHook(_conn(api_conn, server.url))
        with pytest.raises(GraphQLError, match="resolver timed out"):
            list(
                hook.paginate(
                    "/",
                    method="POST",
                    json={"query": ALL_ORDERS},
                    records_path="data.allOrders",
                    pagination={"type": "page_number", "page_size": 5, "total_path": None},
                )
            )


def test_partial_results_allowed_keep_the_records_and_the_errors(api_conn, caplog) -> None:
    with scripted_server(_answering(PARTIAL)) as server:
        hook = ApiHook(_conn(api_conn, server.url))
        with caplog.at_level(logging.WARNING, logger="apisync.http.graphql"):
            pages = list(
                hook.paginate(
                    "/",
                    method="POST",
                    json={"query": ALL_ORDERS},
                    records_path="data.allOrders",
                    pagination=PAGE_NUMBER_IN_VARIABLES,
                    graphql={"partial_results": "allow_with_warning"},
                )
            )
    assert [r["id"] for r in pages[0].records] == ["1", "2", "3"]
    assert pages[0].graphql_errors == PARTIAL["errors"]
    assert "keeping 3 records, 1 errors: amount: resolver timed out" in caplog.text


def test_a_null_records_field_with_errors_fails_with_the_message_not_expected_a_list(api_conn) -> None:
    payload = {
        "data": {"allOrders": None},
        "errors": [{"message": 'Cannot query field "nosuch" on type "Order".'}],
    }
    with scripted_server(_answering(payload)) as server:
        hook = ApiHook(_conn(api_conn, server.url))
        for allowed in ("fail", "allow_with_warning"):
            with pytest.raises(MalformedResponseError) as info:
                list(
                    hook.paginate(
                        "/",
                        method="POST",
                        json={"query": ALL_ORDERS},
                        records_path="data.allOrders",
                        pagination=PAGE_NUMBER_IN_VARIABLES,
                        graphql={"partial_results": allowed},
                    )
                )
            assert isinstance(info.value, GraphQLError)
            assert 'Cannot query field "nosuch"' in str(info.value)
            assert "expected a list" not in str(info.value)


def test_the_servers_messages_are_redacted(api_conn) -> None:
    payload = {"data": None, "errors": [{"message": "bad key tok-9f8e7d6c5b4a3921 for user"}]}
    with scripted_server(_answering(payload)) as server:
        hook = ApiHook(_conn(api_conn, server.url, password="tok-9f8e7d6c5b4a3921"))
        with pytest.raises(GraphQLError) as info:
            list(
                hook.paginate(
                    "/", method="POST", json={"query": "{ allOrders { id } }"}, records_path="data.allOrders"
                )
            )
    assert "tok-9f8e7d6c5b4a3921" not in str(info.value) and "bad key *** for user" in str(info.value)


def test_errors_of_a_rest_body_are_none_of_graphqls_business() -> None:
    paginator = make_paginator({"type": "offset"})
    data = {"items": [], "errors": ["not GraphQL"]}
    kept = check_errors(
        data,
        None,
        paginator=paginator,
        records_path=None,
        options=graphql_options(None),
        method="GET",
        url="http://h/x",
    )
    assert kept == []


def test_relay_errors_with_a_200_raise() -> None:  # moved from test_paginators: the check lives here
    paginator = make_paginator({"type": "graphql_relay", "connection_path": "data.products"})
    with pytest.raises(GraphQLError, match="boom"):
        check_errors(
            {"errors": [{"message": "boom"}], "data": None},
            {"query": RELAY},
            paginator=paginator,
            records_path=None,
            options=graphql_options(None),
            method="POST",
            url="http://h/graphql",
        )


def test_relay_errors_still_raise(sandbox: Callable[..., Any], api_conn) -> None:
    box = sandbox(records=10)
    hook = ApiHook(api_conn(box))
    with pytest.raises(GraphQLError, match="nosuchfield"):
        list(
            hook.paginate(
                "/",
                method="POST",
                json={"query": "{ products(first: 5) { nosuchfield } }"},
                pagination={"type": "graphql_relay", "connection_path": "data.products"},
            )
        )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"pagination": {**PAGE_NUMBER_IN_VARIABLES, "in": "json"}, "json": WINDOWED},
            r"field 'source\.pagination\.in': in must be one of \['query', 'body', 'variables'\]",
        ),
        (
            {"pagination": {"type": "link_header", "page_size": 5, "in": "variables"}, "json": WINDOWED},
            "'link_header' follows the next-page URL the server hands out: in: variables",
        ),
        (
            {"pagination": PAGE_NUMBER_IN_VARIABLES, "json": WINDOWED, "method": "GET"},
            r"source\.pagination\.in: variables sends the page parameters in the request body: "
            "declare method: POST",
        ),
    ],
)
def test_placements_are_checked_when_the_spec_loads(
    tmp_path: Path, source: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(_spec(tmp_path, source))


# -- partial_results: quarantine --------------------------------------------------------------------
def test_partial_results_quarantine_maps_each_error_to_the_record_it_hit(api_conn) -> None:
    payload = {
        "data": {"allOrders": ROWS[:3], "_allOrdersMeta": {"count": 3}},
        "errors": [
            {"message": "amount: resolver timed out", "path": ["allOrders", 1, "amount"]},
            {"message": "status: not allowed", "path": ["allOrders", 1, "status"]},
            {"message": "amount: resolver timed out", "path": ["allOrders", 2, "amount"]},
        ],
    }
    with scripted_server(_answering(payload)) as server:
        hook = ApiHook(_conn(api_conn, server.url))
        pages = list(
            hook.paginate(
                "/",
                method="POST",
                json={"query": ALL_ORDERS},
                records_path="data.allOrders",
                pagination=PAGE_NUMBER_IN_VARIABLES,
                graphql={"partial_results": "quarantine"},
            )
        )
    assert [r["id"] for r in pages[0].records] == ["1", "2", "3"]
    assert pages[0].record_errors == {
        1: [
            "amount: resolver timed out (at allOrders.1.amount)",
            "status: not allowed (at allOrders.1.status)",
        ],
        2: ["amount: resolver timed out (at allOrders.2.amount)"],
    }


@pytest.mark.parametrize(
    "error",
    [
        {"message": "rate budget exhausted"},  # no path
        {"message": "allOrders: partial", "path": ["allOrders"]},  # the whole field
        {"message": "meta failed", "path": ["_allOrdersMeta", "count"]},  # another top-level field
        {"message": "gone", "path": ["allOrders", 3, "amount"]},  # past the page's 3 records
    ],
)
def test_partial_results_quarantine_fails_on_an_error_that_points_into_no_record(
    api_conn, error: dict[str, Any]
) -> None:
    payload = {"data": {"allOrders": ROWS[:3], "_allOrdersMeta": {"count": 3}}, "errors": [error]}
    with scripted_server(_answering(payload)) as server:
        hook = ApiHook(_conn(api_conn, server.url))
        with pytest.raises(GraphQLError, match="point into no record") as info:
            list(
                hook.paginate(
                    "/",
                    method="POST",
                    json={"query": ALL_ORDERS},
                    records_path="data.allOrders",
                    pagination=PAGE_NUMBER_IN_VARIABLES,
                    graphql={"partial_results": "quarantine"},
                )
            )
    assert error["message"] in str(info.value)


def test_relay_error_paths_name_the_edge() -> None:
    paginator = make_paginator({"type": "graphql_relay", "connection_path": "data.products"})
    errors = [
        {"message": "title hidden", "path": ["products", "edges", 4, "node", "title"]},
        {"message": "count failed", "path": ["products", "totalCount"]},
    ]
    by_record, unpointed = errors_by_record(errors, paginator=paginator, records_path=None)
    assert by_record == {4: ["title hidden (at products.edges.4.node.title)"]}
    assert unpointed == errors[1:]


def test_a_misspelt_partial_results_suggests_the_value(tmp_path: Path) -> None:
    path = _spec(
        tmp_path,
        {
            "pagination": PAGE_NUMBER_IN_VARIABLES,
            "json": WINDOWED,
            "graphql": {"partial_results": "quarantien"},
        },
    )
    with pytest.raises(SpecError, match=r"'quarantine'\]?, got 'quarantien'; did you mean 'quarantine'\?"):
        load_spec(path)


def test_partial_results_quarantine_counts_indexes_from_the_first_record_kept(api_conn) -> None:
    """The repeat guard drops a page's first records when they repeat the page before: an error's
    index counts in the server's list, the staged page starts after the dropped ones."""

    def answer(call: Call, server: ScriptedServer) -> Reply:
        page = json.loads(call.body)["variables"]["page"]
        if page == 0:
            return Reply(
                json.dumps({"data": {"allOrders": ROWS[:5], "_allOrdersMeta": {"count": 9}}}).encode()
            )
        errors = [{"message": "amount: hidden", "path": ["allOrders", 2, "amount"]}]
        rows = ROWS[4:9]  # ROWS[4] again, byte-identical: dropped; ROWS[6] is at index 2
        return Reply(
            json.dumps(
                {"data": {"allOrders": rows, "_allOrdersMeta": {"count": 9}}, "errors": errors}
            ).encode()
        )

    with scripted_server(answer) as server:
        hook = ApiHook(_conn(api_conn, server.url))
        pages = list(
            hook.paginate(
                "/",
                method="POST",
                json={"query": ALL_ORDERS},
                records_path="data.allOrders",
                pagination=PAGE_NUMBER_IN_VARIABLES,
                graphql={"partial_results": "quarantine"},
            )
        )
    second = pages[1]
    assert second.repeated == 1 and [r["id"] for r in second.records] == ["6", "7", "8", "9"]
    assert second.record_errors == {1: ["amount: hidden (at allOrders.2.amount)"]}
    assert second.records[1]["id"] == ROWS[6]["id"]
