"""
### Issues → warehouse

Every hour, sync the **issues** stream from the tracker API (GitHub-style `Link` header
pagination, `since`/`until` on `updated_at`) into the warehouse table `issues`, merging on `id`.

- Source connection: `tracker_api` (API key header). Its extras declare the limit
  (20 requests/s, burst 5) and the `X-RateLimit-*` header dialect; the hook slows down before the
  API answers 429 and honours `Retry-After` when it does.
- Warehouse connection: `warehouse_default`.
- Spec: `include/streams/issues.yaml`; suite: `include/expectations/issues.json`.
- Manual run: *Trigger* has the fields **Window start** and **Window end** (date-times with a
  timezone, e.g. `2026-01-03T00:00:00Z`): both set, the run syncs exactly that window (at most 31
  days, `APISYNC_MAX_WINDOW_DAYS`); both empty, it syncs the last complete hour before the
  trigger's logical date (the dialog pre-fills now), like a scheduled run. A bad window fails the
  extract before any API call.
- Runs are scheduled up to `APISYNC_END_DATE` when it is set (`make run`: where the sandbox's data
  end); unset, up to now.
"""

from __future__ import annotations

from airflow.sdk import dag

from apisync.defaults import START_DATE, sync_deadline, sync_default_args, sync_schedule, window_params
from apisync.pipeline import sync_stream


@dag(
    schedule=sync_schedule("@hourly"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=sync_default_args(),
    params=window_params(),
    deadline=sync_deadline(45),
    tags=["apisync", "sync", "warehouse", "issues"],
    doc_md=__doc__,
)
def issues_to_warehouse() -> None:
    sync_stream("issues", source_conn_id="tracker_api", warehouse_conn_id="warehouse_default")


issues_to_warehouse()
