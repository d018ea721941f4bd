"""
### Products → warehouse

Every six hours, sync the **products** stream from the catalog's GraphQL API (Relay
`pageInfo { hasNextPage endCursor }` pagination) into the warehouse table `products`, merging on
`id`; variants land in `product_variants`. GraphQL errors, which arrive as HTTP 200 with an
`errors` array, fail the task with the server's message.

- Source connection: `catalog_api` (basic auth).
- Warehouse connection: `warehouse_default`.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, dag

from apisync.defaults import START_DATE, sync_deadline, sync_default_args
from apisync.pipeline import sync_stream


@dag(
    schedule=CronDataIntervalTimetable("0 */6 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=sync_default_args(),
    deadline=sync_deadline(90),
    tags=["apisync", "sync", "warehouse", "products"],
    doc_md=__doc__,
)
def products_to_warehouse() -> None:
    sync_stream("products", source_conn_id="catalog_api", warehouse_conn_id="warehouse_default")


products_to_warehouse()
