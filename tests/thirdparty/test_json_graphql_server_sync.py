"""A GraphQL source nobody here wrote, synced end to end: json-graphql-server (marmelab) behind nginx's
rate limit, a stream declared only as data, the data path into PostgreSQL (issue 15, item 5).

The stream's source is docs/graphql.md's recipe, read from the document: it pages
``allOrders(page, perPage, sortField, filter)`` with ``page_number`` and ``in: variables`` (page
0-based), takes the total from ``_allOrdersMeta(filter) { count }`` in the same query and puts the
window in the variables' filter. The extract is the real ExtractStreamOperator. The warehouse must
equal what the server holds for the window (asked directly, past the rate limit): nothing lost,
nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml

from apisync.errors import GraphQLError
from apisync.http import ApiHook
from apisync.pipeline.extract import ExtractStreamOperator
from apisync.pipeline.runner import WindowRun, run_window
from apisync.pipeline.staging import upstream_paths
from apisync.spec import StreamSpec, load_spec
from thirdparty.servers import ThirdPartyServer, orders, run_json_graphql_server

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(seconds=37)
ROWS = orders(2400, start=START, step=STEP)
# 1,946 orders; the end falls exactly on order 1,947's updated_at, which belongs to the next window.
WINDOW = (START, START + STEP * 1946)
FIELDS = "id updated_at amount status customer_email"  # what the recipe's query selects
DOC = Path(__file__).resolve().parents[2] / "docs" / "graphql.md"


def recipe_source(heading: str) -> dict[str, Any]:
    """The ``source`` of the YAML block under ``heading`` in docs/graphql.md: the document's recipe
    is what this test runs, so the two cannot drift apart."""
    section = DOC.read_text().split(f"## {heading}", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    source: dict[str, Any] = yaml.safe_load(block)["source"]
    return source


SOURCE = recipe_source("Recipe 2: page/perPage in the variables")
STREAM: dict[str, Any] = {
    "name": "graphql_orders",
    "description": "json-graphql-server's allOrders, paged with page/perPage in the GraphQL variables.",
    "source": SOURCE,
    "primary_key": ["id"],
    "cursor_field": "updated_at",
    "fields": {
        "id": {"type": "string"},  # a GraphQL ID: "1", "2", ...
        "updated_at": {"type": "timestamp"},
        "amount": {"type": "float"},
        "status": {"type": "string"},
        "customer_email": {"type": "string"},
    },
    "quality": {"suite": "graphql_orders", "quarantine_threshold": 0.0},
    "destination": {"table": "graphql_orders", "write_mode": "merge"},
}
SUITE = {
    "name": "graphql_orders",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "updated_at"}},
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[ThirdPartyServer]:
    with run_json_graphql_server({"orders": ROWS}, rate=50, burst=10) as running:
        yield running


def _include(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream: dict[str, Any]) -> StreamSpec:
    """The stream and its suite in an include folder of their own: the spec is data, nothing else."""
    include = tmp_path / "include"
    (include / "streams").mkdir(parents=True)
    (include / "expectations").mkdir()
    (include / "streams" / f"{stream['name']}.yaml").write_text(yaml.safe_dump(stream, sort_keys=False))
    (include / "expectations" / "graphql_orders.json").write_text(json.dumps(SUITE))
    monkeypatch.setenv("APISYNC_INCLUDE_DIR", str(include))
    return load_spec(stream["name"])


def _connect(monkeypatch: pytest.MonkeyPatch, server: ThirdPartyServer, tmp_path: Path) -> str:
    conn = {
        "conn_type": "http",
        "host": server.url,
        "extra": {"auth": {"type": "none"}, "rate_limit": {"path": str(tmp_path / "ratelimit.sqlite")}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_JSON_GRAPHQL_SERVER", json.dumps(conn))
    return "json_graphql_server"


def _sync(
    spec: StreamSpec,
    conn_id: str,
    root: Path,
    engine: sa.Engine,
    schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[WindowRun, dict[str, Any]]:
    """What the sync DAG's tasks do: the extract operator (the hook pages the spec's source into
    staged raw pages), then normalize -> validate -> load of exactly that attempt's pages."""
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{root}")
    context = {
        "run_id": "scheduled__2026-01-01T20:00:02+00:00",
        "ti": SimpleNamespace(try_number=1),
        "data_interval_start": WINDOW[0],
        "data_interval_end": WINDOW[1],
        "params": {},
    }
    extracted = ExtractStreamOperator(task_id="extract", stream=spec.name, conn_id=conn_id).execute(context)
    run = run_window(
        spec,
        None,
        upstream_paths(extracted),
        engine,
        window=WINDOW,
        run_id=context["run_id"],
        db_schema=schema,
    )
    return run, extracted


def _truth(server: ThirdPartyServer) -> list[dict[str, Any]]:
    """The window's orders as the server holds them, asked directly (one request, no rate limit)."""
    window = {"updated_at_gte": WINDOW[0].isoformat(), "updated_at_lt": WINDOW[1].isoformat()}
    query = f"query($f: OrderFilter) {{ allOrders(perPage: 100000, filter: $f) {{ {FIELDS} }} }}"
    body = requests.post(
        server.direct_url + "/", json={"query": query, "variables": {"f": window}}, timeout=30
    )
    rows: list[dict[str, Any]] = body.json()["data"]["allOrders"]
    return rows


def test_the_window_syncs_completely_with_page_and_per_page_in_the_variables(
    server: ThirdPartyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    pg_schema: str,
) -> None:
    spec = _include(tmp_path, monkeypatch, STREAM)
    engine = sa.create_engine(postgres_url)
    try:
        conn_id = _connect(monkeypatch, server, tmp_path)
        run, extracted = _sync(spec, conn_id, tmp_path / "stage", engine, pg_schema, monkeypatch)
        with engine.connect() as conn:
            loaded = conn.execute(
                sa.text(
                    f'SELECT id, updated_at, amount, status, customer_email FROM "{pg_schema}".graphql_orders'
                )
            ).all()
    finally:
        engine.dispose()
    truth = _truth(server)
    assert len(truth) == 1946 and {r["id"] for r in truth} == {str(n) for n in range(1, 1947)}
    warehouse = sorted(
        (str(id_), updated.astimezone(UTC), float(amount), status, email)
        for id_, updated, amount, status, email in loaded
    )
    expected = sorted(
        (
            r["id"],
            datetime.fromisoformat(r["updated_at"]),
            float(r["amount"]),
            r["status"],
            r["customer_email"],
        )
        for r in truth
    )
    assert len(warehouse) == len({row[0] for row in warehouse}), "an order was loaded twice"
    assert warehouse == expected, "the warehouse differs from the server"
    assert run.normalized.pulled == extracted["records"] == len(truth)
    assert run.loaded.inserted == len(truth) and run.validated.quarantined == 0
    assert extracted["pages"] == 20 and extracted["repeated"] == 0
    served = server.status_counts()
    assert served[200] >= 20 and set(served) <= {200, 429}  # 429s (the limit) are retried, nothing else


def test_a_query_with_a_bad_field_fails_with_the_servers_message(
    server: ThirdPartyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    pg_schema: str,
) -> None:
    stream = json.loads(json.dumps(STREAM))
    stream["source"]["json"]["query"] = SOURCE["json"]["query"].replace("customer_email", "customer_mail")
    spec = _include(tmp_path, monkeypatch, stream)
    engine = sa.create_engine(postgres_url)
    try:
        with pytest.raises(GraphQLError) as info:
            _sync(
                spec,
                _connect(monkeypatch, server, tmp_path),
                tmp_path / "stage",
                engine,
                pg_schema,
                monkeypatch,
            )
    finally:
        engine.dispose()
    message = str(info.value)
    assert 'Cannot query field "customer_mail" on type "Order"' in message
    assert "expected a list" not in message and info.value.errors


def test_a_bad_field_fails_with_the_servers_message_whatever_the_paginator(
    server: ThirdPartyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's read: page_number with its parameters in the URL (where GraphQL ignores them)."""
    hook = ApiHook(_connect(monkeypatch, server, tmp_path))
    body = {"query": "{ allOrders(perPage: 5) { id nosuch } }"}
    with pytest.raises(GraphQLError) as info:
        list(
            hook.paginate(
                "/",
                method="POST",
                json=body,
                records_path="data.allOrders",
                pagination={"type": "page_number", "page_size": 5, "total_path": None},
            )
        )
    assert 'Cannot query field "nosuch" on type "Order"' in str(info.value)
    assert "expected a list" not in str(info.value)
