"""### Customers → warehouse, one hour only, in four slices (end-to-end test of the Syncs view)

The customers sync of `customers_to_warehouse` (four mapped 15-minute slices per window, pool
`accounts_api`), bounded to the window 2026-01-02 00:00 .. 01:00, so the Syncs view has a sliced
stream whose quarantined rows carry a slice's window. Only the Syncs view test's stack loads this
folder.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import CronDataIntervalTimetable, dag

from apisync.defaults import sync_default_args
from apisync.pipeline import sync_stream


@dag(
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=datetime(2026, 1, 2, 0, tzinfo=UTC),
    end_date=datetime(2026, 1, 2, 0, tzinfo=UTC),  # one window: logical date 00:00
    catchup=True,
    max_active_runs=1,
    default_args=sync_default_args(),
    tags=["apisync", "e2e"],
    doc_md=__doc__,
)
def customers_syncs_view_e2e() -> None:
    sync_stream(
        "customers",
        source_conn_id="accounts_api",
        warehouse_conn_id="warehouse_default",
        partitions=4,
        pool="accounts_api",
    )


customers_syncs_view_e2e()
