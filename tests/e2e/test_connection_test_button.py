"""The UI's connection *Test* button checks an apisync connection the way a task would (issue 13).

The button posts the form to ``POST /api/v2/connections/test``; the api-server builds the hook
registered for the connection's type and calls its ``test_connection()``. For type ``apisync``
(registered by provider/, apisync-provider) that is ``ApiHook``: a typo in the extras is named with
a "did you mean" before any request, and a good connection reaches the sandbox with its credentials.
"""

from __future__ import annotations

import json

import pytest

from scripts.localstack import connections_env
from tests.e2e.conftest import AirflowStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def press_test(stack: AirflowStack, **form: object) -> dict[str, object]:
    response = stack.api("POST", "/connections/test", json={"connection_id": "tried_in_the_form", **form})
    assert response.status_code == 200, response.text
    return response.json()


def tracker_connection(stack: AirflowStack) -> dict[str, object]:
    """``tracker_api`` as `make run` defines it (API key in the password), as the form would send it."""
    env = connections_env(stack.sandbox_urls, stack.home)
    conn = json.loads(env["AIRFLOW_CONN_TRACKER_API"])
    assert conn["conn_type"] == "apisync"
    return {**conn, "extra": json.dumps(conn["extra"])}


def test_a_typo_in_the_extras_is_named_before_any_request(airflow_stack: AirflowStack) -> None:
    form = tracker_connection(airflow_stack)
    extra = json.loads(str(form["extra"]))
    extra["rate_limt"] = extra.pop("rate_limit")
    result = press_test(airflow_stack, **{**form, "extra": json.dumps(extra)})
    assert result["status"] is False
    assert "unknown extra 'rate_limt' (did you mean 'rate_limit'?)" in str(result["message"])


def test_a_bad_value_is_named_with_its_key_path(airflow_stack: AirflowStack) -> None:
    form = tracker_connection(airflow_stack)
    extra = json.loads(str(form["extra"]))
    extra["rate_limit"]["requests"] = "abc"
    result = press_test(airflow_stack, **{**form, "extra": json.dumps(extra)})
    assert result["status"] is False
    assert "extra 'rate_limit.requests' must be a number > 0, got 'abc'" in str(result["message"])


def test_a_good_connection_reaches_the_api_with_its_credentials(airflow_stack: AirflowStack) -> None:
    result = press_test(airflow_stack, **tracker_connection(airflow_stack))
    assert result["status"] is True, result


def test_a_wrong_key_is_refused_by_the_api(airflow_stack: AirflowStack) -> None:
    form = tracker_connection(airflow_stack)
    result = press_test(airflow_stack, **{**form, "password": "not-the-key"})
    assert result["status"] is False
    assert "HTTP 401" in str(result["message"])
    assert "not-the-key" not in str(result["message"])
