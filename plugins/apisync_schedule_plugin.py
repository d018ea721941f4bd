"""Registers apisync's timetable with Airflow, so the scheduler and the api-server can deserialize
the sync DAGs whose schedule ends (``APISYNC_END_DATE``, see :mod:`apisync.schedule`).

Airflow imports every ``.py`` file of the plugins folder by its file name; this one imports the
timetable from the ``apisync`` package, so its registered name (``apisync.schedule.…``) is the one
the DAG files serialize.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from apisync.schedule import EndingCronDataIntervalTimetable


class ApisyncSchedulePlugin(AirflowPlugin):
    name = "apisync_schedule"
    timetables = [EndingCronDataIntervalTimetable]
