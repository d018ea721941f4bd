"""A sync DAG's schedule: cron data intervals, optionally ending where a deployment's data end.

``sync_schedule("@hourly")`` (re-exported by :mod:`apisync.defaults`) is Airflow's own
``CronDataIntervalTimetable`` in UTC — unless ``APISYNC_END_DATE`` is set (`make run`, the e2e
stack: where the sandbox's data end), when it is :class:`EndingCronDataIntervalTimetable`, the same
intervals with no interval starting at or after the end. Unpausing a DAG then queues the data's
windows, not every empty hour up to today.

Why not the DAG's ``end_date``, the obvious knob: Airflow copies a DAG's ``end_date`` to every task
(and again when it deserializes the DAG), and a run whose logical date lies after a task's
``end_date`` gets no instance of that task. A manual run — the Trigger dialog pre-fills the logical
date with *now* — would be an empty "success", window or not. Ending the *timetable* stops only
the schedule (and catchup and the coverage ledger, which read the timetable); manual runs and
backfills inside the data keep their tasks.

A custom timetable must be registered with Airflow through a plugin so the scheduler can
deserialize it: ``plugins/apisync_schedule_plugin.py`` does that.

Owns: the schedule of a sync DAG. May import ``apisync.errors``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable as CoreCronDataIntervalTimetable

from apisync.errors import ConfigError

__all__ = ["EndingCronDataIntervalTimetable", "sync_schedule"]


class EndingCronDataIntervalTimetable(CoreCronDataIntervalTimetable):
    """``CronDataIntervalTimetable`` whose last interval is the one starting before ``end``."""

    def __init__(self, cron: str, timezone: Any, *, end: datetime) -> None:
        super().__init__(cron, timezone)
        if end.tzinfo is None:
            raise ConfigError(f"the schedule's end {end.isoformat()} has no timezone")
        import pendulum

        # A pendulum DateTime in UTC: what the core timetables compute with.
        self.end = pendulum.instance(end).in_timezone("UTC")
        self.description = f"{self.description}, no interval starting at or after {self.end.isoformat()}"

    @property
    def summary(self) -> str:
        return f"{super().summary} until {self.end.strftime('%Y-%m-%dT%H:%MZ')}"

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        # Airflow schedules an interval while its start is <= restriction.latest.
        last_start = self.end - timedelta(microseconds=1)
        latest = last_start if restriction.latest is None else min(restriction.latest, last_start)
        return super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval,
            restriction=restriction._replace(latest=latest),
        )

    def serialize(self) -> dict[str, Any]:
        return {**super().serialize(), "end": self.end.isoformat()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> EndingCronDataIntervalTimetable:
        from airflow._shared.timezones.timezone import parse_timezone

        return cls(
            data["expression"], parse_timezone(data["timezone"]), end=datetime.fromisoformat(data["end"])
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, EndingCronDataIntervalTimetable)
            and super().__eq__(other)
            and self.end == other.end
        )

    def __hash__(self) -> int:
        return hash((self._expression, self.end))


def sync_schedule(cron: str, *, end: datetime | None = None) -> Any:
    """Cron data intervals in UTC; with ``end``, none starting at or after it."""
    if end is None:
        from airflow.sdk import CronDataIntervalTimetable

        return CronDataIntervalTimetable(cron, timezone="UTC")
    import pendulum

    return EndingCronDataIntervalTimetable(cron, pendulum.timezone("UTC"), end=end)
