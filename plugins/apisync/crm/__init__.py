"""CRM writes: push warehouse rows to a CRM batch-upsert endpoint, per a mapping file, losing nothing.

Owns, one concern per module:

- ``mapping``: the mapping file model (``include/crm/<name>.yaml``) and ``load_mapping``;
- ``state``: the ``crm_push_versions`` / ``crm_push_errors`` tables and their bookkeeping;
- ``reconcile``: a pure function matching a CRM reply (200 / 207 Multi-Status) to the inputs sent;
- ``lock``: one push per mapping at a time (PostgreSQL advisory lock, SQLite lock file);
- ``push``: the push loop composing them, ``push_changes``, returning a :class:`CrmPushResult`.

May import ``apisync.errors``, ``apisync.redaction``, ``apisync.spec``, ``apisync.staging`` and
``apisync.http``; never ``load``, ``quality``, ``transform`` or ``pipeline``. The run's
``sync_runs`` row is the pipeline's job (``apisync.pipeline.crm_push``). Names resolve lazily, so
importing the package at DAG parse time stays cheap (the function ``reconcile`` is reached as
``apisync.crm.reconcile.reconcile``: the package attribute is its module).
"""

from __future__ import annotations

from apisync.lazy_exports import lazy_exports

_EXPORTS = {
    "CrmMappingError": "apisync.errors",
    "CrmPushError": "apisync.errors",
    "CrmDestination": "apisync.crm.mapping",
    "CrmMapping": "apisync.crm.mapping",
    "CrmSource": "apisync.crm.mapping",
    "load_mapping": "apisync.crm.mapping",
    "CrmPushResult": "apisync.crm.push",
    "PushHook": "apisync.crm.push",
    "push_changes": "apisync.crm.push",
    "Reconciliation": "apisync.crm.reconcile",
    "crm_push_errors_table": "apisync.crm.state",
    "crm_push_versions_table": "apisync.crm.state",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
