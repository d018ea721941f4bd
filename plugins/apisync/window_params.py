"""A manual run's window: the ``window_start``/``window_end`` DAG Params and their checks.

Every sync DAG declares them with ``@dag(params=window_params())`` (re-exported by
:mod:`apisync.defaults`), so the Trigger dialog shows two date-time pickers with a title and a
description each. Both empty: the run syncs its own data interval (a scheduled run's, or for a
manual trigger the last complete schedule interval before the trigger's logical date). Both set:
exactly ``[window_start, window_end)``.

What is checked where:

- **At trigger time** (Airflow validates a run's conf against each Param's JSON schema, in the REST
  API and the UI alike): each value is null or an ISO-8601 date-time *with* a UTC offset (``Z`` or
  ``+02:00``). ``format: "date-time"`` alone gives the UI its picker but is checked by jsonschema
  only when the optional ``rfc3339-validator`` package is installed, which Airflow does not
  require; the ``pattern`` is what makes the check real.
- **At the first task, before any API call** (:func:`requested_window`, called by the extract's
  window resolution): what one Param's schema cannot say — both or neither, ``window_end`` after
  ``window_start``, at most ``max_days`` days (``APISYNC_MAX_WINDOW_DAYS``, default 31) — and the
  same format rules for a run whose DAG does not declare the Params (conf keys still arrive as
  params). A :class:`~apisync.errors.WindowError` names the param; it is a configuration error,
  so the task fails at once without retries.

The limit travels with the DAG: ``window_params(max_days=N)`` writes it into ``window_end``'s schema
(keyword :data:`MAX_DAYS_KEYWORD`, which validators and the UI ignore) and the task reads it back
from the DAG it runs in, so the DAG file is the one place that states it.

Owns: the Param names, their schema, the window limit and the checks. May import ``apisync.errors``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param

from apisync.errors import WindowError

__all__ = [
    "DEFAULT_MAX_WINDOW_DAYS",
    "ISO_DATETIME_WITH_OFFSET",
    "MAX_DAYS_ENV",
    "MAX_DAYS_KEYWORD",
    "WINDOW_END",
    "WINDOW_START",
    "declared_max_days",
    "max_window_days",
    "requested_window",
    "window_params",
]

WINDOW_START = "window_start"
WINDOW_END = "window_end"
MAX_DAYS_ENV = "APISYNC_MAX_WINDOW_DAYS"
DEFAULT_MAX_WINDOW_DAYS = 31
MAX_DAYS_KEYWORD = "x-apisync-max-days"

# ISO 8601 as datetime.fromisoformat reads it, the offset required: 2026-01-03T00:00:00Z,
# 2026-01-03T00:00:00.000Z (what the UI's picker sends), 2026-01-03 01:00+01:00.
ISO_DATETIME_WITH_OFFSET = (
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}(:\d{2})?)$"
)
_ISO = re.compile(ISO_DATETIME_WITH_OFFSET)


def max_window_days() -> int:
    """``APISYNC_MAX_WINDOW_DAYS``, else :data:`DEFAULT_MAX_WINDOW_DAYS`."""
    raw = os.environ.get(MAX_DAYS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_WINDOW_DAYS
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if days < 1:
        raise WindowError(f"{MAX_DAYS_ENV} must be a whole number of days >= 1, got {raw!r}")
    return days


def window_params(max_days: int | None = None) -> dict[str, Param]:
    """The ``params`` of a sync DAG: ``window_start`` and ``window_end``, empty by default."""
    days = max_window_days() if max_days is None else max_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise WindowError(f"window_params: max_days must be a whole number of days >= 1, got {days!r}")
    common: dict[str, Any] = {
        "type": ["null", "string"],
        "format": "date-time",
        "pattern": ISO_DATETIME_WITH_OFFSET,
    }
    return {
        WINDOW_START: Param(
            None,
            title="Window start",
            description=(
                "Sync records updated from this moment (inclusive), with a timezone, e.g. "
                "2026-01-03T00:00:00Z. Leave both fields empty to sync the run's data interval "
                "(for a manual run: the last complete interval before its logical date)."
            ),
            **common,
        ),
        WINDOW_END: Param(
            None,
            title="Window end",
            description=(
                f"Sync records updated before this moment (exclusive): after Window start and at "
                f"most {days} days later. Set both fields or neither."
            ),
            **{**common, MAX_DAYS_KEYWORD: days},
        ),
    }


def declared_max_days(dag: Any) -> int:
    """The limit the DAG's ``window_end`` Param declares; :func:`max_window_days` without one."""
    params = getattr(dag, "params", None)
    try:
        schema = params.get_param(WINDOW_END).schema if params is not None else {}
    except (AttributeError, KeyError):
        schema = {}
    days = schema.get(MAX_DAYS_KEYWORD)
    return days if isinstance(days, int) and not isinstance(days, bool) and days >= 1 else max_window_days()


def _moment(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and _ISO.match(value.strip()):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise WindowError(f"param {name}={value!r} is not a valid date-time: {exc}") from exc
    else:
        raise WindowError(
            f"param {name}={value!r} is not an ISO-8601 date-time with a timezone, "
            "e.g. 2026-01-03T00:00:00Z or 2026-01-03T01:00:00+01:00"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise WindowError(f"param {name}={value!r} has no timezone: add Z (UTC) or an offset like +01:00")
    return datetime.fromtimestamp(moment.timestamp(), UTC)


def requested_window(params: Mapping[str, Any], *, max_days: int) -> tuple[datetime, datetime] | None:
    """The window the run's params ask for (UTC), or None when neither param is set.

    Raises :class:`WindowError` naming the param: only one set, not a date-time with a timezone,
    ``window_end`` not after ``window_start``, or longer than ``max_days`` days.
    """
    start, end = params.get(WINDOW_START), params.get(WINDOW_END)
    if start in (None, "") and end in (None, ""):
        return None
    if start in (None, "") or end in (None, ""):
        given, missing = (WINDOW_END, WINDOW_START) if start in (None, "") else (WINDOW_START, WINDOW_END)
        raise WindowError(
            f"param {given} is set but {missing} is not: set both (a window) or neither "
            "(the run's data interval)"
        )
    window = (_moment(start, WINDOW_START), _moment(end, WINDOW_END))
    if window[1] <= window[0]:
        raise WindowError(f"param {WINDOW_END}={end!r} must be after {WINDOW_START}={start!r}")
    if window[1] - window[0] > timedelta(days=max_days):
        raise WindowError(
            f"param {WINDOW_END}={end!r} is {_days(window[1] - window[0])} days after "
            f"{WINDOW_START}={start!r}; a manual window spans at most {max_days} days "
            f"(split it into several runs, or use a backfill)"
        )
    return window


def _days(span: timedelta) -> str:
    return f"{span / timedelta(days=1):.4g}"
