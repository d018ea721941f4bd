"""``source.conditional_requests``: an extraction of a window asks with the validators its newest
complete earlier extraction staged; a 304 page is replayed from staging, counted, and the run's
rows are the same as a fresh extraction's (real HTTP against the sandbox, real staging dirs)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from apisync.pipeline.extract import ExtractStreamOperator
from apisync.pipeline.runner import run_window
from apisync.pipeline.staging import upstream_paths
from apisync.spec import SpecError, load_spec
from apisync.staging.raw_pages import PAGE_VALIDATORS, iter_raw_pages, read_manifest
from tests.load.datapath_fixtures import Target

REPO_INCLUDE = Path(__file__).resolve().parents[2] / "include"
WINDOW = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC))  # the sandbox's data
CHANGED_AT = "2026-01-07T12:00:00Z"


def _context(run_id: str, **params: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "ti": SimpleNamespace(try_number=1),
        "data_interval_start": WINDOW[0],
        "data_interval_end": WINDOW[1],
        "params": params,
    }


@pytest.fixture
def include(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repo's include dir with ``conditional_requests: true`` in the orders stream."""
    include = tmp_path / "include"
    shutil.copytree(REPO_INCLUDE, include)
    orders = include / "streams" / "orders.yaml"
    orders.write_text(orders.read_text().replace("source:\n", "source:\n  conditional_requests: true\n", 1))
    monkeypatch.setenv("APISYNC_INCLUDE_DIR", str(include))
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")
    assert load_spec("orders").source.conditional_requests
    return include


def _extract(conn_id: str, run_id: str, **kwargs: Any) -> dict[str, Any]:
    operator = ExtractStreamOperator(task_id="extract", stream="orders", conn_id=conn_id, **kwargs)
    result: dict[str, Any] = operator.execute(_context(run_id))
    return result


def _staged(extracted: dict[str, Any]) -> list[list[bytes]]:
    return [page.lines() for page in iter_raw_pages(upstream_paths(extracted).raw)]


def _ids(lines: list[bytes]) -> set[str]:
    return {json.loads(line)["id"] for line in lines}


def _served(box: Any) -> dict[str, int]:
    return dict(box.stats()["by_status"])


def test_unchanged_pages_come_from_staging_and_the_result_is_a_fresh_extraction(
    include: Path, sandbox: Callable[..., Any], api_conn: Callable[..., str], tmp_path: Path
) -> None:
    box = sandbox(records=1000, max_page_size=100)
    conn_id = api_conn(box)
    first = _extract(conn_id, "scheduled__1")
    raw = upstream_paths(first).raw
    manifest = read_manifest(raw)
    pages = manifest["pages"]
    assert len(pages) == 10 and set(manifest[PAGE_VALIDATORS]) == {str(n) for n in pages}
    assert all((raw / f"page-{n:06d}.body.gz").exists() for n in pages)
    assert first["api_not_modified"] == 0 and "304" not in _served(box)

    changed = set(box.mutate(3, at=CHANGED_AT)["changed"]["orders"])
    holding = {n for n, lines in zip(pages, _staged(first), strict=True) if _ids(lines) & changed}
    box.reset()
    second = _extract(conn_id, "manual__rerun")
    unchanged = len(pages) - len(holding | {pages[-1]})  # the last page is always asked in full
    assert second["api_not_modified"] == unchanged == _served(box)["304"] >= 6
    assert _served(box)["200"] == len(pages) - unchanged
    assert second["api_calls"] == len(pages) and second["records"] == first["records"]

    fresh = _extract(conn_id, "manual__fresh", staging_url=f"file://{tmp_path}/fresh")
    assert fresh["api_not_modified"] == 0
    assert _staged(second) == _staged(fresh) != _staged(first)
    # The rerun's own pages keep validators too: the next extraction asks with them.
    kept = read_manifest(upstream_paths(second).raw)[PAGE_VALIDATORS]
    assert sum(entry["not_modified"] for entry in kept.values()) == unchanged
    box.reset()
    third = _extract(conn_id, "manual__third")
    assert third["api_not_modified"] == len(pages) - 1


@pytest.mark.parametrize("damage", ["missing", "unreadable"])
def test_an_earlier_body_that_is_gone_or_damaged_means_a_plain_request(
    include: Path, sandbox: Callable[..., Any], api_conn: Callable[..., str], damage: str
) -> None:
    box = sandbox(records=500, max_page_size=100)
    conn_id = api_conn(box)
    first = _extract(conn_id, "scheduled__1")
    body = upstream_paths(first).raw / "page-000002.body.gz"
    if damage == "missing":
        body.unlink()
    else:
        body.write_bytes(b"not gzip at all")
    box.reset()
    second = _extract(conn_id, "manual__rerun")
    assert _staged(second) == _staged(first)
    assert second["api_not_modified"] == 5 - 2  # not page 2 (asked again plainly), not the last
    assert _served(box) == {"304": 4, "200": 2}  # page 2 again, and the last page


def test_a_failed_attempt_is_never_a_source_of_validators(
    include: Path, sandbox: Callable[..., Any], api_conn: Callable[..., str]
) -> None:
    box = sandbox(records=300, max_page_size=100)
    conn_id = api_conn(box)
    first = _extract(conn_id, "scheduled__1")
    (upstream_paths(first).raw / "_extract.json").unlink()  # as if it had failed before the manifest
    box.reset()
    second = _extract(conn_id, "manual__rerun")
    assert second["api_not_modified"] == 0 and "304" not in _served(box)


def test_a_replay_keeps_the_bodies_so_the_next_extraction_still_asks(
    include: Path, sandbox: Callable[..., Any], api_conn: Callable[..., str]
) -> None:
    box = sandbox(records=300, max_page_size=100)
    conn_id = api_conn(box)
    first = _extract(conn_id, "scheduled__1")
    operator = ExtractStreamOperator(task_id="extract", stream="orders", conn_id=conn_id)
    replay = operator.execute(_context("manual__replay", replay_raw=True))
    replayed = upstream_paths(replay).raw
    assert replay["replayed"] and all(
        (replayed / f"page-{int(n):06d}.body.gz").exists() for n in read_manifest(replayed)[PAGE_VALIDATORS]
    )
    (upstream_paths(first).raw / "_extract.json").unlink()  # only the replay's copy is complete now
    box.reset()
    assert _extract(conn_id, "manual__after")["api_not_modified"] == 2


def test_switched_off_nothing_is_kept_and_no_request_is_conditional(
    sandbox: Callable[..., Any], api_conn: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")
    assert not load_spec("orders").source.conditional_requests  # the default
    box = sandbox(records=300, max_page_size=100)
    conn_id = api_conn(box)
    for run_id in ("scheduled__1", "manual__rerun"):
        extracted = _extract(conn_id, run_id)
        raw = upstream_paths(extracted).raw
        assert PAGE_VALIDATORS not in read_manifest(raw)
        assert not [entry for entry in raw.iterdir() if entry.name.endswith((".body.gz", ".validators.json"))]
    assert "304" not in _served(box)


def test_the_switch_is_checked_when_the_spec_loads(include: Path) -> None:
    streams = include / "streams"
    products = streams / "products.yaml"  # GraphQL: POST
    products.write_text(
        products.read_text().replace("source:\n", "source:\n  conditional_requests: true\n", 1)
    )
    with pytest.raises(SpecError, match="conditional_requests: true needs method GET, got POST"):
        load_spec("products")
    orders = streams / "orders.yaml"
    orders.write_text(orders.read_text().replace("conditional_requests: true", "conditional_requests: 'yes'"))
    with pytest.raises(SpecError, match=r"source\.conditional_requests"):
        load_spec("orders")


def test_the_sync_runs_row_counts_the_304s_and_the_merge_sees_unchanged_rows(
    include: Path, sandbox: Callable[..., Any], api_conn: Callable[..., str], warehouse: Target
) -> None:
    box = sandbox(records=500, max_page_size=100)
    conn_id = api_conn(box)
    spec = load_spec("orders")

    def load(extracted: dict[str, Any], run_id: str) -> Any:
        paths = upstream_paths(extracted)
        api = read_manifest(paths.raw)["api"]
        return run_window(
            spec,
            None,
            paths,
            warehouse.engine,
            window=WINDOW,
            run_id=run_id,
            db_schema=warehouse.db_schema,
            api_stats=api,
        )

    load(_extract(conn_id, "scheduled__1"), "scheduled__1")
    changed = box.mutate(2, at=CHANGED_AT)["changed"]["orders"]
    second = _extract(conn_id, "manual__rerun")
    run = load(second, "manual__rerun")
    assert second["api_not_modified"] > 0
    assert run.loaded.updated == len(changed) and run.loaded.inserted == 0
    assert run.loaded.unchanged == second["records"] - len(changed)
    row = warehouse.rows(
        f"SELECT api_not_modified, api_calls, records_updated, records_unchanged, records_pulled "
        f"FROM {warehouse.table('sync_runs')} WHERE run_id = 'manual__rerun'"
    )
    assert row == [(second["api_not_modified"], second["api_calls"], len(changed), run.loaded.unchanged, 500)]


def test_a_deferred_extraction_goes_on_asking_after_it_resumes(
    include: Path, sandbox: Callable[..., Any], api_conn: Callable[..., str]
) -> None:
    import asyncio

    from airflow.sdk.exceptions import TaskDeferred

    from apisync.http.hook import Page

    box = sandbox(records=1000, max_page_size=100, retry_after="delta")
    conn_id = api_conn(box, defer_after_s=1)
    first = _extract(conn_id, "scheduled__1")

    class StormingExtract(ExtractStreamOperator):
        storm: Any = None

        def handle_page(self, context: Any, page: Page) -> None:
            super().handle_page(context, page)
            if page.number == 1 and type(self).storm is not None:
                type(self).storm(3)
                type(self).storm = None

    StormingExtract.storm = box.storm
    context = _context("manual__deferred")
    with pytest.raises(TaskDeferred) as deferred:
        StormingExtract(task_id="extract", stream="orders", conn_id=conn_id).execute(context)

    async def first_event() -> Any:
        async for event in deferred.value.trigger.run():
            return event
        raise AssertionError("trigger ended without an event")

    event = asyncio.run(asyncio.wait_for(first_event(), timeout=30))
    resumed = StormingExtract(task_id="extract", stream="orders", conn_id=conn_id).execute_complete(
        context, event=event.payload, **deferred.value.kwargs
    )
    assert _staged(resumed) == _staged(first)
    assert resumed["api_not_modified"] == len(_staged(first)) - 1  # before and after the deferral
    kept = read_manifest(upstream_paths(resumed).raw)[PAGE_VALIDATORS]
    assert sorted(map(int, kept)) == list(range(1, 11))
