"""Deadline alerts: the DeadlineAlert a DAG carries, and its callback run the way the triggerer runs it.

The end-to-end test goes through Airflow's own pieces: the DAG is serialized with its deadline, the
run creates a Deadline row, the scheduler's ``Deadline.handle_miss`` queues the callback as a Trigger
row, and that row is inflated and run exactly as the triggerer does (decrypt kwargs, decode,
``CallbackTrigger.run()``). Only the scheduler/triggerer loops themselves are not started.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apisync.alerts import notify_deadline_missed, sync_deadline
from tests.alerts.conftest import ALERT_RECIPIENT, SLACK_TOKEN, SMTP_PASSWORD, SlackReceiver, SmtpServer
from tests.alerts.test_failure_alerts import run_dag_test


def test_sync_deadline_is_an_async_callback_on_queued_time() -> None:
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    deadline = sync_deadline(90, smtp_conn_id="ops_smtp", to=["a@example.test"])

    assert isinstance(deadline, DeadlineAlert)
    assert deadline.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert deadline.interval == timedelta(minutes=90)
    assert isinstance(deadline.callback, AsyncCallback)
    assert deadline.callback.path == "apisync.alerts.notify_deadline_missed"
    assert deadline.callback.kwargs == {
        "slack_conn_id": "slack_alerts",
        "smtp_conn_id": "ops_smtp",
        "to": ["a@example.test"],
    }
    assert inspect.iscoroutinefunction(notify_deadline_missed)
    with pytest.raises(ValueError, match="positive number of minutes"):
        sync_deadline(0)


def test_deadline_survives_dag_serialization() -> None:
    from airflow.sdk import DAG
    from airflow.serialization.decoders import decode_deadline_alert
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG(dag_id="alerts_deadline_serialized", schedule=None, deadline=sync_deadline(45)) as dag:
        pass

    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))

    [encoded] = restored.deadline  # the scheduler-side DAG keeps it encoded, decoding on use
    alert = decode_deadline_alert(encoded)
    assert alert.callback.path == "apisync.alerts.notify_deadline_missed"
    assert alert.callback.kwargs == {"slack_conn_id": "slack_alerts", "smtp_conn_id": "smtp_alerts"}
    assert alert.interval == timedelta(minutes=45)


def _miss_deadlines_and_run_triggers(dag_run_id: int) -> list[dict[str, Any]]:
    """What the scheduler and then the triggerer do with this run's expired deadlines."""
    from airflow._shared.module_loading import import_string
    from airflow.models.deadline import Deadline
    from airflow.models.trigger import Trigger
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        deadlines = session.scalars(select(Deadline).where(Deadline.dagrun_id == dag_run_id)).all()
        assert deadlines, "the run should have a Deadline row from sync_deadline"
        assert all(d.deadline_time < datetime.now(UTC) and not d.missed for d in deadlines)
        for deadline in deadlines:
            deadline.handle_miss(session)  # scheduler: queue the callback as a trigger
        session.flush()
        rows = [(t.classpath, t.encrypted_kwargs) for d in deadlines if (t := d.callback.trigger)]

    events: list[dict[str, Any]] = []

    async def run_triggers() -> None:
        for classpath, encrypted in rows:
            raw = Trigger._decrypt_kwargs(encrypted)
            trigger = import_string(classpath)(**{k: smart_decode_trigger_kwargs(v) for k, v in raw.items()})
            events.extend([event.payload async for event in trigger.run()])

    asyncio.run(run_triggers())
    return events


def test_missed_deadline_alerts_slack_and_email_through_the_triggerer(
    airflow_db, alert_connections: tuple[SmtpServer, SlackReceiver]
) -> None:
    from airflow.sdk import DAG, CronDataIntervalTimetable, DeadlineReference, task

    smtp, slack = alert_connections
    with DAG(
        dag_id=f"alerts_deadline_{uuid.uuid4().hex[:8]}",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        default_args={"retries": 0},
        # Logical date 2026-01-02 + 1 minute: already in the past, so the deadline is missed at once.
        # (A run that succeeds prunes its deadlines, hence the failing task.)
        deadline=sync_deadline(1, reference=DeadlineReference.DAGRUN_LOGICAL_DATE),
    ) as dag:

        @task(task_id="extract_orders")
        def extract_orders() -> None:
            raise RuntimeError("still running, for the sake of the test")

        extract_orders()

    dag_run = run_dag_test(dag)
    assert dag_run.state == "failed"
    assert slack.posts == [] and smtp.messages == []  # no failure alert configured on this DAG

    events = _miss_deadlines_and_run_triggers(dag_run.id)

    assert [e["state"] for e in events] == ["running", "success"], events
    assert events[-1]["body"] == {"slack": True, "email": True}
    assert len(slack.posts) == 1 and len(smtp.messages) == 1
    slack_text = slack.posts[0].json["text"]
    mail = smtp.messages[0]
    assert mail.recipients == [ALERT_RECIPIENT]
    for text in (slack_text, mail.body):
        assert dag_run.dag_id in text
        assert dag_run.run_id in text
        assert "deadline missed" in text
        assert "2026-01-02" in text  # the deadline time / interval
    assert f"/dags/{dag_run.dag_id}/runs/" in slack_text  # a link to the late run
    for blob in (slack.posts[0].body.decode(), mail.raw.decode(errors="replace")):
        assert SLACK_TOKEN not in blob and SMTP_PASSWORD not in blob


def test_deadline_callback_without_connections_warns(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_ALERTS", raising=False)
    context = {"dag_run": {"dag_id": "orders_sync", "dag_run_id": "scheduled__x"}, "deadline": {}}

    with caplog.at_level(logging.WARNING, logger="apisync.alerts"):
        delivered = asyncio.run(notify_deadline_missed(context))

    assert delivered == {}
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("slack connection 'slack_alerts' is not defined" in m for m in messages), messages
    assert any("email connection 'smtp_alerts' is not defined" in m for m in messages), messages
