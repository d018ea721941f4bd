"""The sync DAGs' timetable ending where the data end, and the coverage ledger reading it
(issue 11, case 4: no run, and no "never ran" window, after the sandbox's data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable
from airflow.timetables.base import TimeRestriction

from apisync.coverage.ledger import WindowState, build_ledger, expected_windows
from apisync.schedule import EndingCronDataIntervalTimetable, sync_schedule

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 8, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 7, tzinfo=UTC)


def test_without_an_end_it_is_airflows_own_timetable() -> None:
    assert isinstance(sync_schedule("@hourly"), CronDataIntervalTimetable)


def test_no_interval_starts_at_or_after_the_end() -> None:
    hourly = sync_schedule("@hourly", end=END)
    windows = expected_windows(hourly, start=START, end=None, until=NOW)
    assert len(windows) == 7 * 24
    assert windows[-1] == (END - timedelta(hours=1), END)
    six_hourly = expected_windows(sync_schedule("0 */6 * * *", end=END), start=START, end=None, until=NOW)
    assert (len(six_hourly), six_hourly[-1][1]) == (7 * 4, END)


def test_catchup_off_schedules_nothing_once_the_data_have_ended() -> None:
    hourly = sync_schedule("@hourly", end=END)
    restriction = TimeRestriction(earliest=pendulum.instance(START), latest=None, catchup=False)
    assert hourly.next_dagrun_info(last_automated_data_interval=None, restriction=restriction) is None


def test_an_earlier_dag_end_date_still_wins() -> None:
    hourly = sync_schedule("@hourly", end=END)
    windows = expected_windows(hourly, start=START, end=datetime(2026, 1, 2, tzinfo=UTC), until=NOW)
    assert windows[-1] == (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 2, 1, tzinfo=UTC))


def test_it_round_trips_through_serialization() -> None:
    hourly = sync_schedule("@hourly", end=END)
    restored = EndingCronDataIntervalTimetable.deserialize(hourly.serialize())
    assert restored == hourly and restored.end == END
    assert restored.summary.endswith("until 2026-01-08T00:00Z")
    assert "no interval starting at or after 2026-01-08T00:00:00+00:00" in restored.description


def test_the_ledger_reports_no_window_after_the_end_as_never_ran() -> None:
    windows = expected_windows(sync_schedule("@hourly", end=END), start=START, end=None, until=NOW)
    ledger = build_ledger("orders", windows, [], now=NOW, grace=timedelta(minutes=45))
    assert ledger.count(WindowState.NEVER_RAN) == 7 * 24
    assert ledger.missing == [(START, END)]
