"""The third-party servers start, serve their data, and the rate limit in front of them is real."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from thirdparty.servers import orders, run_datasette, run_json_graphql_server, run_json_server

ROWS = orders(30, start=datetime(2026, 1, 1, tzinfo=UTC))


def test_json_server_pages_and_limits_with_429_and_retry_after_only() -> None:
    with run_json_server({"orders": ROWS}, rate=2, burst=1) as server:
        page = requests.get(server.url + "/orders", params={"_page": 2, "_limit": 10}, timeout=10)
        assert page.status_code == 200
        assert [r["id"] for r in page.json()] == list(range(11, 21))
        assert page.headers["X-Total-Count"] == "30"
        statuses = [requests.get(server.url + "/orders", timeout=10) for _ in range(6)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, "a burst past the limit is refused"
        assert limited[0].headers["Retry-After"] == "1"
        assert not [h for h in limited[0].headers if h.lower().startswith(("ratelimit", "x-ratelimit"))]
        assert server.status_counts()[429] == len(limited)


def test_json_graphql_server_answers_on_the_root_path() -> None:
    with run_json_graphql_server({"orders": ROWS}) as server:
        query = "query($p: Int) { allOrders(page: $p, perPage: 10) { id } _allOrdersMeta { count } }"
        body = requests.post(
            server.url + "/", json={"query": query, "variables": {"p": 1}}, timeout=10
        ).json()
        assert [int(r["id"]) for r in body["data"]["allOrders"]] == list(range(11, 21))
        assert body["data"]["_allOrdersMeta"] == {"count": 30}


def test_datasette_serves_keyset_pages_with_a_next_url_through_the_proxy() -> None:
    with run_datasette({"orders": ROWS}) as server:
        body = requests.get(
            server.url + "/db/orders.json", params={"_shape": "objects", "_size": 10}, timeout=10
        )
        data = body.json()
        assert [r["id"] for r in data["rows"]] == list(range(1, 11))
        assert data["next_url"].startswith(server.url + "/db/orders.json?")
        # The key column is typed: keyset paging on it goes on (untyped, page 2 came back empty).
        second = requests.get(data["next_url"], timeout=10).json()
        assert [r["id"] for r in second["rows"]] == list(range(11, 21))
