"""What the commands act on: which DAG syncs which stream, and Airflow's REST API.

The commands take a stream name (``orders``) and find its DAG here, with
:func:`apisync.pipeline.coverage.sync_targets` (the same discovery ``sync_coverage`` uses), so the
CLI, the coverage alert and the Syncs view agree on what a stream's schedule is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from apisync.coverage.check import StreamTarget
from apisync.errors import CoverageError, did_you_mean

if TYPE_CHECKING:
    from apisync.coverage.repair import AirflowApi

__all__ = ["UnknownStreamError", "connect_api", "pick_target", "sync_targets_of_dags_folder"]


class UnknownStreamError(ValueError):
    """A stream or DAG the DAGs folder does not sync: a usage error (exit code 2)."""


def sync_targets_of_dags_folder() -> list[StreamTarget]:
    """Every (sync DAG, stream) of ``[core] dags_folder``; DAG files that fail to import are named
    on stderr and skipped."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.configuration import conf

    from apisync.pipeline.coverage import sync_targets

    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    if bag.import_errors:
        from apisync.cli.output import print_error

        print_error(f"DAG files that failed to import are left out: {', '.join(sorted(bag.import_errors))}")
    return sync_targets(bag.dags.values())


def pick_target(targets: Sequence[StreamTarget], stream: str, dag_id: str | None = None) -> StreamTarget:
    """The one target of ``stream`` (on ``dag_id`` when given); a clear error naming the choices."""
    streams = sorted({t.stream for t in targets})
    matching = [t for t in targets if t.stream == stream]
    if not matching:
        hint = did_you_mean(stream, streams)
        raise UnknownStreamError(
            f"no sync DAG syncs stream {stream!r}{'; ' + hint if hint else ''}; "
            f"streams: {', '.join(streams) or 'none (is [core] dags_folder the project dags/?)'}"
        )
    if dag_id is not None:
        matching = [t for t in matching if t.dag_id == dag_id]
        if not matching:
            dags = ", ".join(t.dag_id for t in targets if t.stream == stream)
            raise UnknownStreamError(
                f"DAG {dag_id!r} does not sync stream {stream!r}; it is synced by: {dags}"
            )
    if len(matching) > 1:
        dags = ", ".join(t.dag_id for t in matching)
        raise UnknownStreamError(f"stream {stream!r} is synced by several DAGs ({dags}): pick one with --dag")
    return matching[0]


def connect_api(conn_id: str) -> AirflowApi:
    """The REST API client of connection ``conn_id``; a missing connection says what it must hold."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from apisync.coverage.repair import AirflowApi

    try:
        return AirflowApi.from_connection(conn_id)
    except AirflowNotFoundException:
        raise CoverageError(
            f"connection {conn_id!r} is not defined: the command calls Airflow's REST API through it "
            "(type http, host = the API's base URL such as http://127.0.0.1:8080, login/password of an "
            f"Airflow user; env var AIRFLOW_CONN_{conn_id.upper()} or the UI). `make cli` sets it for "
            "`make run`"
        ) from None
