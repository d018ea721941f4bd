"""Coverage as the view draws it: the ledger's windows as segments, counts per state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk import CronDataIntervalTimetable, DeltaDataIntervalTimetable

from apisync.coverage.check import StreamTarget
from apisync.coverage.ledger import expected_windows
from apisync.load.audit import RunRecord, record_run
from apisync.report.intervals import cached_expected_windows, interval_coverage

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


@pytest.mark.parametrize(
    "timetable",
    [
        CronDataIntervalTimetable("@hourly", timezone="UTC"),
        CronDataIntervalTimetable("0 */6 * * *", timezone="UTC"),
        DeltaDataIntervalTimetable(timedelta(minutes=45)),
    ],
    ids=["hourly", "six-hourly", "every-45-min"],
)
def test_windows_extended_from_the_cache_equal_a_walk_from_the_start(timetable) -> None:
    target = StreamTarget(
        dag_id=f"cache_{id(timetable)}",
        stream="orders",
        timetable=timetable,
        start=T0 + timedelta(minutes=20),
        end=None,
        grace=timedelta(0),
        warehouse_conn_id="warehouse_default",
    )
    first = cached_expected_windows(target, until=T0 + timedelta(days=2, minutes=10))
    later = cached_expected_windows(target, until=T0 + timedelta(days=5, hours=7))
    walked = expected_windows(timetable, start=target.start, end=None, until=T0 + timedelta(days=5, hours=7))
    assert later == walked and later[: len(first)] == first and len(later) > len(first)
    earlier = cached_expected_windows(target, until=T0 + timedelta(days=1))
    assert earlier == expected_windows(timetable, start=target.start, end=None, until=T0 + timedelta(days=1))
