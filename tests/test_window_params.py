"""The manual-run window: the Params' schema as Airflow validates it at trigger time, and the
checks the first task makes before any API call (issue 11, case 2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk import DAG

from apisync.errors import ConfigError, WindowError
from apisync.pipeline.staging import resolve_window
from apisync.window_params import (
    MAX_DAYS_ENV,
    MAX_DAYS_KEYWORD,
    declared_max_days,
    max_window_days,
    requested_window,
    window_params,
)


def trigger(conf: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """What Airflow does with a trigger's conf (REST API and UI): the scheduler's copy of the DAG
    (serialized, as the dag-processor stores it) merges the conf into its params and validates
    every Param's schema (``create_dagrun``), refusing the run when one fails."""
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("window_trigger", schedule=None, params=window_params(**kwargs)) as dag:
        pass
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    return dict(serialized.params.deep_merge(conf).validate())


def test_the_params_are_optional_date_time_pickers_with_title_and_description() -> None:
    params = window_params(max_days=14)
    assert list(params) == ["window_start", "window_end"]
    for param in params.values():
        assert param.value is None  # empty by default: the run's data interval
        assert param.schema["type"] == ["null", "string"]
        assert param.schema["format"] == "date-time"  # the UI's date-time picker
        assert param.schema["title"] and param.description
    assert "14 days" in str(params["window_end"].description)
    assert params["window_end"].schema[MAX_DAYS_KEYWORD] == 14


def test_empty_params_pass_the_trigger() -> None:
    assert trigger({}) == {"window_start": None, "window_end": None}


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-03T00:00:00Z",
        "2026-01-03T00:00:00.000Z",  # what the Trigger dialog's picker sends (toISOString)
        "2026-01-03T01:00:00+01:00",
        "2026-01-03 01:00+01:00",
    ],
)
def test_timezone_aware_iso_date_times_pass_the_trigger(value: str) -> None:
    assert trigger({"window_start": value})["window_start"] == value


@pytest.mark.parametrize("value", ["2026-01-03T00:00:00", "yesterday", "2026-01-03", "03/01/2026 00:00Z"])
def test_the_trigger_refuses_a_value_that_is_not_a_timezone_aware_date_time(value: str) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="Invalid input for param window_end"):
        trigger({"window_end": value})


def test_max_days_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_DAYS_ENV, "7")
    assert max_window_days() == 7
    assert window_params()["window_end"].schema[MAX_DAYS_KEYWORD] == 7
    monkeypatch.setenv(MAX_DAYS_ENV, "a week")
    with pytest.raises(
        ConfigError, match=f"{MAX_DAYS_ENV} must be a whole number of days >= 1, got 'a week'"
    ):
        max_window_days()
    with pytest.raises(ConfigError, match="max_days must be a whole number of days >= 1, got 0"):
        window_params(max_days=0)


START, END = "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"


def test_a_window_is_both_params_in_utc() -> None:
    assert requested_window({"window_start": START, "window_end": END}, max_days=31) == (
        datetime(2026, 1, 3, tzinfo=UTC),
        datetime(2026, 1, 4, tzinfo=UTC),
    )
    assert requested_window(
        {"window_start": "2026-01-03T01:00:00+01:00", "window_end": "2026-01-03T02:00:00.000Z"}, max_days=1
    ) == (datetime(2026, 1, 3, tzinfo=UTC), datetime(2026, 1, 3, 2, tzinfo=UTC))
    assert requested_window({"window_start": None, "window_end": ""}, max_days=31) is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window_start": START}, "param window_start is set but window_end is not: set both"),
        ({"window_end": END}, "param window_end is set but window_start is not: set both"),
        ({"window_start": END, "window_end": START}, "param window_end='2026-01-03T00:00:00Z' must be after"),
        ({"window_start": START, "window_end": START}, "must be after window_start"),
        ({"window_start": "2026-01-03T00:00:00", "window_end": END}, "param window_start=.* with a timezone"),
        ({"window_start": START, "window_end": "tomorrow"}, "param window_end='tomorrow' is not an ISO-8601"),
        ({"window_start": START, "window_end": "2026-02-30T00:00:00Z"}, "param window_end=.* not a valid"),
        (
            {"window_start": "2026-01-01T00:00:00Z", "window_end": "2026-02-01T00:00:01Z"},
            "param window_end=.* is 31 days after window_start=.*; a manual window spans at most 31 days",
        ),
    ],
)
def test_a_bad_window_names_the_param(params: dict[str, Any], message: str) -> None:
    with pytest.raises(WindowError, match=message):
        requested_window(params, max_days=31)


def test_the_limit_is_the_one_the_dag_declares() -> None:
    with DAG("window_limit", schedule=None, params=window_params(max_days=2)) as dag:
        pass
    assert declared_max_days(dag) == 2
    with DAG("no_window_params", schedule=None) as undeclared:
        pass
    assert declared_max_days(undeclared) == max_window_days()
    assert declared_max_days(None) == max_window_days()


def _context(dag: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "dag": dag,
        "params": params,
        "data_interval_start": datetime(2026, 1, 7, 3, tzinfo=UTC),
        "data_interval_end": datetime(2026, 1, 7, 4, tzinfo=UTC),
    }


def test_resolve_window_takes_the_params_window_or_the_data_interval() -> None:
    with DAG("window_resolve", schedule=None, params=window_params(max_days=2)) as dag:
        pass
    assert resolve_window(_context(dag, {"window_start": None, "window_end": None})) == (
        datetime(2026, 1, 7, 3, tzinfo=UTC),
        datetime(2026, 1, 7, 4, tzinfo=UTC),
    )
    assert resolve_window(_context(dag, {"window_start": START, "window_end": END}), 1, 4) == (
        datetime(2026, 1, 3, 6, tzinfo=UTC),
        datetime(2026, 1, 3, 12, tzinfo=UTC),
    )
    wide = {"window_start": START, "window_end": "2026-01-06T00:00:00Z"}
    with pytest.raises(WindowError, match="at most 2 days"):
        resolve_window(_context(dag, wide))
    # Half a window no longer silently mixes a param with the data interval.
    with pytest.raises(WindowError, match="param window_start is set but window_end is not"):
        resolve_window(_context(dag, {"window_start": START}))


def test_a_run_without_window_or_data_interval_says_what_to_set() -> None:
    """A REST trigger with ``logical_date: null`` gets no data interval from Airflow."""
    with DAG("window_none", schedule=None, params=window_params()) as dag:
        pass
    context = {"dag": dag, "params": {}, "data_interval_start": None, "data_interval_end": None}
    with pytest.raises(WindowError, match=r"no window: .* set both params, or trigger with a logical date"):
        resolve_window(context)


# -- the window filter's formats: how {window_start}/{window_end} render into a request (issue 15) --
WINDOW_FILTER = (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 1, 3, 6, 7, 8, 500000, tzinfo=UTC))


@pytest.mark.parametrize(
    ("fmt", "start", "end"),
    [
        ("epoch", 1767323045, 1767420429),  # the end rounds up to the whole second: never narrower
        ("epoch_ms", 1767323045000, 1767420429000),
        ("iso", "2026-01-02T03:04:05Z", "2026-01-03T06:07:09Z"),
        ("iso_ms", "2026-01-02T03:04:05.000Z", "2026-01-03T06:07:09.000Z"),
        ("iso_offset", "2026-01-02T03:04:05+00:00", "2026-01-03T06:07:09+00:00"),
        ("iso_offset_ms", "2026-01-02T03:04:05.000+00:00", "2026-01-03T06:07:09.000+00:00"),
        ("date", "2026-01-02", "2026-01-04"),  # widened to whole days
    ],
)
def test_each_window_format_renders_a_bound_that_asks_for_at_least_the_window(
    fmt: str, start: Any, end: Any
) -> None:
    from apisync.spec import render_window

    params = {"from": "{window_start}", "to": "{window_end}", "fixed": 1}
    assert render_window(params, *WINDOW_FILTER, fmt) == {"from": start, "to": end, "fixed": 1}
    # Per value, whatever window_format says; inside a text, in place.
    per_value = {"from": f"{{window_start:{fmt}}}", "q": f"updated ge {{window_end:{fmt}}}"}
    assert render_window(per_value, *WINDOW_FILTER, "epoch") == {"from": start, "q": f"updated ge {end}"}


def test_an_exclusive_start_asks_one_second_earlier_in_every_format() -> None:
    from apisync.spec import WindowBounds, render_window

    bounds = WindowBounds(start="exclusive", end="inclusive")
    rendered = render_window(
        {"gt": "{window_start:iso_ms}", "lte": "{window_end:date}"}, *WINDOW_FILTER, "iso", bounds
    )
    assert rendered == {"gt": "2026-01-02T03:04:04.000Z", "lte": "2026-01-04"}


def test_a_date_on_midnight_stays_that_day() -> None:
    from apisync.spec import render_window

    window = (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC))
    assert render_window(["{window_start:date}", "{window_end:date}"], *window, "iso") == [
        "2026-01-02",
        "2026-01-05",
    ]
