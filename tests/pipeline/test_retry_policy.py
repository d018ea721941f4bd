"""Which failures Airflow retries: the errors the hook and the steps really raise, judged by the policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

from apisync.errors import ApiClientError, QuarantineThresholdError, SourceUnreachableError, SpecError
from apisync.http import ApiHook
from apisync.pipeline.retry_policy import DeterministicFailurePolicy
from apisync.quality import check_threshold
from apisync.spec import load_spec
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server


def _raised(action: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as caught:
        action()
    return caught.value


def _decision(error: BaseException, policy: DeterministicFailurePolicy | None = None) -> RetryAction:
    return (policy or DeterministicFailurePolicy()).evaluate(error, try_number=1, max_tries=3).action


def _answer_with(status: int) -> Callable[[Call, ScriptedServer], Reply]:
    return lambda call, server: Reply(b'{"message": "no"}', status=status)


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (400, RetryAction.FAIL),
        (403, RetryAction.FAIL),
        (404, RetryAction.FAIL),
        (422, RetryAction.FAIL),
        (401, RetryAction.DEFAULT),  # a secret may be rotated in the meantime
        (408, RetryAction.DEFAULT),
        (429, RetryAction.DEFAULT),
        (500, RetryAction.DEFAULT),
        (503, RetryAction.DEFAULT),
    ],
)
def test_http_failures_fail_at_once_unless_a_later_try_can_succeed(
    status: int, action: RetryAction, api_conn: Callable[..., str]
) -> None:
    with scripted_server(_answer_with(status)) as server:
        hook = ApiHook(http_conn_id=api_conn(server, auth={"type": "none"}, password=None, max_attempts=1))
        error = _raised(lambda: hook.request("GET", "/api/customers"))
    assert getattr(error, "status", None) == status, error
    assert _decision(error) is action, error


def test_a_breached_threshold_and_a_broken_spec_fail_at_once(tmp_path: Any) -> None:
    spec = load_spec("customers")
    breach = _raised(lambda: check_threshold(spec, quarantined=2, pulled=17))
    assert isinstance(breach, QuarantineThresholdError)
    missing = _raised(lambda: load_spec(tmp_path / "no_such_stream.yaml"))
    assert isinstance(missing, SpecError)
    assert _decision(breach) is _decision(missing) is RetryAction.FAIL


def test_a_refused_connection_fails_at_once_unless_an_inherited_policy_retries_it(
    api_conn: Callable[..., str],
) -> None:
    """Issue 11: 4 Airflow tries of a refused connection made 9 minutes before the alert."""
    with scripted_server(_answer_with(200)) as server:
        url = server.url
    closed = type("Closed", (), {"url": url})()  # the server is gone: its port refuses
    hook = ApiHook(http_conn_id=api_conn(closed, auth={"type": "none"}, password=None, max_attempts=1))
    refused = _raised(lambda: hook.request("GET", "/api/customers"))
    assert isinstance(refused, SourceUnreachableError) and refused.cause == "connection refused"
    decision = DeterministicFailurePolicy().evaluate(refused, try_number=1, max_tries=3)
    assert decision.action is RetryAction.FAIL  # before: DEFAULT, the task's 3 retries
    assert decision.reason and "unreachable (connection refused)" in decision.reason
    # A DAG that wants retries for a down source says so, and gets them.
    inherited = ExceptionRetryPolicy(rules=[RetryRule(exception=type(refused), action=RetryAction.RETRY)])
    assert _decision(refused, DeterministicFailurePolicy(then=inherited)) is RetryAction.RETRY
    unrelated = ExceptionRetryPolicy(rules=[RetryRule(exception=KeyError, action=RetryAction.RETRY)])
    assert _decision(refused, DeterministicFailurePolicy(then=unrelated)) is RetryAction.FAIL
    # The inherited policy cannot buy retries for an error that fails the same way every time.
    anything = ExceptionRetryPolicy(rules=[RetryRule(exception=Exception, action=RetryAction.RETRY)])
    not_found = ApiClientError("GET /x -> HTTP 404", method="GET", url="/x", status=404)
    assert _decision(not_found, DeterministicFailurePolicy(then=anything)) is RetryAction.FAIL
