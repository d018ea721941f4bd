"""### Orders → warehouse, six hours only (end-to-end test of the Syncs view)

The orders sync of `orders_to_warehouse`, bounded to 2026-01-02 00:00 .. 06:00, so the Syncs
view's coverage bar has six windows. Only the Syncs view test's stack loads this folder.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import CronDataIntervalTimetable, dag

from apisync.defaults import sync_default_args
from apisync.pipeline import sync_stream


@dag(
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=datetime(2026, 1, 2, 0, tzinfo=UTC),
    end_date=datetime(2026, 1, 2, 5, tzinfo=UTC),  # logical dates 00:00 .. 05:00: six windows
    catchup=True,
    max_active_runs=3,
    default_args=sync_default_args(),
    tags=["apisync", "e2e"],
    doc_md=__doc__,
)
def orders_syncs_view_e2e() -> None:
    sync_stream("orders", source_conn_id="shop_api", warehouse_conn_id="warehouse_default")


orders_syncs_view_e2e()
