"""### Sync coverage: every window of every sync DAG, synced or named

Every hour, read each sync stream's interval ledger (its DAG's schedule against the `sync_runs`
rows in the warehouse) and alert on Slack and by email naming the windows that **never ran** or
**failed**, merged into ranges: `orders: 41 windows never ran, 2026-01-06T03:00Z → 2026-01-07T20:00Z`.
Airflow has no hook for "an interval was skipped" (a backfill that moved the scheduler on,
`catchup=False`, a pause, a run marked success by hand, a failed run nobody cleared): this is it.

- Windows of queued or running runs are in progress, not missing; a window is missing only once
  one interval plus the DAG's deadline has passed since it ended. A paused DAG is named as paused.
- Streams whose spec says `coverage: {repair: backfill}` get a backfill (reprocess `none`) of
  their oldest missing range through the REST API; one per DAG at a time.
- Airflow API connection: `airflow_api` (HTTP: host = API base URL, login/password). Run param
  `dag_ids` checks only those DAGs.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, dag

from apisync.defaults import START_DATE, sync_default_args
from apisync.pipeline import check_coverage


@dag(
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=sync_default_args(),
    params={"dag_ids": []},
    tags=["apisync", "coverage"],
    doc_md=__doc__,
)
def sync_coverage() -> None:
    check_coverage(api_conn_id="airflow_api")


sync_coverage()
