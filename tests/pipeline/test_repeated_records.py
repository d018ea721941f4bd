"""Issue 9, case 2, through the real data path: a record that comes again on the next page.

A GitHub-style server (scripted, real HTTP) hands out page 1, then a page 2 that starts with a
record of page 1 again: once changed (a newer version: it must win in the warehouse), once
byte-identical (dropped by the paginator's repeat guard, and counted). Every record that arrived
is in ``sync_runs``: pulled = inserted + updated + unchanged + deduped + quarantined + repeated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apisync.http import ApiHook
from apisync.pipeline.runner import run_window
from apisync.spec import load_spec, render_window
from apisync.staging.layout import RunPaths
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server
from tests.load.datapath_fixtures import WINDOW, Target


def _issue(number: int, title: str, updated: str) -> dict[str, Any]:
    return {
        "id": number,
        "number": number,
        "title": title,
        "state": "open",
        "user": {"login": "octo", "id": 7},
        "comments": 0,
        "body": "",
        "created_at": "2026-01-01T10:00:00Z",
        "updated_at": updated,
        "closed_at": None,
        "labels": [],
        "assignees": [],
    }


OLD = _issue(1, "old", "2026-01-02T00:00:00Z")
NEW = _issue(1, "new", "2026-01-03T00:00:00Z")
TWO = _issue(2, "two", "2026-01-02T00:00:00Z")
THREE = _issue(3, "three", "2026-01-04T00:00:00Z")


def _sync(server_url: str, target: Target, root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    conn = {"conn_type": "http", "host": server_url, "extra": {"rate_limit": {"path": str(root / "rl.db")}}}
    monkeypatch.setenv("AIRFLOW_CONN_SCRIPTED_API", json.dumps(conn))
    spec = load_spec("issues")
    hook = ApiHook(http_conn_id="scripted_api")
    pages = hook.paginate(
        spec.source.endpoint,
        params=render_window(spec.source.params, *WINDOW, spec.source.window_format),
        pagination=spec.source.pagination.model_dump(),
    )
    run = run_window(
        spec,
        pages,
        RunPaths(root),
        target.engine,
        window=WINDOW,
        run_id="run-1",
        db_schema=target.db_schema,
        api_stats=hook.stats(),  # the same dict object is read after the pages are consumed
    )
    return spec, run


@pytest.mark.parametrize(
    ("second_page", "repeated", "deduped"),
    [([NEW, THREE], 0, 1), ([TWO, NEW, THREE], 1, 1)],
    ids=["changed", "identical_then_changed"],
)
def test_case2_newer_version_of_a_record_on_the_next_page_wins_and_every_record_is_counted(
    second_page: list[dict[str, Any]],
    repeated: int,
    deduped: int,
    warehouse: Target,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def script(call: Call, server: ScriptedServer) -> Reply:
        if call.query.get("page") == "2":
            return Reply(json.dumps(second_page).encode())
        link = f'<{server.url}{call.path}?page=2>; rel="next"'
        return Reply(json.dumps([OLD, TWO]).encode(), headers={"Link": link})

    with scripted_server(script) as server:
        spec, _run = _sync(server.url, warehouse, tmp_path / "stage", monkeypatch)
    table = warehouse.table(spec.destination.table)
    assert warehouse.rows(f"SELECT id, title FROM {table} ORDER BY id") == [
        (1, "new"),
        (2, "two"),
        (3, "three"),
    ]
    arrived = 2 + len(second_page)
    row = warehouse.rows(
        "SELECT records_pulled, records_repeated, records_deduped, records_inserted, records_updated,"
        f" records_unchanged, records_quarantined FROM {warehouse.table('sync_runs')}"
    )
    assert row == [(arrived, repeated, deduped, 3, 0, 0, 0)]
