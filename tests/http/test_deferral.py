"""Long rate-limit waits defer to the triggerer and resume from the same cursor.

The trigger is really run (its async ``run()`` in an event loop, as the triggerer does) and a *new*
operator instance resumes with the deferral kwargs, as Airflow does after a deferral.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from apisync.http.hook import Page
from apisync.http.operator import PagedExtractOperator
from tests.http.conftest import run_dag_test


class CollectingExtract(PagedExtractOperator):
    """Writes each page's ids as one JSON line; storms the sandbox after page ``storm_after``."""

    out_path: Path
    storm: Any = None
    storm_after = 2

    def handle_page(self, context: Any, page: Page) -> None:
        with self.out_path.open("a") as out:
            out.write(json.dumps({"page": page.number, "ids": [r["id"] for r in page.records]}) + "\n")
        if page.number == self.storm_after and self.storm is not None:
            self.storm(4)
            type(self).storm = None  # one storm per test

    def finish(self, context: Any) -> Any:
        result = {**super().finish(context), "deferrals": self.deferrals}
        self.out_path.with_suffix(".result.json").write_text(json.dumps(result))
        return result


async def _first_event(trigger) -> Any:
    async for event in trigger.run():
        return event
    raise AssertionError("trigger ended without an event")


def test_long_wait_defers_and_resumes_without_repeating_or_missing(sandbox, api_conn, tmp_path) -> None:
    sb = sandbox(records=70, retry_after="delta")
    conn_id = api_conn(sb, defer_after_s=1)
    CollectingExtract.out_path = tmp_path / "pages.jsonl"
    CollectingExtract.storm = sb.storm

    def make_operator() -> CollectingExtract:
        return CollectingExtract(
            task_id="extract",
            conn_id=conn_id,
            endpoint="/api/orders",
            pagination={"type": "offset", "page_size": 10},
        )

    with pytest.raises(TaskDeferred) as deferred:
        make_operator().execute(context={})
    trigger = deferred.value.trigger
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.kwargs["state"]["page"] == 2
    assert deferred.value.kwargs["stats"]["pages"] == 2
    json.dumps(deferred.value.kwargs)  # deferral kwargs must be JSON-serializable

    # The triggerer rebuilds the trigger from its classpath; it must import from plugins/.
    classpath, kwargs = trigger.serialize()
    assert classpath == "apisync.http.trigger.RateLimitWaitTrigger"
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.resume_at - time.time() > 1.0  # the wait really was longer than defer_after_s
    event = asyncio.run(asyncio.wait_for(_first_event(rebuilt), timeout=30))
    assert time.time() >= rebuilt.resume_at
    assert event.payload["status"] == "resume" and event.payload["page"] == 2

    resumed = make_operator()
    result = resumed.execute_complete(context={}, event=event.payload, **deferred.value.kwargs)

    lines = [json.loads(line) for line in CollectingExtract.out_path.read_text().splitlines()]
    numbers = [line["page"] for line in lines]
    ids = [i for line in lines for i in line["ids"]]
    assert numbers == list(range(1, 8))
    assert len(ids) == len(set(ids)) == 70
    assert set(ids) == {r["id"] for r in sb.truth("orders")}
    assert result["pages"] == 7 and result["records"] == 70 and result["deferrals"] == 1
    # The per-request metrics of both parts, merged through the deferral kwargs: every answer once.
    merged, served = resumed.api_stats, sb.stats()["by_status"]
    assert merged["status_counts"] == served and served.get("429", 0) >= 1
    assert sum(merged["latency_ms"].values()) == merged["requests"] == sum(served.values())


def test_short_waits_sleep_in_process(sandbox, api_conn, tmp_path) -> None:
    sb = sandbox(records=30, retry_after="delta")
    conn_id = api_conn(sb, defer_after_s=60)
    CollectingExtract.out_path = tmp_path / "pages.jsonl"
    CollectingExtract.storm = sb.storm
    operator = CollectingExtract(
        task_id="extract",
        conn_id=conn_id,
        endpoint="/api/orders",
        pagination={"type": "offset", "page_size": 10},
    )
    result = operator.execute(context={})  # no TaskDeferred: a 4 s storm is below defer_after_s
    assert result == {"pages": 3, "records": 30, "deferrals": 0}
    assert operator.api_stats["r429"] >= 1


@pytest.mark.slow
def test_dag_test_runs_the_trigger_inline_and_resumes(sandbox, api_conn, tmp_path, airflow_db) -> None:
    """Full Airflow path: dag.test() defers the task, runs the trigger inline, resumes the task."""
    import pendulum
    from airflow.sdk import DAG
    from airflow.utils.state import DagRunState

    sb = sandbox(records=50, retry_after="delta")
    conn_id = api_conn(sb, defer_after_s=1)
    CollectingExtract.out_path = tmp_path / "pages.jsonl"
    CollectingExtract.storm = sb.storm
    with DAG(dag_id=f"defer_{conn_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        CollectingExtract(
            task_id="extract",
            conn_id=conn_id,
            endpoint="/api/orders",
            pagination={"type": "offset", "page_size": 10},
        )
    run = run_dag_test(dag, Path(__file__).parent)
    assert run.state == DagRunState.SUCCESS
    lines = [json.loads(line) for line in CollectingExtract.out_path.read_text().splitlines()]
    ids = [i for line in lines for i in line["ids"]]
    assert [line["page"] for line in lines] == [1, 2, 3, 4, 5]
    assert len(ids) == len(set(ids)) == 50
    assert sb.stats()["r429"] >= 1  # the storm really hit...
    result = json.loads(CollectingExtract.out_path.with_suffix(".result.json").read_text())
    assert result == {"pages": 5, "records": 50, "deferrals": 1}  # ...and was waited out on the triggerer
