"""Coverage as the view draws it: the ledger's windows as segments, counts per state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable

from apisync.coverage.check import StreamTarget
from apisync.load.audit import RunRecord, record_run
from apisync.report.intervals import interval_coverage

HOUR = timedelta(hours=1)
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def test_segments_and_counts_follow_the_ledger(warehouse) -> None:
    target = StreamTarget(
        dag_id="orders_to_warehouse",
        stream="orders",
        timetable=CronDataIntervalTimetable("@hourly", timezone="UTC"),
        start=T0,
        end=T0 + 5 * HOUR,  # windows 00:00 .. 05:00 (the end is inclusive, as in Airflow)
        grace=timedelta(0),
        warehouse_conn_id="warehouse_default",
    )
    for hour, status in [(0, "success"), (1, "success"), (2, "failed"), (4, "success")]:
        record_run(
            warehouse.engine,
            RunRecord("orders", T0 + hour * HOUR, T0 + (hour + 1) * HOUR, f"r{hour}", status),
            warehouse.db_schema,
        )
    coverage = interval_coverage(
        warehouse.engine,
        target,
        now=T0 + timedelta(days=1),
        in_progress=[(T0 + 5 * HOUR, T0 + 6 * HOUR)],
        db_schema=warehouse.db_schema,
    )
    assert [(s.state.value, s.start.hour, s.end.hour, s.windows) for s in coverage.segments()] == [
        ("synced", 0, 2, 2),
        ("failed", 2, 3, 1),
        ("never ran", 3, 4, 1),
        ("synced", 4, 5, 1),
        ("in progress", 5, 6, 1),
    ]
    assert coverage.counts == {"synced": 3, "failed": 1, "never ran": 1, "in progress": 1, "not due": 0}
    assert coverage.missing == [(T0 + 2 * HOUR, T0 + 4 * HOUR)]
    data = coverage.as_dict()
    assert data["expected"] == 6 and data["missing"] == [
        [(T0 + 2 * HOUR).isoformat(), (T0 + 4 * HOUR).isoformat()]
    ]
    assert data["summary"].startswith("orders: 1 window failed")
