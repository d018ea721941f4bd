"""Compose a stream in a DAG: ``sync_stream("orders", source_conn_id=..., warehouse_conn_id=...)``;
a CRM push: ``push_mapping("contacts", crm_conn_id=..., warehouse_conn_id=...)``; the coverage
check of every sync DAG: ``check_coverage(api_conn_id="airflow_api")``.

Owns the one sequence of a window (:mod:`~apisync.pipeline.steps`: normalize, validate, quarantine
gate, load with the quarantine in its transaction, accounting, audit row), the Airflow-free runner
(:mod:`~apisync.pipeline.runner`), the Airflow tasks and extract operator, which of their failures
Airflow retries (:mod:`~apisync.pipeline.retry_policy`), where a window's staging files live
(:mod:`~apisync.pipeline.staging`) and the bookkeeping DDL. May import every package of
apisync; only DAG files import it (with :mod:`apisync.defaults`).

Importing this package is cheap (no pandas/GX/SQLAlchemy at import): each name loads its module
on first use, and the tasks import the data path only when they run. ``run_window`` is the
Airflow-free data path (tests, benchmarks).
"""

from __future__ import annotations

from apisync.lazy_exports import lazy_exports

_EXPORTS = {
    "check_coverage": "apisync.pipeline.coverage",
    "push_mapping": "apisync.pipeline.crm_push",
    "run_window": "apisync.pipeline.runner",
    "sync_stream": "apisync.pipeline.tasks",
    "warehouse_asset": "apisync.pipeline.tasks",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
