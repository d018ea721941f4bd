"""The coverage task: find the sync DAGs and their streams in the DAGs folder, check each ledger.

A stream is synced by a DAG when the DAG has an :class:`~apisync.pipeline.extract.ExtractStreamOperator`
for it (mapped or not); its ``sync_runs`` live in the warehouse its audit callback writes to. The
grace before a window counts as missing is one interval (added by the ledger) plus the longest
deadline of the DAG. The check itself (:mod:`apisync.coverage`) knows nothing of DAG files.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import get_current_context, task

from apisync.coverage import DEFAULT_API_CONN_ID
from apisync.pipeline.extract import ExtractStreamOperator
from apisync.pipeline.tasks import AuditOnFailure
from apisync.spec import load_spec

if TYPE_CHECKING:
    from apisync.coverage.check import StreamTarget

__all__ = ["SyncStream", "check_coverage", "deadline_grace", "find_sync_streams", "sync_targets"]

log = logging.getLogger(__name__)


def _is_extract(task_or_mapped: Any) -> bool:
    if isinstance(task_or_mapped, ExtractStreamOperator):
        return True
    operator_class = getattr(task_or_mapped, "operator_class", None)  # a MappedOperator
    return isinstance(operator_class, type) and issubclass(operator_class, ExtractStreamOperator)


def _stream_of(extract: Any) -> str:
    stream = getattr(extract, "stream", None) or getattr(extract, "partial_kwargs", {}).get("stream")
    return str(stream)


def _warehouse_conn_id(extract: Any) -> str:
    callbacks = extract.on_failure_callback or []
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        if isinstance(callback, AuditOnFailure):
            return callback.warehouse_conn_id
    return "warehouse_default"


def deadline_grace(dag: Any) -> timedelta:
    """The longest deadline of the DAG (a run later than that has already alerted as late)."""
    deadlines = dag.deadline or []
    intervals = [
        getattr(d, "interval", None) for d in (deadlines if isinstance(deadlines, list) else [deadlines])
    ]
    return max((i for i in intervals if isinstance(i, timedelta)), default=timedelta(0))


def sync_targets(dags: Iterable[Any], *, dag_ids: Collection[str] = ()) -> list[StreamTarget]:
    """One target per (sync DAG, stream); only ``dag_ids`` when given."""
    from apisync.coverage.check import StreamTarget

    targets = []
    for dag in dags:
        if (dag_ids and dag.dag_id not in dag_ids) or dag.start_date is None:
            continue
        for extract in (t for t in dag.tasks if _is_extract(t)):
            stream = _stream_of(extract)
            coverage = load_spec(stream).coverage
            targets.append(
                StreamTarget(
                    dag_id=dag.dag_id,
                    stream=stream,
                    timetable=dag.timetable,
                    start=dag.start_date,
                    end=dag.end_date,
                    grace=deadline_grace(dag),
                    warehouse_conn_id=_warehouse_conn_id(extract),
                    repair=coverage.repair,
                    max_backfill_windows=coverage.max_backfill_windows,
                )
            )
    return sorted(targets, key=lambda t: (t.dag_id, t.stream))


@dataclass(frozen=True)
class SyncStream:
    """A stream target and the id of its extract task (what a link to the run's task log names)."""

    target: StreamTarget
    extract_task_id: str


def find_sync_streams(folder: str | None = None) -> tuple[list[SyncStream], dict[str, str]]:
    """Every (sync DAG, stream) of the DAGs folder (``[core] dags_folder`` by default), and the
    files that failed to import ({path: error}): what the Syncs view and ``status`` list."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.configuration import conf

    bag = DagBag(dag_folder=folder or conf.get("core", "dags_folder"))
    found = []
    for target in sync_targets(bag.dags.values()):
        dag = bag.dags[target.dag_id]
        task_ids = [t.task_id for t in dag.tasks if _is_extract(t) and _stream_of(t) == target.stream]
        found.append(SyncStream(target, task_ids[0]))
    return found, {str(path): str(error) for path, error in bag.import_errors.items()}


@task(task_id="check_coverage")
def check_coverage(api_conn_id: str = DEFAULT_API_CONN_ID) -> dict[str, str]:
    """Every sync stream's ledger (run param ``dag_ids`` narrows it), repairs, one alert; returns
    ``{dag_id.stream: summary}``."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.configuration import conf

    from apisync.coverage.check import assess_stream, send_coverage_alert
    from apisync.coverage.repair import AirflowApi
    from apisync.load import warehouse_from_connection

    context = get_current_context()
    dag_ids = (context.get("params") or {}).get("dag_ids") or []
    folder = conf.get("core", "dags_folder")
    bag = DagBag(dag_folder=folder)
    if bag.import_errors:
        log.warning(
            "coverage: DAG files that failed to import are not checked: %s", sorted(bag.import_errors)
        )
    targets = sync_targets(bag.dags.values(), dag_ids=dag_ids)
    api = AirflowApi.from_connection(api_conn_id)
    warehouses: dict[str, Any] = {}
    now = datetime.now(UTC)
    coverages = []
    for target in targets:
        if target.warehouse_conn_id not in warehouses:
            warehouses[target.warehouse_conn_id] = warehouse_from_connection(target.warehouse_conn_id)
        warehouse = warehouses[target.warehouse_conn_id]
        coverage = assess_stream(
            target, engine=warehouse.engine, now=now, api=api, db_schema=warehouse.db_schema
        )
        log.info("coverage of %s: %s", target.dag_id, coverage.describe())
        coverages.append(coverage)
    delivered = send_coverage_alert(coverages, context)
    if any(c.ledger.missing for c in coverages):
        log.warning("coverage alert delivered on: %s", delivered or "no channel")
    return {f"{c.target.dag_id}.{c.target.stream}": c.describe() for c in coverages}
