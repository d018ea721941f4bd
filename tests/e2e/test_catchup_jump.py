"""Case 1 of issue 9 as it happens: a backfill, then catchup, and hours that never get a run.

On a stack whose scheduler really schedules (``use_job_schedule`` on), a twelve-hour orders DAG
(tests/e2e/dags/orders_catchup_e2e.py, catchup, one run at a time) makes its first catchup run;
then a backfill of three later hours (07:00 .. 09:00) is created through ``POST /api/v2/backfills``
as the UI's Backfill dialog does. Catchup never runs the hours in between: every run is green, and
nothing alerts. The hourly ``sync_coverage`` DAG, once unpaused, names the gap on Slack and by
email and backfills it; the warehouse then equals the sandbox's ground truth for all twelve hours.

Why Airflow 3.3.2 skips them: each parse of a DAG file (the dag-processor's routine re-parse,
``min_file_process_interval``, 30 s) recomputes ``DagModel.next_dagrun`` from the DAG's latest run
by logical date among *scheduled and backfill* runs (``dag_processing/collection.py``:
``_get_latest_runs_stmt`` → ``DagModel.calculate_dagrun_date_fields``). The backfill's 09:00 run
is that latest run, so the next parse moves the next run to 10:00, and the scheduler creates runs
only from ``next_dagrun`` on. The backfill itself (``models/backfill.py``) never touches
``next_dagrun``: the jump waits for the parse, so how many catchup runs come before it depends on
timing, and the test reads the gap from the runs it finds (at least 00:00 ran; 07:00 and later are
the backfill's and after).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from scripts.localstack import REPO_ROOT
from tests.alerts.conftest import slack_receiver, smtp_server
from tests.e2e.conftest import E2E_DAGS, AirflowStack, iso, running_airflow, throwaway_database, wait_until
from tests.e2e.test_coverage import (
    add_alert_connections,
    assert_one_coverage_alert,
    assert_warehouse_equals_truth,
    ledger,
    repair_backfill,
    run_coverage_check,
)

__all__ = ["slack_receiver", "smtp_server"]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "orders_catchup_e2e"
DAY = datetime(2026, 1, 7, tzinfo=UTC)
HOUR = timedelta(hours=1)
WINDOWS = [(DAY + h * HOUR, DAY + (h + 1) * HOUR) for h in range(12)]
BACKFILLED = WINDOWS[7:10]  # 07:00 .. 09:00, the UI dialog's three hourly intervals


def _ledger_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@pytest.fixture(scope="module")
def scheduling_stack(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[AirflowStack]:
    """A stack of its own whose scheduler creates scheduled and catchup runs.

    Its DAGs folder holds only the bounded test DAG and ``sync_coverage``: the project's sync DAGs
    start on 2026-01-01 with catchup and would get thousands of runs.
    """
    home = tmp_path_factory.mktemp("airflow-home-scheduling")
    dag_files = [E2E_DAGS / f"{DAG_ID}.py", REPO_ROOT / "dags" / "sync_coverage.py"]
    with (
        throwaway_database(postgres_url) as metadata_db_url,
        running_airflow(home, metadata_db_url, dag_files=dag_files, scheduled_runs=True) as stack,
    ):
        yield stack


def dag_runs(stack: AirflowStack, dag_id: str = DAG_ID) -> list[dict]:
    response = stack.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "logical_date"})
    response.raise_for_status()
    return list(response.json()["dag_runs"])


def runs_per_window(runs: list[dict]) -> dict[str, list[str]]:
    """``{"00:00": ["scheduled:success"], "01:00": [], ...}``: what ran for each of the twelve hours."""
    per_window: dict[str, list[str]] = {f"{start:%H:%M}": [] for start, _ in WINDOWS}
    for run in runs:
        start = _moment(run["logical_date"])
        assert start is not None and f"{start:%H:%M}" in per_window, run
        per_window[f"{start:%H:%M}"].append(f"{run['run_type']}:{run['state']}")
    return per_window


def _dag(stack: AirflowStack, dag_id: str = DAG_ID) -> dict:
    response = stack.api("GET", f"/dags/{dag_id}")
    response.raise_for_status()
    return dict(response.json())


@pytest.mark.timeout(1800)  # Airflow's start, catchup, two backfills and two checks on 2 loaded cores
def test_case1_a_backfill_then_catchup_skips_intervals_and_the_gap_is_detected_alerted_and_filled(
    scheduling_stack, smtp_server, slack_receiver
) -> None:
    stack = scheduling_stack
    stack.wait_for_dag(DAG_ID)
    stack.wait_for_dag("sync_coverage")
    add_alert_connections(stack, smtp_server, slack_receiver)

    # New DAGs start paused; the first parse put the next run at the start date.
    dag = _dag(stack)
    assert dag["is_paused"] and _dag(stack, "sync_coverage")["is_paused"]
    assert _moment(dag["next_dagrun_logical_date"]) == DAY, dag
    assert dag_runs(stack) == []

    # Catchup starts and makes its first run, 00:00.
    assert stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200

    def first_catchup_run_done() -> bool:
        return any(
            r["run_type"] == "scheduled" and r["state"] == "success" and _moment(r["logical_date"]) == DAY
            for r in dag_runs(stack)
        )

    wait_until(first_catchup_run_done, "the first catchup run (00:00) to succeed", timeout_s=600)
    next_before = _moment(_dag(stack)["next_dagrun_logical_date"])
    assert next_before is not None and next_before < BACKFILLED[0][0], next_before

    # The UI's Backfill dialog: three hourly intervals, 07:00 .. 09:00.
    backfill = stack.api(
        "POST",
        "/backfills",
        json={
            "dag_id": DAG_ID,
            "from_date": iso(BACKFILLED[0][0]),
            "to_date": iso(BACKFILLED[-1][0]),
            "reprocess_behavior": "none",
            "max_active_runs": 3,
        },
    )
    assert backfill.status_code == 200, backfill.text
    first_backfill = backfill.json()["id"]

    # Then catchup goes on, to the DAG's end (no next run left), and the backfill completes.
    def catchup_finished() -> list[dict] | None:
        if _dag(stack)["next_dagrun_logical_date"] is not None:
            return None
        if not stack.api("GET", f"/backfills/{first_backfill}").json().get("completed_at"):
            return None
        runs = dag_runs(stack)
        return runs if all(r["state"] in ("success", "failed") for r in runs) else None

    runs = wait_until(catchup_finished, "catchup to reach the DAG's end and the backfill to complete")
    per_window = runs_per_window(runs)
    print(f"runs per window after the backfill and catchup: {json.dumps(per_window)}")
    assert {r["state"] for r in runs} == {"success"}, per_window

    # The scheduler jumped: catchup ran 00:00 .. some hour, then nothing until after the backfill.
    hours = [f"{start:%H:%M}" for start, _ in WINDOWS]
    assert [per_window[h] for h in hours[7:10]] == [["backfill:success"]] * 3, per_window
    assert [per_window[h] for h in hours[10:]] == [["scheduled:success"]] * 2, per_window
    never_ran = [i for i, h in enumerate(hours) if not per_window[h]]
    assert never_ran, f"every hour has a run: catchup did not jump past the backfill; {per_window}"
    first_gap = never_ran[0]
    assert never_ran == list(range(first_gap, 7)), per_window
    assert first_gap >= 1 and all(per_window[h] == ["scheduled:success"] for h in hours[:first_gap]), (
        per_window
    )
    gap = WINDOWS[first_gap:7]
    print(f"next run before the backfill: {next_before:%H:%M}; never ran: {hours[first_gap]} .. 06:00")

    # Every run is green, and nothing said a word. The ledger knows better.
    summary = f"orders: {len(gap)} windows never ran, {_ledger_time(gap[0][0])} → {_ledger_time(gap[-1][1])}"
    assert ledger(stack, WINDOWS[-1][0]).summary() == summary
    assert smtp_server.messages == [] and slack_receiver.posts == []

    # Detected and alerted by the hourly sync_coverage DAG's own scheduled run once it is unpaused ...
    assert stack.api("PATCH", "/dags/sync_coverage", json={"is_paused": False}).status_code == 200

    def scheduled_check_done() -> dict | None:
        checks = [r for r in dag_runs(stack, "sync_coverage") if r["run_type"] == "scheduled"]
        return checks[0] if checks and checks[0]["state"] in ("success", "failed") else None

    check = wait_until(scheduled_check_done, "the scheduled sync_coverage run", timeout_s=600)
    assert check["state"] == "success", check
    assert_one_coverage_alert(smtp_server, slack_receiver, windows=len(gap), summary=summary, dag_id=DAG_ID)

    # ... and repaired: one backfill of exactly the gap, through the REST API.
    repair = repair_backfill(stack, DAG_ID, first_backfill)
    assert (_moment(repair["from_date"]), _moment(repair["to_date"])) == (gap[0][0], gap[-1][0]), repair
    assert repair["reprocess_behavior"] == "none"  # the gap's hours have no run at all
    stack.wait_for_backfill(repair["id"])

    # Filled: every hour has a green run, and the warehouse equals the ground truth hour by hour.
    per_window = runs_per_window(dag_runs(stack))
    assert all(len(ran) == 1 and ran[0].endswith(":success") for ran in per_window.values()), per_window
    after = ledger(stack, WINDOWS[-1][0])
    assert after.summary() == "orders: 12/12 windows synced", after.summary()
    assert_warehouse_equals_truth(stack, WINDOWS)

    # A second check finds nothing to say.
    run_coverage_check(stack, DAG_ID)
    assert len(slack_receiver.posts) == 1 and len(smtp_server.messages) == 1
