"""Conditional requests against a server nobody here wrote: json-server's Express ETags.

The json-server page-number recipe with ``conditional_requests: true``, extracted by the real
extract task three times for one window: the first stages every page with its (weak) ETag; the
second asks If-None-Match and nginx's log shows json-server answering 304 for every page but the
last (the page that ended the read is always asked in full); after one order in the window is
changed on the server, the third gets that order's page in full. Each time the staged records are
exactly what the server holds for the window.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from apisync.pipeline.extract import ExtractStreamOperator
from apisync.pipeline.staging import upstream_paths
from apisync.staging.raw_pages import iter_raw_pages
from tests.http.conftest import api_conn
from tests.recipes import recipe
from tests.thirdparty.declared_sync import ORDERS, WINDOWS, declare_stream, iso_ms
from thirdparty.servers import ThirdPartyServer, run_json_server

__all__ = ["api_conn"]
WINDOW = WINDOWS[0]


@pytest.fixture
def json_server() -> Iterator[ThirdPartyServer]:
    with run_json_server({"orders": ORDERS}, rate=50, burst=10) as server:
        yield server


def _extract(stream: str, conn_id: str, run_id: str) -> dict[str, Any]:
    operator = ExtractStreamOperator(task_id="extract", stream=stream, conn_id=conn_id)
    context = {
        "run_id": run_id,
        "ti": SimpleNamespace(try_number=1),
        "data_interval_start": WINDOW[0],
        "data_interval_end": WINDOW[1],
        "params": {},
    }
    result: dict[str, Any] = operator.execute(context)
    return result


def _staged(extracted: dict[str, Any]) -> dict[int, dict[str, Any]]:
    pages = iter_raw_pages(upstream_paths(extracted).raw)
    return {r["id"]: r for r in (json.loads(line) for page in pages for line in page.lines())}


def _truth(server: ThirdPartyServer) -> dict[int, dict[str, Any]]:
    rows = requests.get(server.direct_url + "/orders", timeout=30).json()
    start, end = iso_ms(WINDOW[0]), iso_ms(WINDOW[1])
    return {r["id"]: r for r in rows if start <= r["updated_at"] <= end}  # the recipe's inclusive end


def _served(server: ThirdPartyServer) -> Counter[int]:
    return server.status_counts()


def test_json_server_answers_304_and_the_staged_window_stays_the_servers_data(
    json_server: ThirdPartyServer, api_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = recipe("json-server-page-number")
    source["conditional_requests"] = True
    spec = declare_stream(tmp_path / "include", monkeypatch, "conditional_orders", source)
    assert spec.source.conditional_requests
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")
    conn_id = api_conn(json_server, auth={"type": "none"}, password=None, rate_limit={})

    first = _extract(spec.name, conn_id, "scheduled__1")
    pages = first["pages"]
    assert pages >= 5
    assert _staged(first) == _truth(json_server)
    after_first = _served(json_server)
    assert after_first[304] == 0

    second = _extract(spec.name, conn_id, "manual__2")
    served = _served(json_server) - after_first
    assert served[304] == pages - 1, "every page but the one that ended the read came back 304"
    assert second["api_not_modified"] == pages - 1
    assert _staged(second) == _truth(json_server)

    changed = next(r for r in ORDERS if r["id"] == 150)  # on page 2 of 100 records
    assert iso_ms(WINDOW[0]) <= changed["updated_at"] <= iso_ms(WINDOW[1])
    patched = requests.patch(json_server.direct_url + "/orders/150", json={"status": "void"}, timeout=10)
    assert patched.status_code == 200
    before_third = _served(json_server)
    third = _extract(spec.name, conn_id, "manual__3")
    served = _served(json_server) - before_third
    assert served[304] == pages - 2, "the changed page and the last one came in full"
    assert _staged(third)[150]["status"] == "void"
    assert _staged(third) == _truth(json_server)
