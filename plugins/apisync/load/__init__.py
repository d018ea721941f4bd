"""Warehouse loading (SQLAlchemy Core): cross-part dedupe, binary COPY, merge/append/replace_window.

Owns the warehouse connection, table creation and evolution, the load of a validated window in one
transaction, the ``sync_runs`` audit table (``RunRecord``, ``insert_run``, ``record_run``) and the
``apisync_columns`` table that keeps each table's source-key -> column mapping
(``read_column_maps``, ``column_map_writer``). It reads the parts through :mod:`apisync.staging`;
the quarantine rows, the column-mapping entries, the accounting check and the audit row are
callables the pipeline passes into :func:`load` to run in its transaction, so load never imports
quality. May import: staging, spec,
errors, redaction; never transform, quality or pipeline.

Names resolve lazily so that importing the pipeline at DAG parse time stays cheap.
"""

from __future__ import annotations

from apisync.lazy_exports import lazy_exports

_EXPORTS = {
    "column_map_writer": "apisync.load.column_map",
    "read_column_maps": "apisync.load.column_map",
    "RunRecord": "apisync.load.audit",
    "insert_run": "apisync.load.audit",
    "record_run": "apisync.load.audit",
    "sync_runs_table": "apisync.load.audit",
    "DEFAULT_WAREHOUSE_CONN_ID": "apisync.load.connection",
    "Warehouse": "apisync.load.connection",
    "warehouse_from_connection": "apisync.load.connection",
    "warehouse_url": "apisync.load.connection",
    "LoadError": "apisync.errors",
    "SchemaEvolutionError": "apisync.errors",
    "TooManyColumnsError": "apisync.errors",
    "WarehouseConfigError": "apisync.errors",
    "InTransaction": "apisync.load.warehouse",
    "LoadResult": "apisync.load.warehouse",
    "load": "apisync.load.warehouse",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
