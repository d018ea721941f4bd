"""
### Products → warehouse

Every six hours, sync the **products** stream from the catalog's GraphQL API (Relay
`pageInfo { hasNextPage endCursor }` pagination) into the warehouse table `products`, merging on
`id`; variants land in `product_variants`. GraphQL errors, which arrive as HTTP 200 with an
`errors` array, fail the task with the server's message.

- Source connection: `catalog_api` (basic auth).
- Warehouse connection: `warehouse_default`.
- Manual run: *Trigger* has the fields **Window start** and **Window end** (date-times with a
  timezone, e.g. `2026-01-03T00:00:00Z`): both set, the run syncs exactly that window (at most 31
  days, `APISYNC_MAX_WINDOW_DAYS`); both empty, it syncs the last complete six-hour interval before the
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
    schedule=sync_schedule("0 */6 * * *"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=sync_default_args(),
    params=window_params(),
    deadline=sync_deadline(90),
    tags=["apisync", "sync", "warehouse", "products"],
    doc_md=__doc__,
)
def products_to_warehouse() -> None:
    sync_stream("products", source_conn_id="catalog_api", warehouse_conn_id="warehouse_default")


products_to_warehouse()
