"""GraphQL partial results quarantined per record, against the real json-graphql-server (issue 15).

json-graphql-server types an all-integer field as GraphQL ``Int`` (32-bit). An order whose
``quantity`` is 2**40 cannot be represented: the server answers the page with data (that field
null) and an error at ``["allOrders", <index>, "quantity"]``. With ``partial_results: quarantine``
exactly those orders go to the quarantine table with the server's message, the rest load; with
``fail`` the read fails; an error that points into no record fails with ``quarantine`` too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from apisync.errors import GraphQLError, QuarantineThresholdError
from tests.thirdparty.test_json_graphql_server_sync import ROWS, SOURCE, STREAM, _connect, _include, _sync
from thirdparty.servers import ThirdPartyServer, run_json_graphql_server

HUGE = 2**40  # outside GraphQL's 32-bit Int
BAD_IDS = {"7", "250", "1203"}  # on pages 0, 2 and 12 of the window's 20 pages of 100
# quantity: a small integer, null for one order (so the field is nullable and an error nulls only
# the field, not the order), 2**40 for the orders the errors will point at.
PARTIAL_ROWS = [
    {**row, "quantity": HUGE if str(row["id"]) in BAD_IDS else (None if row["id"] == 2 else 1)}
    for row in ROWS
]
MESSAGE = f"Int cannot represent non 32-bit signed integer value: {HUGE}"


@pytest.fixture(scope="module")
def server() -> Iterator[ThirdPartyServer]:
    with run_json_graphql_server(
        {"orders": PARTIAL_ROWS, "customers": [{"id": 1, "big": HUGE}, {"id": 2}]}
    ) as s:
        yield s


def _stream(partial_results: str, threshold: float = 0.01, extra_field: str = "") -> dict[str, Any]:
    stream = json.loads(json.dumps(STREAM))
    query = SOURCE["json"]["query"].replace("customer_email }", "customer_email quantity }")
    stream["source"]["json"]["query"] = query.replace("count } }", "count } " + extra_field + "}")
    stream["source"]["graphql"] = {"partial_results": partial_results}
    stream["fields"]["quantity"] = {"type": "integer"}
    stream["quality"]["quarantine_threshold"] = threshold
    return stream


def _run(
    stream: dict[str, Any],
    server: ThirdPartyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    pg_schema: str,
) -> tuple[Any, dict[str, Any], list[Any], list[Any]]:
    spec = _include(tmp_path, monkeypatch, stream)
    engine = sa.create_engine(postgres_url)
    try:
        run, extracted = _sync(
            spec, _connect(monkeypatch, server, tmp_path), tmp_path / "stage", engine, pg_schema, monkeypatch
        )
        with engine.connect() as conn:
            loaded = conn.execute(sa.text(f'SELECT id, quantity FROM "{pg_schema}".graphql_orders')).all()
            quarantined = conn.execute(
                sa.text(
                    "SELECT record_key, raw_page, raw_line, raw_record, failures, run_id"
                    f' FROM "{pg_schema}".quarantine'
                )
            ).all()
    finally:
        engine.dispose()
    return run, extracted, loaded, quarantined


def test_the_records_the_errors_point_at_are_quarantined_with_the_servers_message(
    server: ThirdPartyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    pg_schema: str,
) -> None:
    run, extracted, loaded, quarantined = _run(
        _stream("quarantine"), server, tmp_path, monkeypatch, postgres_url, pg_schema
    )
    assert {json.loads(key)["id"] for key, *_ in quarantined} == BAD_IDS
    for record_key, page, line, raw_record, failures, run_id in quarantined:
        key = json.loads(record_key)["id"]
        reasons = failures if isinstance(failures, list) else json.loads(failures)
        index = (int(key) - 1) % 100  # the order's index in its page of 100, sorted by id
        assert reasons == [{"check": "graphql", "message": f"{MESSAGE} (at allOrders.{index}.quantity)"}]
        assert (page, line) == ((int(key) - 1) // 100 + 1, index)
        assert json.loads(raw_record) == {  # the record as the server sent it: the field nulled
            **json.loads(raw_record),
            "id": str(key),
            "quantity": None,
        }
        assert run_id == "scheduled__2026-01-01T20:00:02+00:00"
    assert len(loaded) == 1946 - len(BAD_IDS)
    assert {str(id_) for id_, _ in loaded}.isdisjoint(BAD_IDS)
    assert run.validated.quarantined == len(BAD_IDS)
    assert run.normalized.pulled == extracted["records"] == 1946  # loaded + quarantined: accounted


def test_the_quarantined_records_are_held_against_the_threshold(
    server: ThirdPartyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    pg_schema: str,
) -> None:
    with pytest.raises(QuarantineThresholdError):
        _run(_stream("quarantine", threshold=0.0), server, tmp_path, monkeypatch, postgres_url, pg_schema)


def test_fail_still_fails_with_the_servers_message(
    server: ThirdPartyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    pg_schema: str,
) -> None:
    with pytest.raises(GraphQLError) as info:
        _run(_stream("fail"), server, tmp_path, monkeypatch, postgres_url, pg_schema)
    assert MESSAGE in str(info.value) and "partial results" in str(info.value)


def test_an_error_that_points_into_no_record_fails_with_quarantine(
    server: ThirdPartyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    pg_schema: str,
) -> None:
    """The error at ``allCustomers.0.big`` is in another top-level field: no order to quarantine."""
    stream = _stream("quarantine", extra_field="allCustomers { id big } ")
    with pytest.raises(GraphQLError) as info:
        _run(stream, server, tmp_path, monkeypatch, postgres_url, pg_schema)
    assert "point into no record" in str(info.value) and "allCustomers.0.big" in str(info.value)
