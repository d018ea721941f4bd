"""
### Orders → warehouse

Every hour, sync the **orders** stream from the shop API (Stripe-style cursor pagination) into the
warehouse table `orders`, merging on `id`; line items land in `order_items`. Catchup is on: each
run owns exactly its data interval, so backfills and reruns never duplicate or lose a row.

- Source connection: `shop_api` (bearer key; rate limit learned from IETF `RateLimit` headers).
- Warehouse connection: `warehouse_default`.
- Spec: `include/streams/orders.yaml`; suite: `include/expectations/orders.json`.
- Alerts: Slack `slack_alerts` and email `smtp_alerts` after the last retry; a deadline alert when a
  run is not done 45 minutes after it was queued. A failed run's deadline stays "Upcoming" and
  fires unless the run is cleared and succeeds first: Airflow prunes deadlines only on success.
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
    catchup=True,
    max_active_runs=3,
    default_args=sync_default_args(),
    params=window_params(),
    deadline=sync_deadline(45),
    tags=["apisync", "sync", "warehouse", "orders"],
    doc_md=__doc__,
)
def orders_to_warehouse() -> None:
    sync_stream("orders", source_conn_id="shop_api", warehouse_conn_id="warehouse_default")


orders_to_warehouse()
