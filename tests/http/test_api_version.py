"""Pinned API versions (``api_version`` extra) and the server's Deprecation/Sunset signals.

Requests go over real HTTP to a scripted loopback server that records what arrived, so the test
sees the header, query parameter or path the server received on every page, next links included.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from apisync.errors import ApiConfigError
from apisync.http import ApiHook
from apisync.http.deprecation import deprecation_notice
from apisync.http.settings import ApiSettings
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server

SUNSET = "Sat, 31 Oct 2026 23:59:59 GMT"


def _paged(call: Call, server: ScriptedServer) -> Reply:
    """Two pages of two records; page 1 links to page 2 with a full URL (GitHub-style)."""
    page = int(call.query.get("page", "1"))
    records = [{"id": 2 * page - 1}, {"id": 2 * page}]
    headers = {"Deprecation": "@1767225600", "Sunset": SUNSET}
    if page == 1:
        successor = '<https://docs.example/v3>; rel="successor-version"'
        headers["Link"] = f'<{server.url}{call.path}?page=2>; rel="next", {successor}'
    return Reply(json.dumps(records).encode(), headers=headers)


def _conn(api_conn: Any, url: str, **extras: Any) -> str:
    return api_conn(type("Sb", (), {"url": url})(), auth={"type": "none"}, password=None, **extras)


def _pages(hook: ApiHook, endpoint: str) -> list[Any]:
    return list(hook.paginate(endpoint, pagination={"type": "link_header", "page_size": 2}))


def test_version_header_goes_out_on_every_page(api_conn) -> None:
    with scripted_server(_paged) as server:
        pin = {"header": "Stripe-Version", "value": "2024-06-20"}
        hook = ApiHook(_conn(api_conn, server.url, api_version=pin))
        pages = _pages(hook, "/v1/orders")
    assert [record["id"] for page in pages for record in page.records] == [1, 2, 3, 4]
    assert len(server.calls) == 2
    assert [call.headers.get("stripe-version") for call in server.calls] == ["2024-06-20"] * 2


def test_version_query_is_added_once_even_to_a_next_link(api_conn) -> None:
    def echoing_next(call: Call, server: ScriptedServer) -> Reply:
        page = int(call.query.get("page", "1"))
        headers = {}
        if page == 1:  # the server echoes the version into its next link, as Azure does
            headers["Link"] = f'<{server.url}{call.path}?page=2&api-version=2024-02-01>; rel="next"'
        return Reply(json.dumps([{"id": page}]).encode(), headers=headers)

    with scripted_server(echoing_next) as server:
        pin = {"query": "api-version", "value": "2024-02-01"}
        hook = ApiHook(_conn(api_conn, server.url, api_version=pin))
        _pages(hook, "/items")
        raw_queries = [call.query for call in server.calls]
    assert [q.get("api-version") for q in raw_queries] == ["2024-02-01", "2024-02-01"]


def test_path_prefix_goes_before_relative_endpoints_once(api_conn) -> None:
    with scripted_server(_paged) as server:
        hook = ApiHook(_conn(api_conn, server.url, api_version={"path_prefix": "/v2/"}))
        _pages(hook, "/orders")
        hook.request("GET", "/v2/orders")  # already under the prefix: not doubled
    assert [call.path for call in server.calls] == ["/v2/orders", "/v2/orders", "/v2/orders"]


def test_deprecation_and_sunset_are_warned_once_per_run(api_conn, caplog, capsys) -> None:
    caplog.set_level(logging.WARNING)
    with scripted_server(_paged) as server:
        hook = ApiHook(_conn(api_conn, server.url))
        _pages(hook, "/v1/orders")
        _pages(hook, "/v1/orders")  # four responses, one distinct notice... plus page 1's links
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err
    assert len(hook.deprecations) == 2  # page 1 (with the successor link) and page 2 (without)
    first = hook.deprecations[0]
    assert first.deprecated == "2026-01-01T00:00:00+00:00"
    assert first.sunset == "2026-10-31T23:59:59+00:00"
    assert ("successor-version", "https://docs.example/v3") in first.links
    assert text.count("API deprecation:") == 2
    assert "sunset 2026-10-31T23:59:59+00:00" in text and "/v1/orders" in text


def test_no_notice_without_the_headers() -> None:
    assert deprecation_notice({"Link": '<https://x/next>; rel="next"'}, "/a") is None
    assert deprecation_notice({"Deprecation": "false"}, "/a") is None
    assert deprecation_notice({"Deprecation": "true"}, "/a").deprecated == "yes"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"header": "Stripe-Version"}, "extra 'api_version' with 'header' needs the version in 'value'"),
        ({"header": "X-V", "query": "v", "value": "1"}, "exactly one of 'header', 'query' or 'path_prefix'"),
        ({"path_prefix": "/v2", "value": "2"}, "with 'path_prefix' takes no 'value'"),
        ({"value": "1"}, "got none"),
        ({"heder": "X-V", "value": "1"}, "unknown extra 'api_version.heder' (did you mean 'header'?)"),
    ],
)
def test_bad_version_pins_fail_before_any_request(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiConfigError) as raised:
        ApiSettings.from_extras({"api_version": extra}, conn_id="shop_api")
    assert message in str(raised.value)
    assert str(raised.value).startswith("connection 'shop_api': ")
