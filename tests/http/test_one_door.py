"""One door to the network (issue 13 case 2): the provider's entry points go through ApiHook.request.

``run()``, ``run_and_check()`` and ``run_with_advanced_retry()`` are inherited from the http
provider's ``HttpHook``; they, and the operator and sensor built on them, must be paced by the
connection's limiter, retried and counted like every other request. The sandbox enforces the same
limit the connection declares (1 request/s, with a burst of 2 to absorb network jitter), and the
checks count what the server saw (429s) and what the hook counted, never elapsed time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from apisync.http import ApiAuthError, ApiClientError, ApiConfigError, ApiHook, ApiHttpOperator, ApiHttpSensor
from tests.http.conftest import run_dag_test

SERVER_LIMIT = {"rate": 1, "burst": 2}  # the sandbox: 1 request/s, 2 back-to-back at most
CLIENT_LIMIT = {"requests": 1, "period_s": 1, "burst": 1}  # the connection declares the same rate
CALLS = 5


def _limited(sandbox: Any, api_conn: Any, **extras: Any) -> tuple[Any, str]:
    sb = sandbox(records=CALLS, **SERVER_LIMIT)
    return sb, api_conn(sb, rate_limit=dict(CLIENT_LIMIT), **extras)


def _served(sb: Any) -> dict[str, int]:
    """What the server answered, by status (its own endpoints are not counted)."""
    return dict(sb.stats()["by_status"])


def test_run_is_paced_retried_and_counted(sandbox, api_conn) -> None:
    sb, conn_id = _limited(sandbox, api_conn)
    hook = ApiHook(conn_id, method="GET")
    for _ in range(CALLS):
        response = hook.run("/v1/orders", data={"limit": 1})
        assert isinstance(response, requests.Response) and response.status_code == 200
        assert response.json()["object"] == "list"
    assert _served(sb) == {"200": CALLS}  # no 429: the limiter paced every run()
    assert hook.stats()["requests"] == CALLS


def test_run_and_check_is_paced_and_counted(sandbox, api_conn) -> None:
    sb, conn_id = _limited(sandbox, api_conn, auth={"type": "api_key", "query": "api_key"})
    hook = ApiHook(conn_id, method="GET")
    session = hook.get_conn()
    for _ in range(CALLS):
        prepared = session.prepare_request(
            requests.Request("GET", hook.url_from_endpoint("/v1/orders"), params={"limit": 1})
        )
        response = hook.run_and_check(session, prepared, {})
        assert response.status_code == 200
        assert response.url.count("api_key=") == 1  # the session's auth is not applied twice
    assert _served(sb) == {"200": CALLS}
    assert hook.stats()["requests"] == CALLS


def test_run_with_advanced_retry_goes_through_the_same_door(sandbox, api_conn) -> None:
    import tenacity

    sb, conn_id = _limited(sandbox, api_conn)
    hook = ApiHook(conn_id, method="GET")
    retry_args = {"stop": tenacity.stop_after_attempt(2), "reraise": True}
    for _ in range(CALLS):
        assert hook.run_with_advanced_retry(retry_args, "/v1/orders", {"limit": 1}).status_code == 200
    assert _served(sb) == {"200": CALLS}
    assert hook.stats()["requests"] == CALLS


def test_run_maps_data_headers_and_json_like_the_provider(sandbox, api_conn) -> None:
    sb = sandbox(records=5)
    conn_id = api_conn(sb, idempotent_post_paths=["/crm/v3/objects/contacts/batch/upsert"])
    get = ApiHook(conn_id, method="GET").run("/v1/orders", data={"limit": 2}, headers={"X-Trace": "t1"})
    assert get.request.headers["X-Trace"] == "t1" and "limit=2" in (get.url or "")
    assert len(get.json()["data"]) == 2
    contact = {"idProperty": "email", "id": "a@example.com", "properties": {"firstname": "A"}}
    post = ApiHook(conn_id, method="POST").run(
        "/crm/v3/objects/contacts/batch/upsert", json={"inputs": [contact]}
    )
    assert post.status_code == 200 and [c["properties"]["firstname"] for c in sb.crm_contacts()] == ["A"]


def test_check_response_false_returns_a_4xx_instead_of_raising(sandbox, api_conn) -> None:
    sb = sandbox(records=5)
    hook = ApiHook(api_conn(sb), method="GET")
    with pytest.raises(ApiClientError, match="HTTP 404"):
        hook.run("/v1/unknown")
    response = hook.run("/v1/unknown", extra_options={"check_response": False})
    assert response.status_code == 404
    unauthorized = ApiHook(api_conn(sb, password="wrong-key"), method="GET")
    with pytest.raises(ApiAuthError):
        unauthorized.run("/v1/orders")
    assert unauthorized.run("/v1/orders", extra_options={"check_response": False}).status_code == 401
    assert hook.stats()["requests"] == 2 and hook.stats()["errors"] == 1


def test_options_the_door_does_not_take_per_call_are_refused_by_name(sandbox, api_conn) -> None:
    sb = sandbox(records=5)
    hook = ApiHook(api_conn(sb), method="GET")
    with pytest.raises(ApiConfigError, match=r"'timeout'.*connection extra 'timeout'"):
        hook.run("/v1/orders", extra_options={"timeout": 5})
    with pytest.raises(ApiConfigError, match=r"'stream'"):
        hook.run("/v1/orders", extra_options={"stream": True})
    with pytest.raises(ApiConfigError, match=r"'files'.*hook\.request"):
        hook.run("/v1/orders", files={"f": b"x"})
    with pytest.raises(ApiConfigError, match=r"run_and_check\(\).*hook\.get_conn\(\)"):
        hook.run_and_check(requests.Session(), requests.Request("GET", sb.url).prepare(), {})
    # What the door does anyway is accepted: following redirects, reading the body whole.
    accepted = {"allow_redirects": True, "stream": False, "check_response": True}
    assert hook.run("/v1/orders", extra_options=accepted).status_code == 200
    assert sb.stats()["requests"] == 1  # the refused calls sent nothing
    json.dumps(hook.stats())


# -- the provider's operator and sensor, on ApiHook -----------------------------------------------
def _next_order_page(response: requests.Response) -> dict[str, Any] | None:
    """HttpOperator's pagination_function for the Stripe dialect: one order per page."""
    body = response.json()
    if not body["has_more"]:
        return None
    return {"data": {"limit": 1, "starting_after": body["data"][-1]["id"]}}


class RecordsStats:
    """Writes the task's hook stats where the test reads them (dag.test() keeps only the XCom)."""

    stats_path: Path
    hook: ApiHook

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        finally:
            self.stats_path.write_text(json.dumps(self.hook.stats()))


class StatsRecordingOperator(RecordsStats, ApiHttpOperator):
    pass


class StatsRecordingSensor(RecordsStats, ApiHttpSensor):
    pass


POKES: list[int] = []


def _fifth_poke(response: requests.Response) -> bool:
    """Not there yet until the fifth poke."""
    assert response.status_code == 200
    POKES.append(len(response.json()["data"]))
    return len(POKES) >= CALLS


@pytest.mark.slow
def test_operator_pages_through_the_door_in_a_dag_run(sandbox, api_conn, tmp_path, airflow_db) -> None:
    import pendulum
    from airflow.sdk import DAG
    from airflow.utils.state import DagRunState

    sb, conn_id = _limited(sandbox, api_conn)
    StatsRecordingOperator.stats_path = tmp_path / "operator_stats.json"
    with DAG(dag_id=f"door_op_{conn_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        StatsRecordingOperator(
            task_id="orders",
            http_conn_id=conn_id,
            method="GET",
            endpoint="/v1/orders",
            data={"limit": 1},
            pagination_function=_next_order_page,
        )
    run = run_dag_test(dag, Path(__file__).parent)
    assert run.state == DagRunState.SUCCESS
    assert _served(sb) == {"200": CALLS}  # five pages, none refused
    assert json.loads(StatsRecordingOperator.stats_path.read_text())["requests"] == CALLS


@pytest.mark.slow
def test_sensor_pokes_are_paced_and_counted_in_a_dag_run(sandbox, api_conn, tmp_path, airflow_db) -> None:
    import pendulum
    from airflow.sdk import DAG
    from airflow.utils.state import DagRunState

    sb, conn_id = _limited(sandbox, api_conn)
    POKES.clear()
    StatsRecordingSensor.stats_path = tmp_path / "sensor_stats.json"
    with DAG(dag_id=f"door_sensor_{conn_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        StatsRecordingSensor(
            task_id="orders_ready",
            http_conn_id=conn_id,
            endpoint="/v1/orders",
            request_params={"limit": 1},
            response_check=_fifth_poke,
            poke_interval=0,  # poke as fast as the limiter lets it
            timeout=120,
        )
    run = run_dag_test(dag, Path(__file__).parent)
    assert run.state == DagRunState.SUCCESS
    assert POKES == [1] * CALLS
    assert _served(sb) == {"200": CALLS}
    assert json.loads(StatsRecordingSensor.stats_path.read_text())["requests"] == CALLS


def test_sensor_allowlisted_status_is_not_there_yet_and_others_raise(sandbox, api_conn) -> None:
    sb = sandbox(records=5)
    conn_id = api_conn(sb)
    missing = ApiHttpSensor(task_id="missing", http_conn_id=conn_id, endpoint="/v1/unknown")
    assert missing.poke(context={}) is False  # 404 is in the default allowlist
    strict = ApiHttpSensor(
        task_id="strict", http_conn_id=conn_id, endpoint="/v1/unknown", response_error_codes_allowlist=[]
    )
    with pytest.raises(ApiClientError, match="HTTP 404"):
        strict.poke(context={})
    assert missing.hook.stats()["requests"] == strict.hook.stats()["requests"] == 1


def test_paths_past_the_door_are_refused_by_name() -> None:
    with pytest.raises(ApiConfigError, match=r"ApiHttpOperator does not defer.*deferrable=False"):
        ApiHttpOperator(task_id="t", http_conn_id="c", endpoint="/x", deferrable=True)
    with pytest.raises(ApiConfigError, match=r"ApiHttpSensor does not defer.*mode=\"reschedule\""):
        ApiHttpSensor(task_id="t", http_conn_id="c", endpoint="/x", deferrable=True)
    with pytest.raises(ApiConfigError, match=r"connection extra 'auth'"):
        ApiHttpOperator(task_id="t", http_conn_id="c", endpoint="/x", auth_type=requests.auth.HTTPBasicAuth)
