"""Every dialect pages every resource completely: nothing missed, nothing repeated, same records as truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from sandbox.data import RESOURCES
from sandbox.testing import SandboxHandle
from sandbox.timestamps import parse_instant
from tests.sandbox.pagers import PAGERS, Window, page_github, page_graphql, page_stripe

RECORDS = 237
WINDOW = ("2026-01-03T00:00:00Z", "2026-01-05T12:00:00Z")
UPDATED_FIELD = {
    "orders": "updated",
    "customers": "updatedAt",
    "issues": "updated_at",
    "products": "updatedAt",
}
CREATED_FIELD = {
    "orders": "created",
    "customers": "createdAt",
    "issues": "created_at",
    "products": "createdAt",
}


@pytest.fixture(scope="module")
def sb(module_sandbox: Callable[..., SandboxHandle]) -> SandboxHandle:
    return module_sandbox(seed=7, records=RECORDS, max_page_size=50)


def _assert_same_records(
    got: list[dict], truth: list[dict], key: Callable[[dict], Any] = lambda r: r["id"]
) -> None:
    ids = [key(r) for r in got]
    assert len(ids) == len(set(ids)), "a record was repeated across pages"
    assert sorted(map(str, ids)) == sorted(str(r["id"]) for r in truth), "records missed or extra"


@pytest.mark.parametrize("window", [None, WINDOW], ids=["all", "window"])
@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("dialect", sorted(PAGERS))
def test_dialect_pages_completely(
    sb: SandboxHandle, http: requests.Session, dialect: str, resource: str, window: Window
) -> None:
    truth = sb.truth(resource, *(window or (None, None)))
    assert len(truth) > 0 and (window or len(truth) == RECORDS)
    got = PAGERS[dialect](sb, http, resource, window)
    if dialect == "hubspot":
        _assert_same_records(got, truth)
        by_id = {str(r["id"]): r for r in truth}
        for obj in got:
            record = by_id[obj["id"]]
            assert obj["archived"] is False
            assert obj["properties"]["hs_object_id"] == obj["id"]
            if resource != "orders":
                assert obj["updatedAt"] == record[UPDATED_FIELD[resource]]
    else:
        _assert_same_records(got, truth)
        assert sorted(got, key=lambda r: str(r["id"])) == sorted(truth, key=lambda r: str(r["id"]))


@pytest.mark.parametrize("window", [None, WINDOW], ids=["all", "window"])
@pytest.mark.parametrize("resource", ["products", "customers"])
def test_graphql_relay_pages_completely(
    sb: SandboxHandle, http: requests.Session, resource: str, window: Window
) -> None:
    truth = sb.truth(resource, *(window or (None, None)))
    got = page_graphql(sb, http, resource, window)
    _assert_same_records(got, truth)
    assert sorted(got, key=lambda r: r["id"]) == sorted(truth, key=lambda r: r["id"])


def test_stripe_is_newest_first(sb: SandboxHandle, http: requests.Session) -> None:
    records = page_stripe(sb, http, "orders", None)
    keys = [(r["created"], int(r["id"].removeprefix("ord_"))) for r in records]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_github_sort_updated(sb: SandboxHandle, http: requests.Session, direction: str) -> None:
    records = page_github(sb, http, "issues", WINDOW, sort="updated", direction=direction)
    _assert_same_records(records, sb.truth("issues", *WINDOW))
    stamps = [r["updated_at"] for r in records]
    assert stamps == sorted(stamps, reverse=direction == "desc")


@pytest.mark.parametrize("resource", RESOURCES)
def test_window_filter_is_half_open_on_updated(sb: SandboxHandle, resource: str) -> None:
    everything = sb.truth(resource)
    low, high = (parse_instant(w) for w in WINDOW)
    # Put the bounds on real record times to exercise both edges of [gte, lt).
    stamps = sorted(parse_instant(r[UPDATED_FIELD[resource]]) for r in everything)
    low, high = stamps[len(stamps) // 4], stamps[3 * len(stamps) // 4]
    expected = [r for r in everything if low <= parse_instant(r[UPDATED_FIELD[resource]]) < high]
    windowed = sb.truth(resource, low, high)
    assert sorted(map(str, (r["id"] for r in windowed))) == sorted(map(str, (r["id"] for r in expected)))
    assert any(parse_instant(r[UPDATED_FIELD[resource]]) == low for r in windowed)
    assert all(parse_instant(r[UPDATED_FIELD[resource]]) != high for r in windowed)


def test_limits_above_max_page_size_are_rejected(sb: SandboxHandle, http: requests.Session) -> None:
    assert http.get(f"{sb.url}/v1/orders", params={"limit": 51}).status_code == 400
    assert http.get(f"{sb.url}/api/orders", params={"limit": 51}).status_code == 400
    assert len(http.get(f"{sb.url}/repos/o/r/orders", params={"per_page": 500}).json()) == 50
    assert http.get(f"{sb.url}/v1/nothing").status_code == 404
    assert http.get(f"{sb.url}/v1/orders", params={"starting_after": "ord_999999"}).status_code == 400
    body = http.post(
        f"{sb.url}/graphql", json={"query": "{ products(first: 51) { edges { cursor } } }"}
    ).json()
    assert body["errors"][0]["message"].startswith("Argument 'first'")
    body = http.post(f"{sb.url}/graphql", json={"query": "{ shop { name } }"}).json()
    assert "errors" in body


def _graphql(sb: SandboxHandle, http: requests.Session, query: str, **variables: object) -> dict:
    response = http.post(f"{sb.url}/graphql", json={"query": query, "variables": variables}, timeout=10)
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("query { products(first: 5) { nosuchfield { x } } ", "Syntax Error"),
        ("query { products(first: 5) { nosuchfield { x } } }", "Field 'nosuchfield' doesn't exist"),
        (
            "{ products(first: 5) { edges { node { id colour } } } }",
            "Field 'colour' doesn't exist on type 'Product'",
        ),
        ("{ products(first: 5) { edges { node { variants } } } }", "must have a selection of subfields"),
        ("{ products(first: 5) { edges { node { id { x } } } } }", "must not have a selection"),
        ("{ products(first: 5, sort: TITLE) { edges { cursor } } }", "Unknown argument"),
        ("{ products { edges { cursor } } }", "Argument 'first'"),
        ("{ shop { name } }", "Field 'shop' doesn't exist on type 'QueryRoot'"),
        ("mutation { products(first: 1) { edges { cursor } } }", "Only query operations"),
        ("{ products(first: 5) { ...F } }", "Fragments"),
    ],
)
def test_graphql_invalid_queries_are_errors_in_200(
    sb: SandboxHandle, http: requests.Session, query, message
) -> None:
    body = _graphql(sb, http, query)
    assert "data" not in body
    assert message in body["errors"][0]["message"]


def test_graphql_returns_only_the_selection(sb: SandboxHandle, http: requests.Session) -> None:
    query = """query Q($n: Int!) {
      __typename
      shop: products(first: $n) {
        totalCount
        nodes { id __typename }
        edges { node { title v: variants { sku } } }
        pageInfo { hasNextPage }
      }
    }"""
    body = _graphql(sb, http, query, n=3)
    data = body["data"]
    assert data["__typename"] == "QueryRoot"
    shop = data["shop"]
    truth = sb.truth("products")
    assert shop["totalCount"] == len(truth) == RECORDS
    assert shop["pageInfo"] == {"hasNextPage": True}
    assert [set(node) for node in shop["nodes"]] == [{"id", "__typename"}] * 3
    assert shop["nodes"][0]["__typename"] == "Product"
    by_id = {r["id"]: r for r in truth}
    for node, edge in zip(shop["nodes"], shop["edges"], strict=True):
        record = by_id[node["id"]]
        assert edge["node"] == {
            "title": record["title"],
            "v": [{"sku": v["sku"]} for v in record["variants"]],
        }
