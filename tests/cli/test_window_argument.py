"""WINDOW of ``replay``: ``START/END``, or ``START`` as the interval of the stream's own schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk import CronDataIntervalTimetable

from apisync.cli.replay import WindowArgumentError, parse_window
from apisync.coverage.check import StreamTarget


def _target(cron: str) -> StreamTarget:
    return StreamTarget(
        dag_id="orders_to_warehouse",
        stream="orders",
        timetable=CronDataIntervalTimetable(cron, timezone="UTC"),
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=None,
        grace=timedelta(0),
        warehouse_conn_id="warehouse_default",
    )


def test_start_is_the_schedules_interval_starting_there() -> None:
    assert parse_window("2026-01-03T10:00Z", _target("@hourly")) == (
        datetime(2026, 1, 3, 10, tzinfo=UTC),
        datetime(2026, 1, 3, 11, tzinfo=UTC),
    )
    assert parse_window("2026-01-03T06:00:00+00:00", _target("0 */6 * * *"))[1] == datetime(
        2026, 1, 3, 12, tzinfo=UTC
    )


def test_start_end_is_taken_as_given_naive_meaning_utc_and_offsets_converted() -> None:
    assert parse_window("2026-01-03T10:00/2026-01-03T12:30+01:00", _target("@hourly")) == (
        datetime(2026, 1, 3, 10, tzinfo=UTC),
        datetime(2026, 1, 3, 11, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "2026-01-03T10:30Z",
            "is not the start of an interval of orders_to_warehouse's schedule (the next one",
        ),
        ("2026-01-03T11:00Z/2026-01-03T10:00Z", "END must be after START"),
        ("yesterday", "'yesterday' is not an ISO 8601 moment"),
    ],
)
def test_bad_windows_name_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(WindowArgumentError, match=message.replace("(", r"\(")):
        parse_window(text, _target("@hourly"))
