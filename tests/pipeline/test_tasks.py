"""The Airflow side of a stream, without running a DAG: failure callbacks and the audit they write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG

from apisync.pipeline.retry_policy import DeterministicFailurePolicy
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


def test_slices_are_a_mapped_group_with_the_same_task_ids_and_no_retry_for_what_fails_again() -> None:
    from airflow.sdk import ExceptionRetryPolicy, RetryRule
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup
    from airflow.serialization.serialized_objects import DagSerialization

    inherited = ExceptionRetryPolicy(rules=[RetryRule(exception=ConnectionError)])
    with DAG(
        "test_apisync_slices",
        schedule=None,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        default_args={"on_failure_callback": [_alert], "retry_policy": inherited},
    ) as dag:
        sliced = sync_stream("customers", source_conn_id="accounts_api", partitions=4)
        whole = sync_stream("orders", source_conn_id="shop_api")
    assert isinstance(sliced, MappedTaskGroup) and not isinstance(whole, MappedTaskGroup)
    for stream, mapped in (("customers", True), ("orders", False)):
        for task_id in ("extract", "normalize", "validate", "load"):
            task = dag.get_task(f"sync_{stream}.{task_id}")
            assert (task.get_closest_mapped_task_group() is not None) is mapped, task.task_id
            assert (task.map_index_template is not None) is mapped, task.task_id
            assert isinstance(task.retry_policy, DeterministicFailurePolicy), task.task_id
            assert task.retry_policy.then is inherited, task.task_id
            assert task.on_failure_callback[0] is _alert, task.task_id
            assert isinstance(task.on_failure_callback[-1], AuditOnFailure), task.task_id
    # Slice i waits for slice i: each task's upstream is the one before it in its own group.
    assert dag.get_task("sync_customers.load").upstream_task_ids == {"sync_customers.validate"}
    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert set(restored.task_dict) == set(dag.task_dict)


def test_each_task_pushes_one_xcom_not_one_per_key() -> None:
    """A ``-> dict`` TaskFlow task infers multiple_outputs and pushes every key as its own XCom:
    one api-server round trip each, about 0.6 s of every small window's task (issue 14). The
    tasks and AuditOnFailure read only ``return_value``."""
    with DAG("test_apisync_xcoms", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
        sync_stream("orders", source_conn_id="shop_api")
        sync_stream("customers", source_conn_id="accounts_api", partitions=2)
    for stream in ("orders", "customers"):
        for task_id in ("extract", "normalize", "validate", "load"):
            assert dag.get_task(f"sync_{stream}.{task_id}").multiple_outputs is False, (stream, task_id)
