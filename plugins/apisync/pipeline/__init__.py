"""Compose a stream in a DAG: ``sync_stream("orders", source_conn_id=..., warehouse_conn_id=...)``;
a CRM push: ``push_mapping("contacts", crm_conn_id=..., warehouse_conn_id=...)``.

Owns the one sequence of a window (:mod:`~apisync.pipeline.steps`: normalize, validate, quarantine
gate, load with the quarantine in its transaction, accounting, audit row), the Airflow-free runner
(:mod:`~apisync.pipeline.runner`), the Airflow tasks and extract operator, where a window's staging
files live (:mod:`~apisync.pipeline.staging`) and the bookkeeping DDL. May import every package of
apisync; only DAG files import it (with :mod:`apisync.defaults`).

Importing this package is cheap (no pandas/GX/SQLAlchemy at import): the Airflow pieces load
``apisync.pipeline.tasks`` lazily, and ``run_window`` is the Airflow-free data path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Asset, TaskGroup, XComArg

__all__ = ["push_mapping", "run_window", "sync_stream", "warehouse_asset"]


def sync_stream(
    stream: str,
    *,
    source_conn_id: str,
    warehouse_conn_id: str = "warehouse_default",
    group_id: str | None = None,
    staging_url: str | None = None,
    warehouse_schema: str | None = None,
    partitions: int = 1,
    pool: str | None = None,
) -> TaskGroup:
    """Add extract -> normalize -> validate -> load for ``stream`` to the current DAG (a TaskGroup).

    ``partitions=N`` maps the tasks over N slices of each window (parallel pulls sharing the
    connection's rate budget); ``pool`` caps their concurrency.
    """
    from apisync.pipeline.tasks import sync_stream as build

    return build(
        stream,
        source_conn_id=source_conn_id,
        warehouse_conn_id=warehouse_conn_id,
        group_id=group_id,
        staging_url=staging_url,
        warehouse_schema=warehouse_schema,
        partitions=partitions,
        pool=pool,
    )


def run_window(*args: Any, **kwargs: Any) -> Any:
    """Airflow-free data path for one window; see :func:`apisync.pipeline.runner.run_window`."""
    from apisync.pipeline.runner import run_window as run

    return run(*args, **kwargs)


def push_mapping(
    mapping: str,
    *,
    crm_conn_id: str,
    warehouse_conn_id: str = "warehouse_default",
    stream: str | None = None,
    task_id: str | None = None,
) -> XComArg:
    """Add the CRM push of ``include/crm/<mapping>.yaml``; see :mod:`apisync.pipeline.crm_push`."""
    from apisync.pipeline.crm_push import push_mapping as build

    return build(
        mapping, crm_conn_id=crm_conn_id, warehouse_conn_id=warehouse_conn_id, stream=stream, task_id=task_id
    )


def warehouse_asset(table: str, db_schema: str | None = None) -> Asset:
    """The asset a stream's load task updates, e.g. ``warehouse://orders``: schedule on it."""
    from apisync.pipeline.tasks import warehouse_asset as asset

    return asset(table, db_schema)
