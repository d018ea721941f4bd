"""Reference clients for each pagination dialect, written from the sandbox README (no sandbox code)."""

from __future__ import annotations

from typing import Any

import requests

from sandbox.testing import SandboxHandle
from sandbox.timestamps import parse_instant

PAGE = 20
Window = tuple[str, str] | None


def _get(http: requests.Session, url: str, params: dict[str, Any] | None = None) -> requests.Response:
    response = http.get(url, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response


def page_stripe(sb: SandboxHandle, http: requests.Session, resource: str, window: Window) -> list[dict]:
    params: dict[str, Any] = {"limit": PAGE}
    if window:
        params.update({"updated[gte]": parse_instant(window[0]), "updated[lt]": parse_instant(window[1])})
    records: list[dict] = []
    while True:
        body = _get(http, f"{sb.url}/v1/{resource}", params).json()
        assert body["object"] == "list" and body["url"] == f"/v1/{resource}"
        assert len(body["data"]) <= PAGE
        records += body["data"]
        if not body["has_more"]:
            return records
        params["starting_after"] = body["data"][-1]["id"]


def page_github(
    sb: SandboxHandle, http: requests.Session, resource: str, window: Window, **extra: str
) -> list:
    params: dict[str, Any] = {"per_page": PAGE, **extra}
    if window:
        params.update({"since": window[0], "until": window[1]})
    url: str | None = f"{sb.url}/repos/octo/shop/{resource}"
    records: list[dict] = []
    while url:
        response = _get(http, url, params)
        params = None  # the Link URL carries the query
        records += response.json()
        if "next" in response.links:
            assert "last" in response.links and response.links["next"]["url"].startswith("http://")
        url = response.links.get("next", {}).get("url")
    return records


def page_hubspot(sb: SandboxHandle, http: requests.Session, resource: str, window: Window) -> list[dict]:
    params: dict[str, Any] = {"limit": PAGE}
    if window:
        params.update({"updatedAfter": window[0], "updatedBefore": window[1]})
    records: list[dict] = []
    while True:
        body = _get(http, f"{sb.url}/crm/v3/objects/{resource}", params).json()
        records += body["results"]
        if "paging" not in body:
            return records
        params["after"] = body["paging"]["next"]["after"]


def page_offset(
    sb: SandboxHandle, http: requests.Session, resource: str, window: Window, by_limit: bool = False
) -> list[dict]:
    """Advances by the number of items received, or (by_limit) by the requested limit."""
    params: dict[str, Any] = {"limit": PAGE, "offset": 0}
    if window:
        params.update({"updated_gte": window[0], "updated_lt": window[1]})
    records: list[dict] = []
    while True:
        body = _get(http, f"{sb.url}/api/{resource}", params).json()
        records += body["items"]
        assert len(body["items"]) <= PAGE
        params["offset"] += PAGE if by_limit else len(body["items"])
        if params["offset"] >= body["total"] or not body["items"]:
            return records


def page_numbers(sb: SandboxHandle, http: requests.Session, resource: str, window: Window) -> list[dict]:
    params: dict[str, Any] | None = {"page_size": PAGE}
    if window:
        params.update({"updated_gte": window[0], "updated_lt": window[1]})
    url: str | None = f"{sb.url}/api/v2/{resource}"
    records: list[dict] = []
    while url:
        body = _get(http, url, params).json()
        params = None
        records += body["results"]
        url = body["next"]
    assert body["count"] == len(records)
    return records


GRAPHQL_QUERY = """
query Sync($first: Int!, $after: String, $from: String, $to: String) {
  RESOURCE(first: $first, after: $after, updatedAfter: $from, updatedBefore: $to) {
    edges { cursor node { NODE_FIELDS } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
# Every field of each record shape, so nodes compare equal to the ground truth.
NODE_FIELDS = {
    "products": "id title handle priceCents tags variants { sku price } createdAt updatedAt",
    "customers": (
        "id email firstname lastname phone company lifecyclestage address { city country } tags"
        " createdAt updatedAt"
    ),
}


def page_graphql(sb: SandboxHandle, http: requests.Session, resource: str, window: Window) -> list[dict]:
    query = GRAPHQL_QUERY.replace("RESOURCE", resource).replace("NODE_FIELDS", NODE_FIELDS[resource])
    variables: dict[str, Any] = {"first": PAGE, "after": None}
    if window:
        variables.update({"from": window[0], "to": window[1]})
    records: list[dict] = []
    while True:
        body = http.post(
            f"{sb.url}/graphql", json={"query": query, "variables": variables}, timeout=10
        ).json()
        assert "errors" not in body, body
        connection = body["data"][resource]
        records += [edge["node"] for edge in connection["edges"]]
        assert body["extensions"]["cost"]["requestedQueryCost"] > 0
        if not connection["pageInfo"]["hasNextPage"]:
            return records
        variables["after"] = connection["pageInfo"]["endCursor"]


PAGERS = {
    "stripe": page_stripe,
    "github": page_github,
    "hubspot": page_hubspot,
    "offset": page_offset,
    "page_number": page_numbers,
}
