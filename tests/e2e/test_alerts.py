"""A real sync DAG fails for good and the on-call engineer hears about it, by email and on Slack.

The orders DAG runs against the sandbox with a revoked API key: extract gets a 401, the task fails,
and the alert callbacks deliver to a real SMTP server (aiosmtpd) and a local HTTP receiver standing
in for Slack's webhook. Both messages carry what the engineer needs, and no secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scripts.localstack import run_dag_once
from tests.alerts.conftest import (  # real servers, shared with the alert unit tests
    SLACK_TOKEN,
    SMTP_PASSWORD,
    alert_connections,
    slack_receiver,
    smtp_server,
)

__all__ = ["alert_connections", "slack_receiver", "smtp_server"]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REVOKED_KEY = "sk_live_revoked_0123456789abcdef"


def test_failed_sync_alerts_by_email_and_slack_with_the_facts_and_no_secret(
    airflow_db: Path,
    sandbox: Callable[..., Any],
    alert_connections: tuple[Any, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smtp, slack = alert_connections
    box = sandbox(records=500)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SHOP_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": box.url,
                "password": REVOKED_KEY,
                "extra": {"auth": {"type": "bearer"}},
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "w.db")})
    )
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(Path(__file__).parents[2] / "dags" / "orders_to_warehouse.py")).dags[
        "orders_to_warehouse"
    ]
    for task in dag.tasks:  # fail for good at once instead of waiting out the real backoff
        task.retries = 0
    run = run_dag_once(dag, datetime(2026, 1, 3, 11, tzinfo=UTC))
    assert str(run.state) == "failed"

    assert len(smtp.messages) == 1, "exactly one email for one final failure"
    assert len(slack.posts) == 1, "exactly one Slack post for one final failure"
    email = smtp.messages[0]
    slack_text = json.dumps(slack.posts[0].json)
    for text in (email.subject + "\n" + email.body, slack_text):
        assert "orders_to_warehouse" in text
        assert "sync_orders.extract" in text
        assert run.run_id in text
        assert "2026-01-03T10:00:00" in text and "2026-01-03T11:00:00" in text  # the data interval
        assert "Try" in text and "1" in text
        assert "ApiAuthError" in text and "401" in text  # the error's first line
        assert "log" in text.lower() and "http" in text  # the log URL
        for secret in (REVOKED_KEY, SLACK_TOKEN, SMTP_PASSWORD):
            assert secret not in text
    assert slack.posts[0].path.endswith(SLACK_TOKEN.split("/")[-1])  # it really used the webhook
