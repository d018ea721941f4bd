"""Generated data: deterministic per seed, spread over the window, mutable through /_sandbox/mutate."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from sandbox.crm import EMAIL_PATTERN
from sandbox.data import RESOURCES
from sandbox.testing import SandboxHandle
from sandbox.timestamps import parse_instant

WINDOW_START, WINDOW_END = "2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z"
FIELDS = {
    "orders": ("created", "updated"),
    "customers": ("createdAt", "updatedAt"),
    "issues": ("created_at", "updated_at"),
    "products": ("createdAt", "updatedAt"),
}


@pytest.fixture(scope="module")
def sb(module_sandbox: Callable[..., SandboxHandle]) -> SandboxHandle:
    return module_sandbox(records=1000, seed=42)


def test_same_seed_same_records_across_runs(module_sandbox: Callable[..., SandboxHandle]) -> None:
    one = module_sandbox(records=50, seed=11)
    two = module_sandbox(records=50, seed=11)
    first = {resource: one.truth(resource) for resource in RESOURCES}
    for resource in RESOURCES:
        assert two.truth(resource) == first[resource]
    two.configure(seed=12)
    for resource in RESOURCES:
        assert two.truth(resource) != first[resource]


@pytest.mark.parametrize("resource", RESOURCES)
def test_timestamps_spread_in_window_and_some_updated_later(sb: SandboxHandle, resource: str) -> None:
    created_field, updated_field = FIELDS[resource]
    records = sb.truth(resource)
    assert len(records) == 1000
    low, high = parse_instant(WINDOW_START), parse_instant(WINDOW_END)
    created = [parse_instant(r[created_field]) for r in records]
    updated = [parse_instant(r[updated_field]) for r in records]
    assert all(low <= c <= u < high for c, u in zip(created, updated, strict=True))
    later = sum(u > c for c, u in zip(created, updated, strict=True))
    assert 150 <= later <= 250  # ~20%
    days = {(c - low) // 86400 for c in created}
    assert days == set(range(7))
    if resource == "orders":
        assert isinstance(records[0]["created"], int)
    else:
        assert records[0][updated_field].endswith("Z")


def test_record_shapes(sb: SandboxHandle) -> None:
    order = sb.truth("orders")[0]
    assert order["id"].startswith("ord_") and order["object"] == "order"
    assert order["amount"] == sum(i["quantity"] * i["unit_amount"] for i in order["items"])
    assert set(order["shipping"]["address"]) == {"line1", "city", "country", "postal_code"}
    issue = sb.truth("issues")[0]
    assert {"login", "id"} <= set(issue["user"]) and isinstance(issue["labels"], list)
    assert (issue["closed_at"] is None) == (issue["state"] == "open")
    product = sb.truth("products")[0]
    assert product["id"].startswith("gid://shop/Product/") and product["variants"]
    customers = sb.truth("customers")
    invalid = [c for c in customers if not EMAIL_PATTERN.match(c["email"])]
    assert 5 <= len(invalid) <= 45  # ~2% of 1000
    assert len({c["email"] for c in customers}) == len(customers)


def test_mutate_moves_records_into_a_later_window(sb: SandboxHandle, http: requests.Session) -> None:
    before = {r: {str(x["id"]): x for x in sb.truth(r)} for r in RESOURCES}
    at = "2026-01-09T00:00:00Z"
    changed = sb.mutate(5, at=at)["changed"]
    try:
        for resource in RESOURCES:
            _, updated_field = FIELDS[resource]
            moved = sb.truth(resource, updated_gte=at, updated_lt="2026-01-10T00:00:00Z")
            assert sorted(str(r["id"]) for r in moved) == sorted(map(str, changed[resource]))
            assert len(sb.truth(resource, WINDOW_START, WINDOW_END)) == 995
            for record in moved:
                old = before[resource][str(record["id"])]
                assert parse_instant(record[updated_field]) == parse_instant(at)
                differing = {k for k in record if record[k] != old[k]} - {updated_field, "closed_at"}
                assert differing, f"mutation must change a field besides the timestamp: {record}"
        # The dialects see the mutation too.
        items = http.get(f"{sb.url}/api/orders", params={"updated_gte": at, "limit": 100}).json()["items"]
        assert sorted(i["id"] for i in items) == sorted(changed["orders"])
    finally:
        sb.reset(data=True)
    assert len(sb.truth("orders", WINDOW_START, WINDOW_END)) == 1000


def test_mutate_only_moves_records_forward_in_time(sb: SandboxHandle) -> None:
    at = "2026-01-07T12:00:00Z"
    before = {r["id"]: r["updated"] for r in sb.truth("orders")}
    try:
        changed = sb.mutate(300, at=at)["changed"]["orders"]
        assert len(changed) == 300
        assert all(before[order_id] < parse_instant(at) for order_id in changed)
        after = {r["id"]: r["updated"] for r in sb.truth("orders")}
        assert all(after[order_id] == parse_instant(at) for order_id in changed)
        assert all(after[i] == before[i] for i in before if i not in set(changed))
    finally:
        sb.reset(data=True)


@pytest.mark.parametrize("seed,records", [(42, 1000), (7, 1_200_000)])
def test_column_wise_orders_render_the_order_template_byte_for_byte(seed: int, records: int) -> None:
    """The Arrow renderer must emit exactly ORDER_TEMPLATE per record (ids past 999,999 included)."""
    import msgspec
    import numpy as np

    from sandbox.data import ORDER_ITEM_TEMPLATE, ORDER_TEMPLATE, Dataset

    orders = Dataset(seed, records, WINDOW_START, WINDOW_END).get("orders")
    index = np.unique(np.linspace(0, records - 1, 3000).astype(np.int64))
    body = orders.records_json(index)
    texts = [bytes(t) for t in msgspec.json.decode(body, type=list[msgspec.Raw])]
    assert len(texts) == len(index)
    for text in texts:
        o = msgspec.json.decode(text)
        first, last = o["customer"]["name"].split(" ")
        number = int(o["customer"]["id"][4:])
        line1 = o["shipping"]["address"]["line1"].split(" ", 1)
        items = ",".join(
            ORDER_ITEM_TEMPLATE % (int(i["sku"][4:]), i["quantity"], i["unit_amount"]) for i in o["items"]
        )
        expected = ORDER_TEMPLATE % (
            int(o["id"][4:]),
            o["amount"],
            o["currency"],
            o["status"],
            number,
            first.lower(),
            last.lower(),
            number,
            first,
            last,
            items,
            int(line1[0]),
            line1[1],
            o["shipping"]["address"]["city"],
            o["shipping"]["address"]["country"],
            int(o["shipping"]["address"]["postal_code"]),
            msgspec.json.encode(o["metadata"]).decode(),
            o["created"],
            o["updated"],
        )
        assert text.decode() == expected
        assert o["amount"] == sum(i["quantity"] * i["unit_amount"] for i in o["items"])
