"""``python -m apisync test-alert`` against a real SMTP server (aiosmtpd) and a real HTTP endpoint
standing in for Slack's webhook: per channel, delivered or why not, never a secret."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.alerts.conftest import (
    ALERT_RECIPIENT,
    SLACK_TOKEN,
    SMTP_PASSWORD,
    SMTP_USER,
    SlackReceiver,
    SmtpServer,
    _free_port,
    slack_connection,
    slack_receiver,
    smtp_connection,
    smtp_server,
)
from tests.cli.conftest import run_cli

__all__ = ["slack_receiver", "smtp_server"]


def _env(tmp_path: Path, *, slack: dict | None, smtp: dict | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env["AIRFLOW_HOME"] = str(tmp_path / "home")
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{tmp_path}/airflow.db"
    if slack is not None:
        env["AIRFLOW_CONN_SLACK_ALERTS"] = json.dumps(slack)
    if smtp is not None:
        env["AIRFLOW_CONN_SMTP_ALERTS"] = json.dumps(smtp)
    return env


def _row(output: str, channel: str) -> str:
    return next(line for line in output.splitlines() if line.strip().startswith(channel + " "))


def test_both_channels_deliver_the_test_message(
    tmp_path: Path, smtp_server: SmtpServer, slack_receiver: SlackReceiver
) -> None:
    result = run_cli(
        "test-alert",
        env=_env(tmp_path, slack=slack_connection(slack_receiver), smtp=smtp_connection(smtp_server.port)),
    )
    assert result.code == 0, result.output
    assert "delivered" in _row(result.stdout, "slack") and "delivered" in _row(result.stdout, "email")
    assert len(slack_receiver.posts) == 1
    assert slack_receiver.posts[0].path.endswith(SLACK_TOKEN)  # the webhook URL, as Slack's would be
    assert "apisync test alert" in slack_receiver.posts[0].json["text"]
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message.recipients == [ALERT_RECIPIENT]
    assert message.subject == "apisync test alert: this channel works"
    assert smtp_server.logins == [(SMTP_USER, SMTP_PASSWORD)]


def test_each_failing_channel_says_why_and_the_exit_code_is_1(
    tmp_path: Path, smtp_server: SmtpServer, slack_receiver: SlackReceiver
) -> None:
    """Slack's endpoint answers 500 and the SMTP login is wrong: both reported, no secret printed."""
    slack_receiver.status = 500
    wrong = "wr0ng-Pa55-s3cret-771"
    result = run_cli(
        "test-alert",
        env=_env(
            tmp_path, slack=slack_connection(slack_receiver), smtp=smtp_connection(smtp_server.port, wrong)
        ),
    )
    assert result.code == 1, result.output
    slack_row, email_row = _row(result.stdout, "slack"), _row(result.stdout, "email")
    assert "FAILED" in slack_row and "500" in slack_row, slack_row
    assert "FAILED" in email_row and "535" in email_row, email_row  # SMTP "authentication failed"
    assert len(slack_receiver.posts) == 1 and smtp_server.messages == []
    for secret in (SLACK_TOKEN, wrong, "wh00kS3cretT0ken"):
        assert secret not in result.output


def test_missing_and_refused_connections(tmp_path: Path, slack_receiver: SlackReceiver) -> None:
    """No Slack connection at all; the SMTP connection points at a port nobody listens on."""
    result = run_cli("test-alert", env=_env(tmp_path, slack=None, smtp=smtp_connection(_free_port())))
    assert result.code == 1, result.output
    assert "'slack_alerts' is not defined" in _row(result.stdout, "slack")
    email_row = _row(result.stdout, "email")
    assert "FAILED" in email_row and "refused" in email_row.lower(), email_row
    assert SMTP_PASSWORD not in result.output


def test_a_disabled_channel_is_not_tried(tmp_path: Path, smtp_server: SmtpServer) -> None:
    result = run_cli(
        "test-alert",
        "--slack-conn-id",
        "",
        env=_env(tmp_path, slack=None, smtp=smtp_connection(smtp_server.port)),
    )
    assert result.code == 0, result.output
    assert "slack" not in result.stdout and "delivered" in _row(result.stdout, "email")
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize("argv", [["test-alert", "--bogus"], ["replay"], []])
def test_usage_errors_exit_2(tmp_path: Path, argv: list[str]) -> None:
    result = run_cli(*argv, env=_env(tmp_path, slack=None, smtp=None))
    assert result.code == 2, result.output
    assert "usage: python -m apisync" in result.stderr
