"""Issue 9, cases 5 and 8: values JSON cannot carry, or a warehouse column cannot hold, are
quarantined with their raw bytes, page URL (redacted) and field; the rest of the window loads.

The API is a local HTTP server that sends fixed bytes (a real server would never emit them on
purpose; a JSON library that writes ``NaN``, or a database with a broken encoding, does), read
through ApiHook with the API key in the query string, so the page URL holds a secret.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from apisync.http import ApiHook
from apisync.pipeline.runner import WindowRun, run_window
from apisync.quality.quarantine import quarantine_table, raw_record_bytes
from apisync.spec import load_spec, render_window
from apisync.staging.layout import RunPaths
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server
from tests.load.datapath_fixtures import WINDOW, Target
from tests.transform.order_records import make_orders

API_KEY = "s3cr3t-query-key"
BIG = 2**70  # 1180591620717411303424: no int64 holds it


def _record(record: dict[str, Any], **raw_fields: bytes) -> bytes:
    """A record's JSON text with ``raw_fields`` spliced in as bytes, exactly as given."""
    text = json.dumps(record).encode()[:-1]
    for name, value in raw_fields.items():
        text += b", " + json.dumps(name).encode() + b": " + value
    return text + b"}"


def _body(records: list[bytes], has_more: bool) -> bytes:
    return (
        b'{"object": "list", "data": ['
        + b", ".join(records)
        + b'], "has_more": '
        + (b"true" if has_more else b"false")
        + b"}"
    )


@pytest.fixture
def api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[list[bytes], list[bytes]], str]]:
    """``api(page1, page2)``: serve two pages of orders (cursor_body); the connection id."""
    pages: dict[str, bytes] = {}

    def answer(call: Call, _: ScriptedServer) -> Reply:
        if call.query.get("api_key") != API_KEY:
            return Reply(b"", status=401)
        return Reply(pages["2" if "starting_after" in call.query else "1"])

    with scripted_server(answer) as server:

        def serve(page1: list[bytes], page2: list[bytes]) -> str:
            pages["1"], pages["2"] = _body(page1, True), _body(page2, False)
            conn = {
                "conn_type": "http",
                "host": server.url,
                "password": API_KEY,
                "extra": {
                    "auth": {"type": "api_key", "query": "api_key"},
                    "rate_limit": {"path": str(tmp_path / "ratelimit.sqlite")},
                },
            }
            monkeypatch.setenv("AIRFLOW_CONN_BAD_VALUES_API", json.dumps(conn))
            return "bad_values_api"

        yield serve


def _sync(conn_id: str, target: Target, root: Path) -> WindowRun:
    spec = load_spec("orders")
    source = spec.source
    hook = ApiHook(http_conn_id=conn_id)
    pages = hook.paginate(
        source.endpoint,
        params=render_window(source.params, *WINDOW, source.window_format),
        pagination=source.pagination.model_dump(),
        records_path=source.records_path or None,
    )
    return run_window(
        spec, pages, RunPaths(root), target.engine, window=WINDOW, run_id="run-1", db_schema=target.db_schema
    )


def _quarantine(target: Target) -> dict[str, dict[str, Any]]:
    rows = target.rows(f"SELECT record_key, raw_record, failures, page_url FROM {target.table('quarantine')}")
    out = {}
    for key, raw, failures, url in rows:
        failures = failures if isinstance(failures, list) else json.loads(failures)
        out[json.loads(key)["id"]] = {
            "raw": raw,
            "reasons": " | ".join(f["message"] for f in failures if f["check"] == "coercion"),
            "page_url": url,
        }
    return out


def _assert_redacted_page_url(url: str | None) -> None:
    assert url is not None and url.startswith("http://127.0.0.1:") and "/v1/orders?" in url
    assert API_KEY not in url
    assert "api_key=***" in url


def _assert_accounted(target: Target, run: WindowRun, loaded_ids: set[str], quarantined: int) -> None:
    assert run.validated.quarantined == quarantined
    pulled, inserted, updated, unchanged, deduped, quarantined_count = target.rows(
        "SELECT records_pulled, records_inserted, records_updated, records_unchanged, records_deduped,"
        f" records_quarantined FROM {target.table('sync_runs')} WHERE status = 'success'"
    )[0]
    assert pulled == inserted + updated + unchanged + deduped + quarantined_count
    assert quarantined_count == quarantined
    ids = {row[0] for row in target.rows(f"SELECT id FROM {target.table('orders')}")}
    assert ids == loaded_ids


def test_case5_nan_and_infinity_are_quarantined_not_nulled(
    api: Callable[[list[bytes], list[bytes]], str], warehouse: Target, tmp_path: Path
) -> None:
    orders = make_orders(120)
    page1 = [_record(r) for r in orders[:60]]
    page2 = [_record(r) for r in orders[60:]]
    # "score" holds nothing but Infinity; "ratio" is a number everywhere but one NaN.
    page1[10] = _record(orders[10], score=b"Infinity", ratio=b"0.5")
    page1[20] = _record(orders[20], ratio=b"NaN")
    page2[5] = _record(orders[65], ratio=b"-Infinity")
    for position in (30, 40):
        page1[position] = _record(orders[position], ratio=b"0.25")
    # Nested in a declared json field: Arrow would read it as a double inside a struct.
    page2[10] = _record({k: v for k, v in orders[70].items() if k != "metadata"}, metadata=b'{"w": NaN}')
    conn_id = api(page1, page2)

    run = _sync(conn_id, warehouse, tmp_path / "stage")

    bad = _quarantine(warehouse)
    assert set(bad) == {orders[10]["id"], orders[20]["id"], orders[65]["id"], orders[70]["id"]}
    assert "field score: non-finite number Infinity (not valid JSON)" in bad[orders[10]["id"]]["reasons"]
    assert "field ratio: non-finite number NaN (not valid JSON)" in bad[orders[20]["id"]]["reasons"]
    assert "field ratio: non-finite number -Infinity (not valid JSON)" in bad[orders[65]["id"]]["reasons"]
    assert "field metadata.w: non-finite number NaN (not valid JSON)" in bad[orders[70]["id"]]["reasons"]
    assert bad[orders[10]["id"]]["raw"].encode() == page1[10]  # the bytes as sent, Infinity and all
    assert bad[orders[65]["id"]]["raw"].encode() == page2[5]
    for row in bad.values():
        _assert_redacted_page_url(row["page_url"])
    assert "starting_after=" in bad[orders[65]["id"]]["page_url"]  # page 2's own URL
    assert "starting_after=" not in bad[orders[10]["id"]]["page_url"]

    # The field that only ever held Infinity still has its column (a number, NULL where quarantined).
    with warehouse.engine.connect() as conn:
        columns = {
            c["name"]: c["type"] for c in sa.inspect(conn).get_columns("orders", schema=warehouse.db_schema)
        }
    assert "score" in columns and isinstance(columns["score"], sa.Float)
    ratios = dict(
        warehouse.rows(f"SELECT id, ratio FROM {warehouse.table('orders')} WHERE ratio IS NOT NULL")
    )
    assert ratios == {orders[30]["id"]: 0.25, orders[40]["id"]: 0.25}
    loaded = {r["id"] for r in orders} - set(bad)
    _assert_accounted(warehouse, run, loaded, 4)


def test_case8_integer_outside_int64_is_quarantined_naming_the_field(
    api: Callable[[list[bytes], list[bytes]], str], warehouse: Target, tmp_path: Path
) -> None:
    orders = make_orders(120)
    page1 = [_record(r) for r in orders[:60]]
    page2 = [_record(r) for r in orders[60:]]
    big = str(BIG).encode()
    page1[3] = _record({k: v for k, v in orders[3].items() if k != "amount"}, amount=big)
    # An undeclared field (unknown_fields: add) is inferred integer: out of range is a row error too.
    page2[7] = _record(orders[67], counter=big)
    page2[8] = _record(orders[68], counter=b"12")
    page2[9] = _record(orders[69], counter=b"9007199254740993")  # > 2**53: exact, not via a float
    conn_id = api(page1, page2)

    run = _sync(conn_id, warehouse, tmp_path / "stage")

    bad = _quarantine(warehouse)
    assert set(bad) == {orders[3]["id"], orders[67]["id"]}
    assert f"field amount: {BIG} is outside the integer range" in bad[orders[3]["id"]]["reasons"]
    assert f"field counter: {BIG} is outside the integer range" in bad[orders[67]["id"]]["reasons"]
    assert bad[orders[3]["id"]]["raw"].encode() == page1[3]
    assert bad[orders[67]["id"]]["raw"].encode() == page2[7]
    for row in bad.values():
        _assert_redacted_page_url(row["page_url"])
    counters = dict(
        warehouse.rows(f"SELECT id, counter FROM {warehouse.table('orders')} WHERE counter IS NOT NULL")
    )
    assert counters == {orders[68]["id"]: 12, orders[69]["id"]: 9007199254740993}
    amounts = dict(warehouse.rows(f"SELECT id, amount FROM {warehouse.table('orders')}"))
    assert amounts[orders[4]["id"]] == orders[4]["amount"]
    _assert_accounted(warehouse, run, {r["id"] for r in orders} - set(bad), 2)


def test_case8_invalid_utf8_record_is_quarantined_with_its_bytes(
    api: Callable[[list[bytes], list[bytes]], str], warehouse: Target, tmp_path: Path
) -> None:
    orders = make_orders(120)
    page1 = [_record(r) for r in orders[:60]]
    page2 = [_record(r) for r in orders[60:]]
    # First record of page 2 (the repeat guard reads it) and the last of page 1 (its id is the cursor).
    page2[0] = _record(orders[60]).replace(b'"User ', b'"Us\xe9r\xff ')
    page1[59] = _record(orders[59]).replace(b'"Springfield"', b'"Spr\xc3ngfield"')
    conn_id = api(page1, page2)

    run = _sync(conn_id, warehouse, tmp_path / "stage")

    bad = _quarantine(warehouse)
    assert set(bad) == {orders[59]["id"], orders[60]["id"]}
    first = bad[orders[60]["id"]]
    assert first["reasons"].startswith("record is not valid UTF-8 at byte ")
    offset = page2[0].index(b"\xe9")
    assert f"record is not valid UTF-8 at byte {offset}" in first["reasons"]
    # Undecodable bytes are kept escaped as \xNN; raw_record_bytes gives back the exact bytes.
    assert "Us\\xe9r\\xff " in first["raw"]
    assert raw_record_bytes(first["raw"]) == page2[0]
    assert raw_record_bytes(bad[orders[59]["id"]]["raw"]) == page1[59]
    _assert_redacted_page_url(first["page_url"])
    assert "starting_after=" in first["page_url"]
    # The raw page keeps the bytes exactly as they arrived.
    raw_page = gzip.decompress((tmp_path / "stage" / "raw" / "page-000002.jsonl.gz").read_bytes())
    assert raw_page.split(b"\n")[0] == page2[0]
    _assert_accounted(warehouse, run, {r["id"] for r in orders} - set(bad), 2)


def test_case8_raw_record_bytes_is_the_identity_on_valid_text() -> None:
    text = json.dumps({"id": "a", "path": "C:\\x41\\new", "quote": 'say "hi"'})
    assert raw_record_bytes(text) == text.encode()


def test_case8_quarantine_table_from_before_page_urls_gets_the_column(
    api: Callable[[list[bytes], list[bytes]], str], warehouse: Target, tmp_path: Path
) -> None:
    old = quarantine_table(warehouse.db_schema)
    old_table = sa.Table(
        old.name,
        sa.MetaData(schema=warehouse.db_schema),
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in old.columns
            if c.name != "page_url"
        ),
    )
    old_table.create(warehouse.engine)
    orders = make_orders(40)
    page1 = [_record(r) for r in orders[:20]]
    page1[4] = _record(orders[4], score=b"NaN")
    conn_id = api(page1, [_record(r) for r in orders[20:]])

    _sync(conn_id, warehouse, tmp_path / "stage")

    (row,) = _quarantine(warehouse).values()
    _assert_redacted_page_url(row["page_url"])
