"""Deterministic records shaped like the sandbox's orders (Stripe-style), for data-path tests."""

from __future__ import annotations

import random
from typing import Any

WINDOW_START = 1767225600  # 2026-01-01T00:00:00Z
WINDOW_END = WINDOW_START + 7 * 86400
CURRENCIES = ("usd", "eur", "gbp", "jpy")
STATUSES = ("pending", "paid", "shipped", "delivered", "refunded")


def make_order(i: int, seed: int = 42, revision: int = 0) -> dict[str, Any]:
    rng = random.Random(seed * 1_000_003 + i)
    created = WINDOW_START + rng.randrange(0, WINDOW_END - WINDOW_START - 3600)
    updated = created + (rng.randrange(60, 3000) if rng.random() < 0.2 else 0) + revision
    items = [
        {
            "sku": f"SKU-{rng.randrange(1, 500):05d}",
            "quantity": rng.randrange(1, 5),
            "unit_amount": rng.randrange(100, 9000),
        }
        for _ in range(rng.randrange(1, 4))
    ]
    return {
        "id": f"ord_{i + 1:06d}",
        "object": "order",
        "amount": sum(item["quantity"] * item["unit_amount"] for item in items),
        "currency": CURRENCIES[rng.randrange(4)],
        "status": STATUSES[(rng.randrange(5) + revision) % 5],
        "customer": {
            "id": f"cus_{i % 997:06d}",
            "email": f"user{i % 997}@example.com",
            "name": f"User {i % 997}",
        },
        "items": items,
        "shipping": {
            "address": {
                "line1": f"{i} Main St",
                "city": "Springfield",
                "country": "US",
                "postal_code": f"{i % 100000:05d}",
            }
        },
        "metadata": {"revision": str(revision)} if revision else {},
        "created": created,
        "updated": updated,
    }


def make_orders(count: int, seed: int = 42, start: int = 0) -> list[dict[str, Any]]:
    return [make_order(i, seed) for i in range(start, start + count)]


class Page:
    """What ApiHook.paginate yields, as far as extract_to_files cares."""

    def __init__(self, number: int, records: list[dict[str, Any]]) -> None:
        self.number = number
        self.records = records


def pages_of(records: list[dict[str, Any]], size: int = 100) -> list[Page]:
    return [
        Page(n + 1, records[offset : offset + size]) for n, offset in enumerate(range(0, len(records), size))
    ]
