"""The Syncs view's one setting: which warehouse connection to read ``sync_runs`` from.

``[apisync] warehouse_conn_id`` in airflow.cfg, or ``AIRFLOW__APISYNC__WAREHOUSE_CONN_ID``, default
``warehouse_default`` (the connection the project's DAGs write to). A stream whose DAG writes to
another warehouse (its ``warehouse_conn_id``) is read from that one; this setting is where the
view looks for streams no DAG in the folder syncs any more.
"""

from __future__ import annotations

from apisync.load.connection import DEFAULT_WAREHOUSE_CONN_ID

__all__ = ["SECTION", "warehouse_conn_id"]

SECTION = "apisync"


def warehouse_conn_id() -> str:
    from airflow.configuration import conf

    value = conf.get(SECTION, "warehouse_conn_id", fallback=DEFAULT_WAREHOUSE_CONN_ID)
    return value.strip() or DEFAULT_WAREHOUSE_CONN_ID
