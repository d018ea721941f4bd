"""### Orders → warehouse, twelve hours with catchup (end-to-end scheduler-jump test)

The orders sync of `orders_to_warehouse`, bounded to 2026-01-07 00:00 .. 12:00, for the e2e test
whose scheduler really schedules: catchup walks the twelve windows one run at a time
(`max_active_runs=1`), so a backfill of later hours is created while catchup is still early.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import CronDataIntervalTimetable, dag

from apisync.defaults import sync_default_args
from apisync.pipeline import sync_stream


@dag(
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=datetime(2026, 1, 7, 0, tzinfo=UTC),
    end_date=datetime(2026, 1, 7, 11, tzinfo=UTC),  # logical dates 00:00 .. 11:00: twelve windows
    catchup=True,
    max_active_runs=1,
    default_args=sync_default_args(),
    tags=["apisync", "e2e"],
    doc_md=__doc__,
)
def orders_catchup_e2e() -> None:
    sync_stream("orders", source_conn_id="shop_api", warehouse_conn_id="warehouse_default")


orders_catchup_e2e()
