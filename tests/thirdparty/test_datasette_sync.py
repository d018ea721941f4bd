"""Datasette (Simon Willison's, not ours) synced end to end from a spec that is only data.

The docs/recipes.md recipe ``datasette-next-url``: ``_shape=objects`` (records at ``rows``),
``_size`` pages, the body's absolute ``next_url`` followed, the window on ``updated_at__gte`` /
``updated_at__lt`` (half-open, text compared: rendered as stored, ISO with milliseconds). Two
adjacent windows of ~1,000 orders; the warehouse (PostgreSQL) must equal the server's table read
past the rate limit: 0 lost, 0 duplicated, every 429 retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.http.conftest import api_conn
from tests.load.datapath_fixtures import Target
from tests.recipes import recipe
from tests.thirdparty.declared_sync import (
    ORDERS,
    assert_warehouse_is_the_servers_data,
    declare_stream,
    served_to_the_sync,
    sync_windows,
)
from thirdparty.servers import ThirdPartyServer, run_datasette

__all__ = ["api_conn"]


@pytest.fixture
def postgres(pg_schema: str, postgres_url: str) -> Iterator[Target]:
    engine = sa.create_engine(postgres_url)
    yield Target(engine, pg_schema)
    engine.dispose()


def _truth(server: ThirdPartyServer) -> list[dict[str, Any]]:
    """The whole table, straight from Datasette past the rate limit, by SQL in slices of 1,000
    (its cap on returned rows) so the truth does not depend on the paging under test."""
    rows: list[dict[str, Any]] = []
    while True:
        sql = f"select * from orders order by id limit 1000 offset {len(rows)}"
        body = requests.get(
            server.direct_url + "/db.json", params={"sql": sql, "_shape": "objects"}, timeout=30
        ).json()
        rows += body["rows"]
        if len(body["rows"]) < 1000:
            return rows


@pytest.mark.parametrize("rate_limit", ["none declared", "declared"])
def test_datasette_orders_land_in_the_warehouse_exactly(
    rate_limit: str, postgres: Target, api_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = declare_stream(tmp_path / "include", monkeypatch, "datasette_orders", recipe("datasette-next-url"))
    with run_datasette({"orders": ORDERS}, rate=50, burst=10) as server:
        declared = {"requests": 40, "period_s": 1, "burst": 5} if rate_limit == "declared" else {}
        conn_id = api_conn(server, auth={"type": "none"}, password=None, rate_limit=declared)
        synced = sync_windows(spec, conn_id, postgres, tmp_path / "stage")
        truth = _truth(server)
        served = served_to_the_sync(server)
    assert len(truth) == len(ORDERS)
    assert_warehouse_is_the_servers_data(postgres, spec.destination.table, truth, synced)
    assert [run.normalized.out_of_window for run in synced.runs] == [0, 0]  # a half-open filter
    rate = rate_limit.replace(" ", "_")
    print(
        f"BENCH thirdparty_sync server=datasette recipe=datasette-next-url rate_limit={rate} "
        f"requests={synced.api['requests']} r429={served[429]} pages={synced.api['pages']}"
    )
    assert served[429] == synced.api["r429"], "every 429 nginx sent was seen and retried"
    assert served[200] == synced.api["pages"], "no page was lost or read twice"
    assert synced.api["records"] == len(ORDERS)
