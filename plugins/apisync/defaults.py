"""The contract every sync DAG shares (start date, schedule, default_args, deadline, the manual-run
window Params), so a DAG file states only what is particular to it.

Retries back off exponentially (APIs recover in seconds to minutes; a fixed short delay just burns
attempts), and the failure alerts fire once the retries are spent.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

import pendulum

from apisync.alerts import alert_default_args, sync_deadline
from apisync.errors import ConfigError
from apisync.schedule import sync_schedule as _sync_schedule
from apisync.window_params import window_params

__all__ = [
    "DEFAULT_OWNER",
    "END_DATE",
    "START_DATE",
    "catchup_end",
    "sync_deadline",
    "sync_default_args",
    "sync_schedule",
    "window_params",
]

DEFAULT_OWNER = "data-platform"
DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAY = timedelta(seconds=30)
DEFAULT_MAX_RETRY_DELAY = timedelta(minutes=10)

# Where catchup starts: APISYNC_START_DATE, the first interval a deployment wants synced. The
# default is where the sandbox's example data begin (the first week of 2026).
START_DATE: datetime = pendulum.instance(
    datetime.fromisoformat(os.environ.get("APISYNC_START_DATE", "2026-01-01T00:00:00Z"))
)

END_DATE_ENV = "APISYNC_END_DATE"


def catchup_end(value: str | None) -> datetime | None:
    """Where a sync DAG's schedule ends: no interval starting at or after ``value``; None: no end."""
    if value is None or not value.strip():
        return None
    try:
        moment = pendulum.parse(value.strip())
    except ValueError as exc:
        raise ConfigError(f"{END_DATE_ENV} must be an ISO-8601 date-time, got {value!r}") from exc
    if not isinstance(moment, pendulum.DateTime):  # a bare date parses to DateTime too; a time not
        raise ConfigError(f"{END_DATE_ENV} must be a date-time (UTC unless it says), got {value!r}")
    if moment <= START_DATE:
        raise ConfigError(f"{END_DATE_ENV}={value!r} must be after the start date {START_DATE.isoformat()}")
    return moment


# Where the schedule ends: APISYNC_END_DATE, where a deployment's data end (exclusive). Unset — a
# real deployment — the DAGs keep catching up to now; `make run` and the e2e stack set it to where
# the sandbox's data end, so unpausing a DAG queues the week of data, not a year of empty hours.
# It ends the timetable, not the DAG (`end_date`): see apisync.schedule for why.
END_DATE = catchup_end(os.environ.get(END_DATE_ENV))


def sync_schedule(cron: str) -> Any:
    """A sync DAG's ``schedule``: cron data intervals in UTC, ending at :data:`END_DATE` if set."""
    return _sync_schedule(cron, end=END_DATE)


def sync_default_args(
    *, owner: str = DEFAULT_OWNER, retries: int = DEFAULT_RETRIES, **overrides: Any
) -> dict[str, Any]:
    """default_args for a sync DAG: owner, retries with exponential backoff, failure alerts."""
    return alert_default_args(
        {
            "owner": owner,
            "retries": retries,
            "retry_delay": DEFAULT_RETRY_DELAY,
            "retry_exponential_backoff": True,
            "max_retry_delay": DEFAULT_MAX_RETRY_DELAY,
            **overrides,
        }
    )
