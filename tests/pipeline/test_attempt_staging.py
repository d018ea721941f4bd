"""Every extract attempt stages into a directory of its own (run id + try number), and the tasks
after it read exactly that attempt's files (the directory travels in the XCom)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from apisync.http.hook import Page
from apisync.pipeline.extract import ExtractStreamOperator
from apisync.staging.raw_pages import iter_raw_pages, read_manifest

WINDOW = (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC))


def _context(run_id: str, try_number: int = 1, **params: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "ti": SimpleNamespace(try_number=try_number),
        "data_interval_start": WINDOW[0],
        "data_interval_end": WINDOW[1],
        "params": params,
    }


def _staged_ids(raw_dir: Any) -> set[str]:
    return {json.loads(line)["id"] for page in iter_raw_pages(raw_dir) for line in page.lines()}


def _raw(extracted: dict[str, Any]) -> Any:
    """The raw pages an extract's XCom points its downstream tasks at."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(extracted["raw_dir"])


def _truth_ids(box: Any) -> set[str]:
    return {
        record["id"]
        for record in box.truth("orders", updated_gte=WINDOW[0].isoformat(), updated_lt=WINDOW[1].isoformat())
    }


def _extract(conn_id: str) -> ExtractStreamOperator:
    return ExtractStreamOperator(task_id="extract", stream="orders", conn_id=conn_id)


@pytest.fixture
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")
    return tmp_path / "staging"


def test_case9_two_runs_of_one_window_read_only_their_own_staged_files(
    sandbox: Callable[..., Any], api_conn: Callable[..., str], staging: Path
) -> None:
    # Two runs of one window (a manual rerun next to the scheduled run), each against its own
    # source state: 400 and 150 orders generated.
    first, second = sandbox(records=400, max_page_size=100), sandbox(records=150, max_page_size=100)
    first_ids, second_ids = _truth_ids(first), _truth_ids(second)
    assert first_ids and second_ids and first_ids != second_ids

    run_a = _extract(api_conn(first)).execute(_context("scheduled__2026-01-03T00:00:00+00:00"))
    run_b = _extract(api_conn(second)).execute(_context("manual__2026-01-03T00:05:00+00:00"))

    # What run A's normalize, validate and load read: A's pages, not those run B staged after it.
    assert _staged_ids(_raw(run_a)) == first_ids, "run A reads run B's staged pages"
    assert _staged_ids(_raw(run_b)) == second_ids
    assert run_a["records"] == len(first_ids) and run_b["records"] == len(second_ids)

    from apisync.pipeline.staging import staging_paths, upstream_paths

    assert (
        upstream_paths(run_a).raw
        == _raw(run_a)
        == staging_paths("orders", WINDOW, run_id="scheduled__2026-01-03T00:00:00+00:00", try_number=1).raw
    )


def test_case9_a_retried_extract_gets_a_fresh_directory_and_a_replay_reads_the_newest(
    sandbox: Callable[..., Any], api_conn: Callable[..., str], staging: Path
) -> None:
    from apisync.pipeline.staging import upstream_paths

    box = sandbox(records=300, max_page_size=100)
    conn_id = api_conn(box)
    try_1 = _extract(conn_id).execute(_context("scheduled__x", try_number=1))
    try_2 = _extract(conn_id).execute(_context("scheduled__x", try_number=2))
    assert try_1["staging_dir"] != try_2["staging_dir"]
    assert str(upstream_paths(try_2).root).endswith("/try-2")
    assert _staged_ids(upstream_paths(try_1).raw) == _staged_ids(upstream_paths(try_2).raw) == _truth_ids(box)

    # A replay run of the window copies the newest complete attempt's pages into its own attempt,
    # without an API call.
    before = box.stats()["requests"]
    replay = _extract(conn_id).execute(_context("manual__replay", replay_raw=True))
    assert box.stats()["requests"] == before
    assert replay["replayed"] and replay["records"] == try_2["records"]
    assert replay["staging_dir"] not in (try_1["staging_dir"], try_2["staging_dir"])
    assert _staged_ids(upstream_paths(replay).raw) == _truth_ids(box)


def test_case9_a_deferred_extract_resumes_into_the_same_attempt(
    sandbox: Callable[..., Any], api_conn: Callable[..., str], staging: Path
) -> None:
    from apisync.pipeline.staging import staging_paths, upstream_paths

    box = sandbox(records=2000, max_page_size=100, retry_after="delta")
    conn_id = api_conn(box, defer_after_s=1)

    class StormingExtract(ExtractStreamOperator):
        storm: Any = None

        def handle_page(self, context: Any, page: Page) -> None:
            super().handle_page(context, page)
            if page.number == 1 and type(self).storm is not None:
                type(self).storm(4)
                type(self).storm = None

    StormingExtract.storm = box.storm
    context = _context("scheduled__deferred")
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
    assert resumed["staging_dir"] == str(
        staging_paths("orders", WINDOW, run_id="scheduled__deferred", try_number=1).root
    )
    assert _staged_ids(upstream_paths(resumed).raw) == _truth_ids(box)
    assert len(read_manifest(upstream_paths(resumed).raw)["pages"]) == resumed["pages"] >= 2
