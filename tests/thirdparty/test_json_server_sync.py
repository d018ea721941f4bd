"""json-server (typicode, not ours) synced end to end from a spec that is only data, three ways.

The recipes of docs/recipes.md for json-server: page number (``_page``/``_limit``), offset
(``_start``/``_limit``), and its Link header, each over two adjacent windows of ~1,000 orders on
``updated_at_gte``/``updated_at_lte`` (0.17 has no ``_lt``: the end is inclusive, so the order on
the boundary comes back in both windows). The warehouse (PostgreSQL, a schema of the test's own)
must equal what the server holds, read past the rate limit: 0 lost, 0 duplicated. nginx in front
answers 429 + Retry-After: 1 past its budget; every 429 it sent was retried, none lost a page.
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
from thirdparty.servers import ThirdPartyServer, run_json_server

__all__ = ["api_conn"]


@pytest.fixture(scope="module")
def json_server() -> Iterator[ThirdPartyServer]:
    with run_json_server({"orders": ORDERS}, rate=50, burst=10) as server:
        yield server


@pytest.fixture
def postgres(pg_schema: str, postgres_url: str) -> Iterator[Target]:
    engine = sa.create_engine(postgres_url)
    yield Target(engine, pg_schema)
    engine.dispose()


@pytest.mark.parametrize("name", ["json-server-page-number", "json-server-offset", "json-server-link-header"])
@pytest.mark.parametrize("rate_limit", ["none declared", "declared"])
def test_json_server_orders_land_in_the_warehouse_exactly(
    name: str,
    rate_limit: str,
    json_server: ThirdPartyServer,
    postgres: Target,
    api_conn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = name.replace("-", "_")
    spec = declare_stream(tmp_path / "include", monkeypatch, table, recipe(name))
    declared = {"requests": 40, "period_s": 1, "burst": 5} if rate_limit == "declared" else {}
    conn_id = api_conn(json_server, auth={"type": "none"}, password=None, rate_limit=declared)
    before = served_to_the_sync(json_server)
    synced = sync_windows(spec, conn_id, postgres, tmp_path / "stage")

    truth = requests.get(json_server.direct_url + "/orders", timeout=30).json()  # past the limit
    assert len(truth) == len(ORDERS)
    assert_warehouse_is_the_servers_data(postgres, spec.destination.table, truth, synced)
    first, second = synced.runs
    assert first.normalized.out_of_window == 1, "the boundary order, returned by the inclusive end"
    assert second.normalized.out_of_window == 0
    served = served_to_the_sync(json_server) - before
    rate = rate_limit.replace(" ", "_")
    print(
        f"BENCH thirdparty_sync server=json-server recipe={name} rate_limit={rate} "
        f"requests={synced.api['requests']} r429={served[429]} pages={synced.api['pages']}"
    )
    assert served[429] == synced.api["r429"], "every 429 nginx sent was seen and retried"
    assert served[200] == synced.api["pages"], "no page was lost or read twice"
    assert synced.api["records"] == len(ORDERS) + 1  # the boundary order, in both windows


def test_a_tight_server_budget_costs_waits_never_rows(
    postgres: Target, api_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nginx at 2 r/s (burst 1) and no limit declared: the client meets 429 + Retry-After: 1 (a
    page a few milliseconds after the one before always does), waits and asks again; the
    warehouse is still exactly the server's data."""
    spec = declare_stream(tmp_path / "include", monkeypatch, "tight", recipe("json-server-page-number"))
    with run_json_server({"orders": ORDERS}, rate=2, burst=1) as server:
        conn_id = api_conn(server, auth={"type": "none"}, password=None, rate_limit={})
        synced = sync_windows(spec, conn_id, postgres, tmp_path / "stage")
        truth = requests.get(server.direct_url + "/orders", timeout=30).json()
        served = served_to_the_sync(server)
    print(
        f"BENCH thirdparty_sync server=json-server budget=2rps "
        f"requests={synced.api['requests']} r429={served[429]}"
    )
    assert_warehouse_is_the_servers_data(postgres, spec.destination.table, truth, synced)
    assert served[429] > 0, "the budget was met"
    assert served[429] == synced.api["r429"] == synced.api["retries"], "each 429 was retried"
    assert served[200] == synced.api["pages"]
