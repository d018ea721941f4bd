"""Airflow tasks composing one stream: extract -> normalize -> validate -> load, in a TaskGroup.

Each task runs one step of :mod:`apisync.pipeline.steps` (the same steps ``run_window`` runs) and
passes counts and the run's staging directory on through XCom; the data stays in the extract
attempt's staging files, so a failed load retries without calling the API again. Heavy imports
(pandas, GX, SQLAlchemy) happen inside the tasks, never when the DAG file is parsed. Each task
pushes one XCom, its ``return_value``: a ``-> dict`` TaskFlow task would also push every key as
its own XCom (one api-server round trip each, ~0.6 s of a small window's task, issue 14), which
nothing reads.

A window split into slices is a mapped TaskGroup: slice *i*'s normalize, validate and load depend
on slice *i*'s tasks only, so one slice failing (its quality gate, its API, its load) leaves the
others to finish and load; the run still ends failed. A failure another try would meet again
fails at once (:mod:`apisync.pipeline.retry_policy`). Every slice's run ends with one
``sync_runs`` row however many tries it took: a success in the load's own transaction, a final
failure from :class:`AuditOnFailure`, which Airflow calls once a task has failed for good.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import Asset, TaskGroup, get_current_context, task, task_group

from apisync.errors import QuarantineThresholdError, WindowError
from apisync.pipeline.api_cost import API_COST_COLUMNS, EXTRACT_API_COST
from apisync.pipeline.extract import ExtractStreamOperator
from apisync.pipeline.retry_policy import DeterministicFailurePolicy
from apisync.pipeline.staging import (
    SLICE_LABEL_TEMPLATE,
    label_slice,
    resolve_window,
    upstream_paths,
    window_dir,
)
from apisync.pools import check_pool
from apisync.quality.suites import check_suite
from apisync.spec import load_spec
from apisync.staging.layout import RunPaths

__all__ = ["FAILED_RUN_COUNTS", "AuditOnFailure", "sync_stream", "warehouse_asset"]

# Under Airflow's task logger (as an operator's self.log is), so the lines reach the task log at INFO.
log = logging.getLogger(f"airflow.task.{__name__}")

# XCom key under which a task that knows counts of a run it fails (validate, over the threshold)
# leaves them for AuditOnFailure's row.
FAILED_RUN_COUNTS = "failed_run_counts"


_CARRIED = ("staging_dir", "partition", "partitions", *API_COST_COLUMNS, "repeated")


def _carry(upstream: dict[str, Any]) -> dict[str, Any]:
    """The run's staging directory, which slice of the window, the API cost and the records the
    paginator dropped as repeats: passed along so mapped tasks stay self-contained."""
    return {key: upstream[key] for key in _CARRIED if key in upstream}


def _arrived(staged: int | None, upstream: dict[str, Any]) -> int | None:
    """Records that arrived: those staged plus the repeats the paginator dropped."""
    return None if staged is None else staged + int(upstream.get("repeated", 0))


def _window(context: Any, upstream: dict[str, Any]) -> tuple[datetime, datetime]:
    window = resolve_window(context, upstream.get("partition", 0), upstream.get("partitions", 1))
    label_slice(context, window)
    return window


def _paths(
    stream: str, window: tuple[datetime, datetime], upstream: dict[str, Any], staging_url: str | None
) -> RunPaths:
    """This run's extract attempt (the window directory for an XCom of an older release)."""
    if "staging_dir" in upstream:
        return upstream_paths(upstream)
    return RunPaths(window_dir(stream, window, staging_url))


def _audit(
    warehouse: Any, stream: str, window: tuple[datetime, datetime], run_id: str, status: str, **counts: Any
) -> None:
    """One ``sync_runs`` row for this stream window; the callers pass only what they know."""
    from apisync.load import record_run
    from apisync.pipeline.steps import run_record

    record_run(
        warehouse.engine, run_record(load_spec(stream), window, run_id, status, **counts), warehouse.db_schema
    )


def warehouse_asset(table: str, db_schema: str | None = None) -> Asset:
    """The asset a stream's load task updates, e.g. ``warehouse://analytics.orders``."""
    name = f"{db_schema}.{table}" if db_schema else table
    return Asset(uri=f"warehouse://{name}", name=f"warehouse.{name}")


class AuditOnFailure:
    """on_failure_callback: record the failed run in ``sync_runs`` with the error and known counts.

    Airflow calls it once a task has failed for good (a retry calls ``on_retry_callback``), so a
    slice's failed run gets one row however many tries it took. A breached quarantine threshold
    is recorded as ``quarantine_threshold_exceeded``, with the counts the validate task left in
    its XCom (:data:`FAILED_RUN_COUNTS`) before it raised.
    """

    def __init__(self, stream: str, warehouse_conn_id: str, partitions: int = 1) -> None:
        self.stream = stream
        self.warehouse_conn_id = warehouse_conn_id
        self.partitions = partitions

    def __call__(self, context: Any) -> None:
        from apisync.load import warehouse_from_connection

        exception = context.get("exception")
        ti = context["ti"]
        group = ti.task_id.rsplit(".", 1)[0] + "." if "." in ti.task_id else ""
        map_index = getattr(ti, "map_index", -1)
        pull = {"map_indexes": map_index} if map_index is not None and map_index >= 0 else {}
        extracted = ti.xcom_pull(task_ids=f"{group}extract", **pull) or {}
        # A failed extract returned nothing: its API cost comes from what it left as it stopped.
        api = ti.xcom_pull(task_ids=f"{group}extract", key=EXTRACT_API_COST, **pull) or {}
        validated = ti.xcom_pull(task_ids=f"{group}validate", **pull) or {}
        partition = (map_index, self.partitions) if pull else (0, 1)
        try:
            window = resolve_window(context, *partition)
        except WindowError:
            window = (datetime.fromtimestamp(0, UTC), datetime.fromtimestamp(0, UTC))
        counts = {
            "records_pulled": _arrived(validated.get("pulled", extracted.get("records")), extracted),
            "records_repeated": extracted.get("repeated"),
            "records_quarantined": validated.get("quarantined"),
            "records_out_of_window": validated.get("out_of_window"),
            **{column: extracted.get(column, api.get(column)) for column in API_COST_COLUMNS},
        }
        status = "failed"
        if isinstance(exception, QuarantineThresholdError):  # with the counts only validate knows
            counts.update(ti.xcom_pull(task_ids=ti.task_id, key=FAILED_RUN_COUNTS, **pull) or {})
            status = "quarantine_threshold_exceeded"
        _audit(
            warehouse_from_connection(self.warehouse_conn_id),
            self.stream,
            window,
            context["run_id"],
            status,
            **counts,
            error=f"{ti.task_id}: {type(exception).__name__}: {exception}",
        )


@task(task_id="normalize", multiple_outputs=False)
def normalize_stream(
    stream: str,
    extracted: dict[str, Any],
    source_conn_id: str,
    staging_url: str | None = None,
    warehouse_conn_id: str | None = None,
) -> dict[str, Any]:
    """``warehouse_conn_id``: where the tables' stored column mappings are read from."""
    from apisync.pipeline.steps import known_columns, normalize_step

    context = get_current_context()
    spec = load_spec(stream)
    window = _window(context, extracted)
    paths = _paths(stream, window, extracted, staging_url)
    columns = None
    if warehouse_conn_id:
        from apisync.load import warehouse_from_connection

        warehouse = warehouse_from_connection(warehouse_conn_id)
        columns = known_columns(spec, warehouse.engine, warehouse.db_schema)
    result = normalize_step(
        spec,
        paths,
        window=window,
        run_id=context["run_id"],
        source=f"{source_conn_id}:{spec.source.endpoint}",
        columns=columns,
    )
    bulky = ("columns", "children", "column_map")  # in the manifest, not XCom
    summary = {key: value for key, value in result.as_dict().items() if key not in bulky}
    return {**summary, "parts": len(result.parts), **_carry(extracted)}


@task(task_id="validate", multiple_outputs=False)
def validate_stream(
    stream: str,
    normalized: dict[str, Any],
    warehouse_conn_id: str,
    staging_url: str | None = None,
) -> dict[str, Any]:
    from apisync.load import warehouse_from_connection
    from apisync.pipeline.metrics import StreamMetrics
    from apisync.pipeline.steps import quarantine_gate, validate_step, validation_line

    context = get_current_context()
    spec = load_spec(stream)
    window = _window(context, normalized)
    paths = _paths(stream, window, normalized, staging_url)
    result = validate_step(spec, paths)
    log.info("%s", validation_line(stream, window, result))
    StreamMetrics.of(context, stream).count("records_quarantined", result.quarantined)
    summary = {key: value for key, value in result.as_dict().items() if key not in ("columns", "children")}
    warehouse = warehouse_from_connection(warehouse_conn_id)
    try:
        quarantine_gate(spec, result, warehouse.engine, paths, window=window, db_schema=warehouse.db_schema)
    except QuarantineThresholdError:
        # The row is AuditOnFailure's, written once the task has failed for good: one per run.
        known = {
            "records_pulled": _arrived(result.pulled, normalized),
            "records_repeated": normalized.get("repeated"),
            "records_deduped": result.deduped,
            "records_quarantined": result.quarantined,
            "records_out_of_window": result.out_of_window,
            "gx_seconds": result.gx_seconds,
        }
        context["ti"].xcom_push(FAILED_RUN_COUNTS, known)
        raise
    return {
        **summary,
        "parts": len(result.parts),
        "quarantine_parts": len(result.quarantine_parts),
        **_carry(normalized),
    }


@task(task_id="load", multiple_outputs=False)
def load_stream(
    stream: str,
    validated: dict[str, Any],
    warehouse_conn_id: str,
    staging_url: str | None = None,
) -> dict[str, Any]:
    from apisync.load import RunRecord, warehouse_from_connection
    from apisync.pipeline.metrics import StreamMetrics
    from apisync.pipeline.steps import WindowLoad, load_line, load_step, run_record

    started = time.perf_counter()
    context = get_current_context()
    spec = load_spec(stream)
    window = _window(context, validated)
    paths = _paths(stream, window, validated, staging_url)
    warehouse = warehouse_from_connection(warehouse_conn_id)  # checks the connection's schema
    warehouse.ensure_schema(spec.destination.db_schema)

    def success(window_load: WindowLoad) -> RunRecord:
        """The run's sync_runs row, written in the load's transaction."""
        return run_record(
            spec,
            window,
            context["run_id"],
            "success",
            destination_table=window_load.loaded.table,
            records_quarantined=validated["quarantined"],
            records_out_of_window=validated.get("out_of_window", 0),
            **window_load.counts(),
            **{column: validated.get(column) for column in API_COST_COLUMNS},
            gx_seconds=validated.get("gx_seconds"),
            duration_seconds=round(time.perf_counter() - started, 3),
        )

    window_load = load_step(
        spec,
        warehouse.engine,
        paths,
        window=window,
        run_id=context["run_id"],
        db_schema=warehouse.db_schema,
        pulled=validated["pulled"],
        deduped=validated["deduped"],
        quarantined=validated["quarantined"],
        out_of_window=validated.get("out_of_window", 0),  # absent from XComs of runs before it
        repeated=int(validated.get("repeated", 0)),
        audit=success,
    )
    result = window_load.loaded
    log.info(
        "%s",
        load_line(
            stream, result, spec.destination.db_schema or warehouse.db_schema, time.perf_counter() - started
        ),
    )
    metrics = StreamMetrics.of(context, stream)
    metrics.count("records_loaded", result.merged)
    metrics.count("records_inserted", result.inserted)
    metrics.count("records_updated", result.updated)
    return {
        **result.as_dict(),
        "pulled": window_load.pulled,
        "repeated": window_load.repeated,
        "deduped": window_load.deduped,
        "quarantined": validated["quarantined"],
        "out_of_window": validated.get("out_of_window", 0),
    }


def _with_inherited_failure_callbacks(group: TaskGroup, audit: AuditOnFailure) -> list[Any]:
    """The DAG's and enclosing groups' default_args callbacks (alerts) plus the audit: a task-level
    argument would replace them. ``group.default_args`` already holds its parent groups' defaults."""
    callbacks: list[Any] = []
    for defaults in (group.dag.default_args, group.default_args):
        inherited = (defaults or {}).get("on_failure_callback")
        for callback in inherited if isinstance(inherited, list) else [inherited] if inherited else []:
            if callback not in callbacks:
                callbacks.append(callback)
    return [*callbacks, audit]


def _slice_tasks(
    *,
    stream: str,
    partition: Any,
    partitions: int,
    source_conn_id: str,
    warehouse_conn_id: str,
    staging_url: str | None,
    outlets: list[Asset],
    pool: str | None,
) -> None:
    """extract -> normalize -> validate -> load of one slice, in the current group. ``partition``
    is the slice's number, or in a mapped group its stand-in, resolved per map index at run time."""
    extract = ExtractStreamOperator(
        task_id="extract",
        stream=stream,
        conn_id=source_conn_id,
        staging_url=staging_url,
        partition=partition,
        partitions=partitions,
        **({"pool": pool} if pool else {}),
    )
    # Between tasks flow XComArgs, which the tasks receive resolved (as dicts): Any to mypy.
    extracted: Any = extract.output
    normalized: Any = normalize_stream(stream, extracted, source_conn_id, staging_url, warehouse_conn_id)
    validated: Any = validate_stream(stream, normalized, warehouse_conn_id, staging_url)
    loaded: Any = load_stream.override(outlets=outlets)(stream, validated, warehouse_conn_id, staging_url)
    group = extract.task_group
    assert group is not None, "sync_stream builds the slice inside its TaskGroup"
    callbacks = _with_inherited_failure_callbacks(
        group, AuditOnFailure(stream, warehouse_conn_id, partitions)
    )
    for slice_task in (extract, normalized.operator, validated.operator, loaded.operator):
        slice_task.on_failure_callback = callbacks
        slice_task.retry_policy = DeterministicFailurePolicy(then=slice_task.retry_policy)
        if partitions > 1:  # the UI lists, and an alert names, a mapped slice by its window
            slice_task.map_index_template = SLICE_LABEL_TEMPLATE


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
    """Add extract -> normalize -> validate -> load for ``stream`` to the current DAG; return the group.

    The spec, and the suite against the spec (its columns, its expectation types), are checked
    here (cheap: YAML + JSON, no GX), so a broken stream fails at DAG parse time with the file and
    field in the message.

    ``partitions > 1`` splits each window into that many equal slices and maps the group over
    them (a mapped TaskGroup): the slices run in parallel, all through the same connection and so
    the same shared rate budget; ``pool`` caps how many extracts run at once. The task ids stay
    ``sync_<stream>.extract`` ... ``.load``, one map index per slice, and slice *i*'s tasks wait
    for slice *i* only.
    """
    if partitions < 1:
        raise ValueError(f"sync_stream({stream!r}): partitions must be >= 1, got {partitions}")
    spec = load_spec(stream)
    check_suite(spec)
    if pool:
        check_pool(pool)
    slice_arguments: dict[str, Any] = {
        "stream": stream,
        "partitions": partitions,
        "source_conn_id": source_conn_id,
        "warehouse_conn_id": warehouse_conn_id,
        "staging_url": staging_url,
        "outlets": [warehouse_asset(spec.destination.table, spec.destination.db_schema or warehouse_schema)],
        "pool": pool,
    }
    group_id = group_id or f"sync_{stream}"
    tooltip = f"sync {stream} -> {spec.destination.table}"
    if partitions == 1:
        with TaskGroup(group_id=group_id, tooltip=tooltip) as group:
            _slice_tasks(partition=0, **slice_arguments)
        return group
    mapped = (
        task_group(group_id=group_id, tooltip=tooltip)(_slice_tasks)
        .partial(**slice_arguments)
        .expand(partition=list(range(partitions)))
    )
    assert isinstance(mapped, TaskGroup), "a task group function returning None gives its group"
    return mapped
