"""### Orders → warehouse, six hours only (end-to-end coverage test)

The orders sync of `orders_to_warehouse`, bounded to 2026-01-07 00:00 .. 06:00 so the coverage
test's ledger has six windows, not a year of them. Only the e2e stack's DAGs folder holds it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import CronDataIntervalTimetable, dag

from apisync.defaults import sync_default_args
from apisync.pipeline import sync_stream


@dag(
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=datetime(2026, 1, 7, 0, tzinfo=UTC),
    end_date=datetime(2026, 1, 7, 5, tzinfo=UTC),  # logical dates 00:00 .. 05:00: six windows
    catchup=True,
    max_active_runs=3,
    default_args=sync_default_args(),
    tags=["apisync", "e2e"],
    doc_md=__doc__,
)
def orders_coverage_e2e() -> None:
    sync_stream("orders", source_conn_id="shop_api", warehouse_conn_id="warehouse_default")


orders_coverage_e2e()
