"""The coverage alert on real transports (SMTP server, Slack receiver) and the discovery of streams."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from apisync.load import RunRecord, record_run
from tests.alerts.conftest import SLACK_TOKEN, SMTP_PASSWORD, alert_connections, slack_receiver, smtp_server

__all__ = ["alert_connections", "slack_receiver", "smtp_server"]

REPO_ROOT = Path(__file__).resolve().parents[2]
HOUR = timedelta(hours=1)
DAY6 = datetime(2026, 1, 6, tzinfo=UTC)


def _target(**overrides: object):
    from airflow.sdk import CronDataIntervalTimetable

    from apisync.coverage import StreamTarget

    values: dict[str, object] = {
        "dag_id": "orders_to_warehouse",
        "stream": "orders",
        "timetable": CronDataIntervalTimetable("@hourly", timezone="UTC"),
        "start": DAY6,
        "end": None,
        "grace": timedelta(0),
        "warehouse_conn_id": "warehouse_default",
    }
    return StreamTarget(**{**values, **overrides})  # type: ignore[arg-type]


def test_case1_the_gap_is_alerted_on_slack_and_by_email_naming_the_missing_range(
    alert_connections, tmp_path: Path
) -> None:
    from apisync.coverage import StreamCoverage, read_ledger, send_coverage_alert

    smtp, slack = alert_connections
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    for hour in (0, 1, 2, 44, 45, 46):
        record_run(
            engine,
            RunRecord("orders", DAY6 + hour * HOUR, DAY6 + (hour + 1) * HOUR, f"r{hour}", "success"),
        )
    target = _target()
    ledger = read_ledger(
        engine,
        "orders",
        timetable=target.timetable,
        start=DAY6,
        end=None,
        now=datetime(2026, 1, 8, tzinfo=UTC),
        grace=timedelta(0),
    )
    synced = _target(dag_id="issues_to_warehouse", stream="issues")
    quiet = read_ledger(
        engine,
        "issues",
        timetable=synced.timetable,
        start=DAY6,
        end=DAY6,
        now=DAY6 + HOUR,
        grace=timedelta(0),
    )

    delivered = send_coverage_alert(
        [StreamCoverage(target, ledger, paused=True), StreamCoverage(synced, quiet, paused=False)], {}
    )

    assert delivered == {"slack": True, "email": True}
    email = smtp.messages[0]
    slack_text = json.dumps(slack.posts[0].json, ensure_ascii=False)
    for text in (email.subject + "\n" + email.body, slack_text):
        assert "41 windows not synced in 1 stream" in text
        assert "orders: 41 windows never ran, 2026-01-06T03:00Z → 2026-01-07T20:00Z" in text
        assert "orders_to_warehouse" in text and "DAG is paused" in text
        assert "repair off" in text
        assert "issues" not in text  # a stream with nothing missing is not in the alert
        for secret in (SLACK_TOKEN, SMTP_PASSWORD):
            assert secret not in text


def test_nothing_missing_sends_nothing(alert_connections, tmp_path: Path) -> None:
    from apisync.coverage import StreamCoverage, read_ledger, send_coverage_alert

    smtp, slack = alert_connections
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    record_run(engine, RunRecord("orders", DAY6, DAY6 + HOUR, "r", "success"))
    target = _target(end=DAY6)
    ledger = read_ledger(
        engine, "orders", timetable=target.timetable, start=DAY6, end=DAY6, now=DAY6 + 3 * HOUR, grace=HOUR
    )
    assert ledger.summary() == "orders: 1/1 windows synced"
    assert send_coverage_alert([StreamCoverage(target, ledger, paused=False)], {}) == {}
    assert smtp.messages == [] and slack.posts == []


def test_sync_targets_are_the_extract_tasks_of_the_dags_folder_with_the_specs_repair_switch() -> None:
    from airflow.dag_processing.dagbag import DagBag

    from apisync.pipeline.coverage import sync_targets

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    targets = {t.dag_id: t for t in sync_targets(bag.dags.values())}
    assert set(targets) == {
        "customers_to_warehouse",
        "issues_to_warehouse",
        "orders_to_warehouse",
        "products_to_warehouse",
    }
    orders = targets["orders_to_warehouse"]
    assert (orders.stream, orders.repair) == ("orders", "backfill")
    assert orders.warehouse_conn_id == "warehouse_default"
    assert orders.grace == timedelta(minutes=45)  # the DAG's deadline
    customers = targets["customers_to_warehouse"]  # mapped extract: the stream is a partial kwarg
    assert (customers.stream, customers.repair) == ("customers", "none")
    assert [t.dag_id for t in sync_targets(bag.dags.values(), dag_ids=["issues_to_warehouse"])] == [
        "issues_to_warehouse"
    ]


def test_spec_coverage_switch_is_validated(tmp_path: Path) -> None:
    import pytest

    from apisync.spec import SpecError, load_spec

    text = (REPO_ROOT / "include" / "streams" / "orders.yaml").read_text()
    bad = tmp_path / "orders.yaml"
    bad.write_text(text.replace("repair: backfill", "repair: rerun"))
    with pytest.raises(SpecError, match=r"orders.yaml: field 'coverage.repair'"):
        load_spec(bad)
    assert load_spec("customers").coverage.repair == "none"
