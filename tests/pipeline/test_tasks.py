"""The Airflow side of a stream, without running a DAG: failure callbacks and the audit they write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG

from apisync.errors import QuarantineThresholdError
from apisync.pipeline.tasks import AuditOnFailure, sync_stream


def _alert(context: Any) -> None:
    """Stands in for the alert callbacks that sync_default_args() puts in default_args."""


def test_tasks_keep_the_dags_failure_callbacks_and_add_the_audit() -> None:
    with DAG(
        "test_apisync_callbacks",
        schedule=None,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        default_args={"on_failure_callback": [_alert]},
    ) as dag:
        sync_stream("orders", source_conn_id="shop_api", warehouse_conn_id="warehouse_test")
    for task_id in ("extract", "normalize", "validate", "load"):
        callbacks = dag.get_task(f"sync_orders.{task_id}").on_failure_callback
        assert callbacks[0] is _alert and isinstance(callbacks[-1], AuditOnFailure), task_id


def test_audit_on_failure_leaves_a_threshold_breach_to_the_validate_task() -> None:
    # The validate task writes that row itself; the callback must not look up any connection.
    audit = AuditOnFailure("orders", "no_such_connection")
    assert audit({"exception": QuarantineThresholdError("6 of 100 records quarantined")}) is None
