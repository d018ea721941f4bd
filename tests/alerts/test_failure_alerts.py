"""Failure alerts end to end: a real failing task run with dag.test(), real SMTP, a real HTTP receiver."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from apisync.alerts import (
    ALERT_EMAILS_VARIABLE,
    FailureAlert,
    alert_default_args,
    failure_callbacks,
)
from tests.alerts.conftest import (
    ALERT_RECIPIENT,
    SLACK_TOKEN,
    SMTP_PASSWORD,
    SMTP_USER,
    SlackReceiver,
    SmtpServer,
)

LOGICAL_DATE = datetime(2026, 1, 2, tzinfo=UTC)
LEAKED_SECRET = "sk_live_leaked4242abcd"


class DataQualityError(Exception):
    """Stands in for the data path's error: anything with ``failures`` in the documented shape."""

    def __init__(self, message: str, failures: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.failures = failures


def run_failing_dag(
    error_factory: Callable[[], BaseException], **alert_options: Any
) -> tuple[Any, list[Mapping[str, Any]]]:
    """Run a one-task DAG whose task raises; return the DagRun and the contexts the callbacks saw."""
    from airflow.sdk import DAG, CronDataIntervalTimetable, task

    seen: list[Mapping[str, Any]] = []

    def record_context(context: Mapping[str, Any]) -> None:
        seen.append(context)

    with DAG(
        dag_id=f"alerts_test_{uuid.uuid4().hex[:8]}",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        default_args=alert_default_args(
            {"retries": 0, "on_failure_callback": [record_context]}, **alert_options
        ),
    ) as dag:

        @task(task_id="extract_orders")
        def extract_orders() -> None:
            raise error_factory()

        extract_orders()

    dag_run = run_dag_test(dag)
    return dag_run, seen


def run_dag_test(dag: Any) -> Any:
    """dag.test() for a DAG built in a test: Airflow 3.3 only runs DAGs already serialized in the DB."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(Path(__file__).parent), collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(logical_date=LOGICAL_DATE)


def assert_no_secrets(*texts: str | bytes) -> None:
    for text in texts:
        blob = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        for secret in (SLACK_TOKEN, SMTP_PASSWORD, LEAKED_SECRET, "wh00kS3cretT0ken"):
            assert secret not in blob, f"secret {secret[:6]}... leaked into an alert"


def test_final_failure_sends_slack_and_email_with_run_details(
    airflow_db, alert_connections: tuple[SmtpServer, SlackReceiver]
) -> None:
    smtp, slack = alert_connections

    def boom() -> BaseException:
        from airflow.sdk.log import mask_secret

        mask_secret(LEAKED_SECRET)  # as a hook does with a credential it fetched
        return RuntimeError(f"orders API refused key {LEAKED_SECRET} (HTTP 403)\nTraceback-ish second line")

    dag_run, seen = run_failing_dag(boom)

    assert dag_run.state == "failed"
    assert len(seen) == 1, "on_failure_callback must run exactly once (retries=0)"
    ti = seen[0]["ti"]
    expected = [
        dag_run.dag_id,
        "extract_orders",
        dag_run.run_id,
        dag_run.data_interval_start.isoformat(),
        dag_run.data_interval_end.isoformat(),
        "RuntimeError: orders API refused key ***",
        ti.log_url,
    ]

    assert len(slack.posts) == 1
    post = slack.posts[0]
    assert post.path == "/" + SLACK_TOKEN  # webhook URL built from host + token, as in production
    slack_text = post.json["text"]
    for value in expected:
        assert value in slack_text, f"{value!r} missing from Slack text:\n{slack_text}"
    assert "*Try:* 1" in slack_text
    assert "Traceback-ish second line" not in slack_text

    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail.recipients == [ALERT_RECIPIENT]
    assert mail.sender == "airflow-alerts@example.test"
    assert smtp.logins == [(SMTP_USER, SMTP_PASSWORD)]  # the password reached the server, not the text
    assert dag_run.dag_id in mail.subject and "extract_orders" in mail.subject
    for value in expected:
        assert value in mail.body, f"{value!r} missing from email:\n{mail.body}"
    assert "<th align='left'>Try</th><td>1</td>" in mail.body
    assert "Traceback-ish second line" not in mail.body

    assert_no_secrets(post.body, mail.raw, mail.body, slack_text)


def test_data_quality_failure_lists_failing_expectations(
    airflow_db, alert_connections: tuple[SmtpServer, SlackReceiver]
) -> None:
    smtp, slack = alert_connections
    failures = [
        {"expectation": "expect_column_values_to_not_be_null", "column": "email", "unexpected_count": 12},
        {"expectation": "expect_column_values_to_match_regex", "column": "email", "unexpected_count": 3},
        {"expectation": "expect_table_row_count_to_be_between", "column": None, "unexpected_count": None},
    ]

    def quality_error() -> BaseException:
        # Wrapped, as a task might re-raise it: the cause chain is searched for ``failures``.
        return _chained(DataQualityError("3 expectations failed for stream customers", failures))

    dag_run, _ = run_failing_dag(quality_error)

    assert dag_run.state == "failed"
    slack_text = slack.posts[0].json["text"]
    mail_body = smtp.messages[0].body
    for text in (slack_text, mail_body):
        assert "Failing expectations:" in text
        assert "expect_column_values_to_not_be_null on column email: 12 unexpected" in text
        assert "expect_column_values_to_match_regex on column email: 3 unexpected" in text
        assert "expect_table_row_count_to_be_between" in text


def _chained(cause: BaseException) -> BaseException:
    error = RuntimeError("validate_customers failed")
    error.__cause__ = cause
    return error


def test_retries_alert_once_on_the_final_failure_only(
    airflow_db, alert_connections: tuple[SmtpServer, SlackReceiver]
) -> None:
    from airflow.sdk import DAG, CronDataIntervalTimetable, task

    smtp, slack = alert_connections
    attempts: list[int] = []
    with DAG(
        dag_id=f"alerts_retry_{uuid.uuid4().hex[:8]}",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        default_args=alert_default_args({"retries": 1, "retry_delay": timedelta(0)}),
    ) as dag:

        @task(task_id="load_orders")
        def load_orders() -> None:
            attempts.append(1)
            # Jinja-looking text and an unregistered credential in the error must go out inert and masked.
            raise ValueError("warehouse said {{ 7 * 7 }} with password=hunter2hunter2")

        load_orders()

    dag_run = run_dag_test(dag)

    assert dag_run.state == "failed"
    assert len(attempts) == 2, "the task should have been retried once"
    assert len(slack.posts) == 1 and len(smtp.messages) == 1, "one alert, for the final failure only"
    slack_text = slack.posts[0].json["text"]
    assert "*Try:* 2" in slack_text
    assert "warehouse said {{ 7 * 7 }}" in slack_text and "warehouse said 49" not in slack_text
    assert "password=***" in slack_text
    assert "hunter2hunter2" not in slack_text and "hunter2hunter2" not in smtp.messages[0].body


def test_missing_connections_warn_and_never_raise(
    airflow_db, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_ALERTS", raising=False)

    with caplog.at_level(logging.WARNING, logger="apisync.alerts"):
        dag_run, seen = run_failing_dag(lambda: RuntimeError("source down"))

    assert dag_run.state == "failed"  # the run finished normally: the alert did not crash anything
    assert len(seen) == 1
    in_run = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("slack connection 'slack_alerts' is not defined" in m for m in in_run), in_run
    assert any("email connection 'smtp_alerts' is not defined" in m for m in in_run), in_run

    # The same real context again, called directly: nothing raised, nothing delivered.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="apisync.alerts"):
        assert FailureAlert()(seen[0]) is None
        assert FailureAlert().send(seen[0]) == {}
    assert len([r for r in caplog.records if "is not defined" in r.getMessage()]) == 4


def test_one_channel_down_still_delivers_the_other(
    airflow_db, alert_connections: tuple[SmtpServer, SlackReceiver], caplog: pytest.LogCaptureFixture
) -> None:
    smtp, slack = alert_connections
    _, seen = run_failing_dag(lambda: RuntimeError("first run"))
    smtp.messages.clear()
    slack.posts.clear()
    slack.status = 500

    with caplog.at_level(logging.WARNING, logger="apisync.alerts"):
        delivered = FailureAlert().send(seen[0])

    assert delivered == {"slack": False, "email": True}
    assert len(slack.posts) == 1  # it was tried, and refused
    assert len(smtp.messages) == 1
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "sending the slack alert via connection 'slack_alerts' failed" in messages
    assert SLACK_TOKEN not in messages


def test_recipients_come_from_the_variable_before_the_connection_extra(
    airflow_db, alert_connections: tuple[SmtpServer, SlackReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp, _ = alert_connections
    monkeypatch.setenv(
        f"AIRFLOW_VAR_{ALERT_EMAILS_VARIABLE.upper()}", '["data-team@example.test", "lead@example.test"]'
    )

    run_failing_dag(lambda: RuntimeError("nightly sync broke"))

    assert [m.recipients for m in smtp.messages] == [["data-team@example.test", "lead@example.test"]]


def test_explicit_recipients_and_disabled_channel(
    airflow_db, alert_connections: tuple[SmtpServer, SlackReceiver]
) -> None:
    smtp, slack = alert_connections

    run_failing_dag(lambda: RuntimeError("boom"), slack_conn_id=None, to=["owner@example.test"])

    assert slack.posts == []
    assert [m.recipients for m in smtp.messages] == [["owner@example.test"]]


def test_failure_callbacks_is_a_list_for_default_args() -> None:
    callbacks = failure_callbacks(smtp_conn_id="ops_smtp")
    assert isinstance(callbacks, list) and len(callbacks) == 1
    assert callbacks[0] == FailureAlert(slack_conn_id="slack_alerts", smtp_conn_id="ops_smtp")

    def existing(context: Mapping[str, Any]) -> None:
        return None

    args = alert_default_args({"retries": 3, "on_failure_callback": existing})
    assert args["retries"] == 3
    assert args["on_failure_callback"][0] is existing
    assert isinstance(args["on_failure_callback"][1], FailureAlert)


def test_unreadable_or_incomplete_connection_costs_only_its_channel(
    airflow_db,
    alert_connections: tuple[SmtpServer, SlackReceiver],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp, slack = alert_connections
    # Airflow's env backend treats unparsable JSON as "no such connection".
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", '{"conn_type": "slackwebhook", "password": ')

    with caplog.at_level(logging.WARNING, logger="apisync.alerts"):
        dag_run, seen = run_failing_dag(lambda: RuntimeError("boom"))

    assert dag_run.state == "failed"
    assert slack.posts == []
    assert len(smtp.messages) == 1
    in_run = [r.getMessage() for r in caplog.records if r.name == "apisync.alerts"]
    assert any("slack connection 'slack_alerts' is not defined" in m for m in in_run), in_run

    # A connection that loads but cannot work (no webhook token) fails at send time: same outcome.
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", f'{{"conn_type": "slackwebhook", "host": "{slack.url}"}}')
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="apisync.alerts"):
        delivered = FailureAlert().send(seen[0])

    assert delivered == {"slack": False, "email": True}
    assert slack.posts == []
    assert any(
        "sending the slack alert via connection 'slack_alerts' failed" in r.getMessage()
        for r in caplog.records
    )


def test_no_recipients_anywhere_skips_email_with_a_warning(
    airflow_db,
    alert_connections: tuple[SmtpServer, SlackReceiver],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp, slack = alert_connections
    smtp_conn = json.loads(os.environ["AIRFLOW_CONN_SMTP_ALERTS"])
    del smtp_conn["extra"]["to"]
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps(smtp_conn))

    with caplog.at_level(logging.WARNING, logger="apisync.alerts"):
        dag_run, _ = run_failing_dag(lambda: RuntimeError("boom"))

    assert dag_run.state == "failed"
    assert len(slack.posts) == 1
    assert smtp.messages == []
    assert any("no email recipients" in r.getMessage() for r in caplog.records)
