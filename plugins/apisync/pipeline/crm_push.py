"""Compose a CRM push in a DAG: ``push_mapping("contacts", crm_conn_id=..., warehouse_conn_id=...)``.

The push itself is :func:`apisync.crm.push.push_changes`; this module adds what makes it a run:
the Airflow task, and the run's ``sync_runs`` row (success or failure, written in one place,
:func:`run_push`). Heavy imports (SQLAlchemy, the hook) happen inside the task, never when the DAG
file is parsed; the mapping file is checked at parse time (YAML + pydantic, no database).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import XComArg, get_current_context, task

from apisync.crm.mapping import CrmMapping, load_mapping

if TYPE_CHECKING:
    import sqlalchemy as sa

    from apisync.crm.push import CrmPushResult, PushHook

__all__ = ["audit_stream", "push_mapping", "run_push"]

log = logging.getLogger(__name__)


def audit_stream(mapping: str) -> str:
    """The ``stream`` of a mapping's ``sync_runs`` rows by default: ``<mapping>_to_crm``, its DAG's id."""
    return f"{mapping}_to_crm"


def run_push(
    mapping: CrmMapping,
    engine: sa.Engine,
    hook: PushHook,
    run_id: str,
    *,
    db_schema: str | None = None,
    stream: str | None = None,
) -> CrmPushResult:
    """Push ``mapping`` and append the run's ``sync_runs`` row; a failed push's row too, then re-raise.

    The Airflow task calls this; tests call it directly. ``stream`` names the row (default
    :func:`audit_stream`); its interval is the change-column range of the rows selected (else the
    start of the run).
    """
    from apisync.crm.push import CrmPushResult, push_changes
    from apisync.pipeline.api_cost import api_cost

    started_at = datetime.now(UTC)
    result = CrmPushResult(mapping=mapping.name, run_id=run_id)
    audit = _RunAudit(mapping, engine, db_schema, stream or audit_stream(mapping.name), started_at)
    try:
        push_changes(engine, hook, mapping, run_id, db_schema=db_schema, result=result)
    except Exception as exc:
        try:
            audit.record(result, "failed", error=f"{type(exc).__name__}: {exc}", api=api_cost(hook.stats()))
        except Exception:
            log.exception("could not write the failed run's sync_runs row")
        raise
    audit.record(result, "success", api=api_cost(hook.stats()))
    return result


class _RunAudit:
    """The push run's ``sync_runs`` row: CRM counts in the columns the warehouse syncs use."""

    def __init__(
        self, mapping: CrmMapping, engine: sa.Engine, db_schema: str | None, stream: str, started_at: datetime
    ) -> None:
        self.mapping, self.engine, self.db_schema = mapping, engine, db_schema
        self.stream, self.started_at = stream, started_at

    def record(
        self,
        result: CrmPushResult,
        status: str,
        *,
        error: str | None = None,
        api: dict[str, Any] | None = None,
    ) -> None:
        """``api``: the hook's :func:`~apisync.pipeline.api_cost.api_cost` (latency, statuses, bytes);
        calls, 429s and seconds throttled are the push's own (the hook may have served more)."""
        from apisync.load import RunRecord, record_run

        inserted_updated = result.inserted + result.updated
        record = RunRecord(
            stream=self.stream,
            interval_start=result.changed_from or self.started_at,
            interval_end=result.changed_to or self.started_at,
            run_id=result.run_id,
            status=status,
            destination_table=f"crm:{self.mapping.destination.endpoint}",
            records_pulled=result.selected,
            records_quarantined=result.errored,
            records_inserted=result.inserted,
            records_updated=result.updated,
            records_unchanged=max(result.pushed_ok - inserted_updated, 0),
            **{
                **(api or {}),
                "api_calls": result.api_calls,
                "api_429s": result.api_429s,
                "throttled_seconds": result.throttled_seconds,
            },
            duration_seconds=result.duration_seconds,
            error=error,
        )
        record_run(self.engine, record, self.db_schema)


@task
def push_mapping_task(mapping: str, crm_conn_id: str, warehouse_conn_id: str, stream: str) -> dict[str, Any]:
    """Push one mapping through the CRM connection; the XCom is the push's accounting."""
    from apisync.http import ApiHook
    from apisync.load import warehouse_from_connection
    from apisync.pipeline.metrics import StreamMetrics

    context = get_current_context()
    warehouse = warehouse_from_connection(warehouse_conn_id)
    hook = ApiHook(http_conn_id=crm_conn_id)
    try:
        result = run_push(
            load_mapping(mapping),
            warehouse.engine,
            hook,
            context["run_id"],
            db_schema=warehouse.db_schema,
            stream=stream,
        )
    finally:
        StreamMetrics.of(context, stream).api(hook.stats())
    return result.as_dict()


def push_mapping(
    mapping: str,
    *,
    crm_conn_id: str,
    warehouse_conn_id: str = "warehouse_default",
    stream: str | None = None,
    task_id: str | None = None,
) -> XComArg:
    """Add the push of ``include/crm/<mapping>.yaml`` to the current DAG: one task, ``push_<mapping>``.

    The mapping is loaded here, so a broken file fails at DAG parse time with the file and field
    in the message. Every attempt appends a ``sync_runs`` row with stream ``stream`` (default
    ``<mapping>_to_crm``). A second mapping is a YAML file and a dozen lines of DAG::

        # include/crm/deals.yaml: name: deals, source: {table, key, changed_column},
        #                         destination: {endpoint, id_property, id_column}, properties
        # dags/deals_to_crm.py:
        '''### Deals → CRM (this docstring is the DAG's doc_md)'''

        from airflow.sdk import dag

        from apisync.defaults import START_DATE, sync_default_args
        from apisync.pipeline import push_mapping, warehouse_asset


        @dag(schedule=[warehouse_asset("deals")], start_date=START_DATE, catchup=False,
             max_active_runs=1, default_args=sync_default_args(),
             tags=["apisync", "sync", "crm", "deals"], doc_md=__doc__)
        def deals_to_crm() -> None:
            push_mapping("deals", crm_conn_id="crm_api")


        deals_to_crm()
    """
    load_mapping(mapping)
    push = push_mapping_task.override(task_id=task_id or f"push_{mapping}")
    return push(mapping, crm_conn_id, warehouse_conn_id, stream or audit_stream(mapping))
