"""Manual runs with a window, through the real REST API of a real Airflow (issue 11, cases 2 and 4).

- A trigger with ``window_start``/``window_end`` syncs exactly that window (the sandbox's ground
  truth), not "now minus one hour".
- A value that is no timezone-aware date-time is refused at trigger time, naming the param.
- A window the Param schema cannot judge (too long) fails the extract at once — one try, no
  retries — naming the param, before any request reaches the sandbox; so does a run with neither
  a window nor a logical date (no data interval), saying what to set.
- Deadlines (Airflow 3.3.2): a successful run's deadline is pruned; a failed run's is not — it
  stays "Upcoming" (``missed: false``) until its time, as the README explains.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.e2e.conftest import AirflowStack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "issues_to_warehouse"
EXTRACT = "sync_issues.extract"
WINDOW = {"window_start": "2026-01-05T00:00:00Z", "window_end": "2026-01-05T06:00:00Z"}


def trigger(
    stack: AirflowStack, conf: dict[str, Any], *, logical_date: str | None = None
) -> requests.Response:
    """What the Trigger dialog sends: a logical date (it pre-fills now), the form's params as conf."""
    body = {"logical_date": logical_date, "conf": conf}
    return stack.api("POST", f"/dags/{DAG_ID}/dagRuns", json=body)


def finished_run(stack: AirflowStack, run_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        run = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}").json()
        return run if run.get("state") in ("success", "failed") else None

    return wait_until(finished, f"run {run_id} to finish", timeout_s=900)


def deadlines(stack: AirflowStack, run_id: str) -> dict[str, Any]:
    """The deadlines of a run as the UI's run page lists them (its own REST endpoint)."""
    response = stack.session.get(f"{stack.api_url}/ui/dags/{DAG_ID}/dagRuns/{run_id}/deadlines", timeout=30)
    response.raise_for_status()
    return response.json()


def tracker_requests(stack: AirflowStack) -> int:
    stats = requests.get(f"{stack.sandbox_urls['tracker']}/_sandbox/stats", timeout=30)
    stats.raise_for_status()
    return int(stats.json()["requests"])


def sync_runs(stack: AirflowStack, run_id: str) -> list[tuple]:
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        return conn.execute(
            "SELECT status, interval_start, interval_end, records_pulled, error FROM sync_runs"
            " WHERE stream = 'issues' AND run_id = ?",
            (run_id,),
        ).fetchall()


@pytest.fixture(scope="module")
def stack(airflow_stack: AirflowStack) -> AirflowStack:
    airflow_stack.wait_for_dag(DAG_ID)
    assert airflow_stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
    return airflow_stack


def test_the_dag_serves_its_window_params(stack: AirflowStack) -> None:
    params = stack.api("GET", f"/dags/{DAG_ID}/details").json()["params"]
    for name in ("window_start", "window_end"):
        assert params[name]["value"] is None
        assert params[name]["schema"]["format"] == "date-time"
        assert params[name]["schema"]["type"] == ["null", "string"]
        assert params[name]["description"]


def test_a_manual_run_with_a_window_syncs_that_window(stack: AirflowStack) -> None:
    """With the dialog's logical date "now": after the DAG's end_date (make run ends the schedule
    where the sandbox's data end), so this also proves the run still gets its tasks."""
    response = trigger(stack, WINDOW, logical_date=datetime.now(UTC).isoformat())
    assert response.status_code == 200, response.text
    run = finished_run(stack, response.json()["dag_run_id"])
    assert run["state"] == "success", run

    truth = requests.get(
        f"{stack.sandbox_urls['tracker']}/_sandbox/truth/issues",
        params={"updated_gte": WINDOW["window_start"], "updated_lt": WINDOW["window_end"]},
        timeout=30,
    ).json()["records"]
    assert truth, "the sandbox has no issues in the window: the test would prove nothing"
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        loaded = {
            row[0]
            for row in conn.execute(
                "SELECT id FROM issues WHERE updated_at >= ? AND updated_at < ?",
                ("2026-01-05 00:00:00", "2026-01-05 06:00:00"),
            )
        }
    assert loaded == {record["id"] for record in truth}
    [(status, start, end, pulled, _error)] = sync_runs(stack, run["dag_run_id"])
    assert (status, str(start)[:19], str(end)[:19]) == (
        "success",
        "2026-01-05 00:00:00",
        "2026-01-05 06:00:00",
    )
    assert pulled == len(truth)
    # Airflow prunes the deadline of a run that succeeded before it.
    assert deadlines(stack, run["dag_run_id"])["total_entries"] == 0


@pytest.mark.parametrize(
    ("conf", "param"),
    [
        ({"window_start": "2026-01-05T00:00:00", "window_end": WINDOW["window_end"]}, "window_start"),
        ({"window_start": WINDOW["window_start"], "window_end": "5 Jan 2026"}, "window_end"),
    ],
)
def test_a_date_time_without_timezone_is_refused_at_trigger_time(
    stack: AirflowStack, conf: dict[str, str], param: str
) -> None:
    before = stack.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 1}).json()["total_entries"]
    response = trigger(stack, conf)
    assert response.status_code == 400, response.text
    assert f"Invalid input for param {param}" in response.json()["detail"]
    after = stack.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 1}).json()["total_entries"]
    assert after == before, "a refused trigger created a run"


def test_a_trigger_without_window_or_logical_date_fails_saying_what_to_set(stack: AirflowStack) -> None:
    """The REST API's ``logical_date: null`` gives a run no data interval: nothing to sync."""
    requests_before = tracker_requests(stack)
    response = trigger(stack, {})
    assert response.status_code == 200, response.text
    run = finished_run(stack, response.json()["dag_run_id"])
    assert run["state"] == "failed" and run["data_interval_start"] is None, run
    [(status, _start, _end, _pulled, error)] = sync_runs(stack, run["dag_run_id"])
    assert status == "failed" and "set both params, or trigger with a logical date" in error
    assert tracker_requests(stack) == requests_before, "the extract called the API"


def test_a_too_long_window_fails_at_once_naming_the_param_without_an_api_call(stack: AirflowStack) -> None:
    requests_before = tracker_requests(stack)
    response = trigger(stack, {"window_start": "2026-01-01T00:00:00Z", "window_end": "2026-03-01T00:00:00Z"})
    assert response.status_code == 200, response.text  # one Param's schema cannot see the span
    run_id = response.json()["dag_run_id"]
    run = finished_run(stack, run_id)
    assert run["state"] == "failed", run

    extract = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{EXTRACT}").json()
    assert (extract["state"], extract["try_number"]) == ("failed", 1), extract  # no retries
    [(status, _start, _end, _pulled, error)] = sync_runs(stack, run_id)
    assert status == "failed"
    assert "WindowError: param window_end='2026-03-01T00:00:00Z' is 59 days after window_start" in error
    assert "at most 31 days" in error
    assert tracker_requests(stack) == requests_before, "the extract called the API"

    # Airflow 3.3.2 prunes deadlines only when a run succeeds: this failed run's deadline stays,
    # not missed, so the UI lists it as "Upcoming" until it fires (see the README's Alerts).
    listed = deadlines(stack, run_id)
    assert listed["total_entries"] == 1, listed
    [deadline] = listed["deadlines"]
    assert deadline["missed"] is False
    queued = datetime.fromisoformat(run["queued_at"])
    assert datetime.fromisoformat(deadline["deadline_time"]) == queued + timedelta(minutes=45)
