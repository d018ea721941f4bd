"""The interval ledger read from a real ``sync_runs`` table (SQLite and PostgreSQL).

Case 1 of issue 9: a backfill of three late intervals, then the scheduler's next run far ahead:
the hours between never got a run and nothing said so. The ledger must name them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from apisync.load import RunRecord, record_run

HOUR = timedelta(hours=1)
DAY6 = datetime(2026, 1, 6, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[sa.Engine, str | None]]:
    """A real warehouse engine and the schema holding ``sync_runs``."""
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
        yield engine, None
    else:
        schema = request.getfixturevalue("pg_schema")
        engine = sa.create_engine(request.getfixturevalue("postgres_url"))
        yield engine, schema
    engine.dispose()


def _hourly() -> object:
    from airflow.sdk import CronDataIntervalTimetable

    return CronDataIntervalTimetable("@hourly", timezone="UTC")


def _row(
    engine: sa.Engine, schema: str | None, start: datetime, end: datetime, status: str, **kw: object
) -> None:
    record_run(
        engine,
        RunRecord(
            stream=str(kw.pop("stream", "orders")),
            interval_start=start,
            interval_end=end,
            run_id=f"run_{start.isoformat()}",
            status=status,
        ),
        schema,
    )


def test_case1_intervals_that_never_ran_are_named_by_the_ledger(warehouse) -> None:
    """Three scheduled hours, a backfill of 20:00-23:00 the next day, nothing between: 41 never ran."""
    from apisync.coverage import WindowState, read_ledger

    engine, schema = warehouse
    for hour in range(3):
        _row(engine, schema, DAY6 + hour * HOUR, DAY6 + (hour + 1) * HOUR, "success")
    for hour in (44, 45, 46):  # the UI's Backfill dialog: 2026-01-07 20:00 .. 23:00
        _row(engine, schema, DAY6 + hour * HOUR, DAY6 + (hour + 1) * HOUR, "success")

    ledger = read_ledger(
        engine,
        "orders",
        timetable=_hourly(),
        start=DAY6,
        end=None,
        now=datetime(2026, 1, 8, tzinfo=UTC),
        grace=timedelta(0),
        db_schema=schema,
    )

    assert ledger.count(WindowState.SYNCED) == 6
    assert ledger.count(WindowState.NEVER_RAN) == 41
    assert ledger.count(WindowState.FAILED) == 0
    assert ledger.ranges(WindowState.NEVER_RAN) == [(DAY6 + 3 * HOUR, DAY6 + 44 * HOUR)]
    assert ledger.summary() == "orders: 41 windows never ran, 2026-01-06T03:00Z → 2026-01-07T20:00Z"
    assert ledger.expected == 47  # 00:00 .. 23:00 of day 7, the last one due (one interval of grace)


def test_a_window_is_synced_when_successful_slices_cover_it_even_if_a_later_attempt_failed(
    warehouse,
) -> None:
    from apisync.coverage import WindowState, read_ledger

    engine, schema = warehouse
    quarter = HOUR / 4
    for part in range(4):  # window 00:00 fully covered by its four mapped slices
        _row(engine, schema, DAY6 + part * quarter, DAY6 + (part + 1) * quarter, "success")
    for part in range(3):  # window 01:00: slice 3 never wrote a success row, slice 2 failed
        status = "failed" if part == 2 else "success"
        _row(engine, schema, DAY6 + HOUR + part * quarter, DAY6 + HOUR + (part + 1) * quarter, status)
    _row(engine, schema, DAY6 + 2 * HOUR, DAY6 + 3 * HOUR, "success")  # window 02:00 synced ...
    _row(engine, schema, DAY6 + 2 * HOUR, DAY6 + 3 * HOUR, "failed")  # ... then a rerun failed
    _row(engine, schema, DAY6 + 3 * HOUR, DAY6 + 4 * HOUR, "quarantine_threshold_exceeded")
    _row(engine, schema, DAY6 + 4 * HOUR, DAY6 + 5 * HOUR, "success", stream="customers")  # another stream

    ledger = read_ledger(
        engine,
        "orders",
        timetable=_hourly(),
        start=DAY6,
        end=DAY6 + 4 * HOUR,  # logical dates 00:00 .. 04:00 inclusive: five windows
        now=datetime(2026, 1, 9, tzinfo=UTC),
        grace=timedelta(minutes=45),
        db_schema=schema,
    )

    assert [w.state for w in ledger.windows] == [
        WindowState.SYNCED,
        WindowState.FAILED,
        WindowState.SYNCED,
        WindowState.FAILED,
        WindowState.NEVER_RAN,
    ]
    assert ledger.summary() == (
        "orders: 2 windows failed, 2026-01-06T01:00Z → 2026-01-06T02:00Z, "
        "2026-01-06T03:00Z → 2026-01-06T04:00Z; 1 window never ran, 2026-01-06T04:00Z → 2026-01-06T05:00Z"
    )


def test_running_windows_and_windows_within_grace_are_not_missing(warehouse) -> None:
    from apisync.coverage import WindowState, read_ledger

    engine, schema = warehouse
    now = DAY6 + 5 * HOUR + timedelta(minutes=30)
    ledger = read_ledger(
        engine,
        "orders",
        timetable=_hourly(),
        start=DAY6,
        end=None,
        now=now,
        grace=timedelta(minutes=45),  # the deadline; one interval more before a window is missing
        in_progress=[(DAY6 + HOUR, DAY6 + 2 * HOUR)],
        db_schema=schema,
    )
    # Windows ending by 05:30; one is missing once its end + one interval + 45 minutes has passed.
    assert [w.state for w in ledger.windows] == [
        WindowState.NEVER_RAN,  # ended 01:00, due 02:45
        WindowState.IN_PROGRESS,  # a queued or running DAG run holds it
        WindowState.NEVER_RAN,  # ended 03:00, due 04:45
        WindowState.NOT_DUE,  # ended 04:00, due 05:45
        WindowState.NOT_DUE,  # ended 05:00, due 06:45
    ]
    assert ledger.count(WindowState.NOT_DUE) == 2  # ended 04:00 and 05:00: due at 05:45 and 06:45
    assert ledger.missing == [(DAY6, DAY6 + HOUR), (DAY6 + 2 * HOUR, DAY6 + 3 * HOUR)]


def test_no_sync_runs_table_yet_means_every_due_window_never_ran(tmp_path: Path) -> None:
    from apisync.coverage import WindowState, read_ledger

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    ledger = read_ledger(
        engine,
        "orders",
        timetable=_hourly(),
        start=DAY6,
        end=DAY6 + 2 * HOUR,
        now=datetime(2026, 2, 1, tzinfo=UTC),
        grace=timedelta(0),
    )
    assert ledger.count(WindowState.NEVER_RAN) == 3
    assert ledger.summary() == "orders: 3 windows never ran, 2026-01-06T00:00Z → 2026-01-06T03:00Z"
