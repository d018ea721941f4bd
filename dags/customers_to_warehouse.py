"""
### Customers → warehouse, in parallel slices

Every hour, sync the **customers** stream from the accounts API (offset/limit pagination with a
total) into the warehouse table `customers`, merging on `id`. Each hourly window is split into
four 15-minute slices pulled by **mapped tasks** in parallel; they all use the `accounts_api`
connection, so they share one rate budget (the hook's shared limiter), and the `accounts_api`
pool caps how many call the API at once. Rows failing the suite (e.g. invalid emails) go to the
`quarantine` table with the reason.

- Source connection: `accounts_api` (OAuth2 client credentials; limit learned from the
  `RateLimit-*` headers). Pool: `accounts_api` (`make run` creates it with 2 slots).
- Warehouse connection: `warehouse_default`. Updating `customers` triggers `contacts_to_crm`.
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
    tags=["apisync", "sync", "warehouse", "customers"],
    doc_md=__doc__,
)
def customers_to_warehouse() -> None:
    sync_stream(
        "customers",
        source_conn_id="accounts_api",
        warehouse_conn_id="warehouse_default",
        partitions=4,
        pool="accounts_api",
    )


customers_to_warehouse()
