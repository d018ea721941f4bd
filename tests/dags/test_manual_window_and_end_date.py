"""Every sync DAG's manual-run form fields, and `make run`'s DAGs scheduled only over the sandbox's
data span (issue 11, cases 2 and 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scripts.localstack import SANDBOX_WINDOW, airflow_env

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNC_DAGS = ("customers_to_warehouse", "issues_to_warehouse", "orders_to_warehouse", "products_to_warehouse")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


def _syncs_a_window(dag) -> bool:
    from apisync.pipeline.coverage import sync_targets

    return bool(sync_targets([dag]))


def test_the_window_syncing_dags_are_the_ones_named(dagbag) -> None:
    assert sorted(d.dag_id for d in dagbag.dags.values() if _syncs_a_window(d)) == list(SYNC_DAGS)


@pytest.mark.parametrize("dag_id", SYNC_DAGS)
def test_the_trigger_dialog_gets_two_date_time_fields(dag_id: str, dagbag) -> None:
    """The params as the UI reads them: the serialized DAG's schema (a date-time picker each)."""
    from airflow.serialization.serialized_objects import DagSerialization

    from apisync.window_params import ISO_DATETIME_WITH_OFFSET, MAX_DAYS_KEYWORD

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags[dag_id]))
    assert {"window_start", "window_end"} <= set(serialized.params)
    for name, title in (("window_start", "Window start"), ("window_end", "Window end")):
        param = serialized.params.get_param(name)
        assert param.value is None, f"{dag_id}.{name}: empty by default (the run's data interval)"
        assert param.schema["type"] == ["null", "string"]
        assert param.schema["format"] == "date-time"
        assert param.schema["pattern"] == ISO_DATETIME_WITH_OFFSET
        assert param.schema["title"] == title
        assert param.description
    assert serialized.params.get_param("window_end").schema[MAX_DAYS_KEYWORD] == 31


def test_contacts_to_crm_has_no_window(dagbag) -> None:
    """It pushes what the CRM does not hold yet (state per record), not a time window."""
    assert "window_start" not in dagbag.dags["contacts_to_crm"].params


PROBE = """
import json, sys
from datetime import UTC, datetime
import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import TimeRestriction
from apisync.coverage.ledger import _core_timetable, expected_windows

def queued_on_unpause(dag):
    # The runs the scheduler creates for a DAG unpaused now: its timetable under the DAG's own
    # start, end and catchup, one interval after another until the next one has not ended yet.
    core, last, runs = _core_timetable(dag.timetable), None, 0
    restriction = TimeRestriction(earliest=pendulum.instance(dag.start_date),
        latest=pendulum.instance(dag.end_date) if dag.end_date else None, catchup=dag.catchup)
    while (info := core.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)):
        if info.data_interval.end > pendulum.now("UTC"):
            break
        runs, last = runs + 1, info.data_interval
    return runs

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
out = {}
for dag_id, dag in sorted(bag.dags.items()):
    if dag.timetable.__class__.__name__ == "AssetTriggeredTimetable":
        out[dag_id] = {"end_date": dag.end_date and dag.end_date.isoformat()}
        continue
    # The coverage ledger's expected windows, as the sync_coverage DAG reads them.
    windows = expected_windows(dag.timetable, start=dag.start_date, end=dag.end_date, until=datetime.now(UTC))
    # What the scheduler works on: the DAG as the dag-processor serializes it (a custom timetable
    # needs its plugin, apisync_schedule_plugin, for that).
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    out[dag_id] = {
        "end_date": dag.end_date and dag.end_date.isoformat(),
        "task_end_dates": sorted({str(t.end_date) for t in restored.tasks}),
        "timetable": type(restored.timetable).__name__,
        "summary": restored.timetable.summary,
        "ledger_windows": len(windows),
        "ledger_last_end": windows[-1][1].isoformat() if windows else None,
        "queued_on_unpause": queued_on_unpause(restored),
    }
print(json.dumps(out))
"""


def _parse_dags(env: dict[str, str]) -> dict[str, dict]:
    """Parse the DAGs folder in a fresh interpreter (``apisync.defaults`` reads its environment at
    import); each DAG's end_date and the windows its timetable schedules until 2026-12-02."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO_ROOT / "dags")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**env, "PYTHONPATH": f"{REPO_ROOT / 'plugins'}:{REPO_ROOT}"},
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_make_run_schedules_the_sandbox_data_span_only(tmp_path: Path) -> None:
    """Reported: unpausing a sandbox DAG queued catchup from 2026-01-01 to today, ~8,000 hourly
    runs, all empty after the sandbox's data end. `make run`'s environment (the same
    ``airflow_env`` the e2e stack gets) ends every sync DAG where the sandbox's data end, and the
    coverage ledger expects exactly those windows (none after the end reported as never ran)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APISYNC_")}
    dags = _parse_dags({**env, **airflow_env(tmp_path)})
    data_start, data_end = (datetime.fromisoformat(moment) for moment in SANDBOX_WINDOW)
    hours = int((data_end - data_start).total_seconds() // 3600)
    for dag_id in SYNC_DAGS:
        assert dags[dag_id]["ledger_last_end"] == data_end.isoformat(), (dag_id, dags[dag_id])
        # Only the schedule ends, not the DAG: a DAG end_date would reach every task, and a manual
        # run after it (the Trigger dialog's logical date is "now") would get no task at all.
        assert dags[dag_id]["end_date"] is None and dags[dag_id]["task_end_dates"] == ["None"], dag_id
        assert dags[dag_id]["timetable"] == "EndingCronDataIntervalTimetable", dags[dag_id]
        assert dags[dag_id]["summary"].endswith("until 2026-01-08T00:00Z"), dags[dag_id]
    assert dags["orders_to_warehouse"]["queued_on_unpause"] == hours  # 168 hourly runs, not ~8,000
    assert dags["orders_to_warehouse"]["ledger_windows"] == hours
    assert dags["products_to_warehouse"]["ledger_windows"] == hours // 6
    # catchup=False DAGs: their latest interval lies past the data's end, so unpausing queues
    # nothing (trigger them with a window instead) rather than one empty run.
    for dag_id in ("customers_to_warehouse", "issues_to_warehouse", "products_to_warehouse"):
        assert dags[dag_id]["queued_on_unpause"] == 0, dag_id
    # The coverage check keeps running; the CRM push follows its asset.
    assert dags["sync_coverage"]["end_date"] is None
    assert dags["contacts_to_crm"]["end_date"] is None


def test_a_real_deployment_keeps_catching_up_to_now() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APISYNC_")}
    dags = _parse_dags(env)
    for dag_id in SYNC_DAGS:
        assert dags[dag_id]["timetable"] == "CronDataIntervalTimetable", dag_id
    now = datetime.now(UTC)
    since_start = int((now - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds() // 3600)
    # every hour up to now (the hour may turn between the parse and this line)
    assert since_start - 1 <= dags["orders_to_warehouse"]["queued_on_unpause"] <= since_start
    assert dags["issues_to_warehouse"]["queued_on_unpause"] == 1  # catchup off: the latest hour


def test_a_bad_end_date_names_the_variable() -> None:
    from apisync.defaults import catchup_end
    from apisync.errors import ConfigError

    assert catchup_end(None) is None and catchup_end(" ") is None
    assert catchup_end("2026-01-08T00:00:00Z") == datetime(2026, 1, 8, tzinfo=UTC)
    with pytest.raises(ConfigError, match="APISYNC_END_DATE must be an ISO-8601 date-time, got 'soon'"):
        catchup_end("soon")
    with pytest.raises(
        ConfigError, match="APISYNC_END_DATE='2025-06-01T00:00:00Z' must be after the start date"
    ):
        catchup_end("2025-06-01T00:00:00Z")
