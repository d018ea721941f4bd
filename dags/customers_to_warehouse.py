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
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, dag

from apisync.defaults import START_DATE, sync_deadline, sync_default_args
from apisync.pipeline import sync_stream


@dag(
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=sync_default_args(),
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
