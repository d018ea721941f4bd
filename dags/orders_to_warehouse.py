"""
### Orders → warehouse

Every hour, sync the **orders** stream from the shop API (Stripe-style cursor pagination) into the
warehouse table `orders`, merging on `id`; line items land in `order_items`. Catchup is on: each
run owns exactly its data interval, so backfills and reruns never duplicate or lose a row.

- Source connection: `shop_api` (bearer key; rate limit learned from IETF `RateLimit` headers).
- Warehouse connection: `warehouse_default`.
- Spec: `include/streams/orders.yaml`; suite: `include/expectations/orders.json`.
- Alerts: Slack `slack_alerts` and email `smtp_alerts` after the last retry; a deadline alert when a
  run is not done 45 minutes after it was queued.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, dag

from apisync.defaults import START_DATE, sync_deadline, sync_default_args
from apisync.pipeline import sync_stream


@dag(
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=START_DATE,
    catchup=True,
    max_active_runs=3,
    default_args=sync_default_args(),
    deadline=sync_deadline(45),
    tags=["apisync", "sync", "warehouse", "orders"],
    doc_md=__doc__,
)
def orders_to_warehouse() -> None:
    sync_stream("orders", source_conn_id="shop_api", warehouse_conn_id="warehouse_default")


orders_to_warehouse()
