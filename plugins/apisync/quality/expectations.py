"""Run a GX suite over normalized chunks and tell failing rows from failing batches.

One ephemeral context, suite and batch definition serve every chunk of a run (building them is
the expensive part). Column-map expectations report failing rows (COMPLETE result format, indexed
by the primary key plus our row number); any other failed expectation condemns the whole batch.

Per chunk, GX loads the batch once (loading fingerprints the whole frame) and first runs the
suite with the BOOLEAN_ONLY result format; only the expectations that failed run again, on the
same loaded batch, with COMPLETE to name their failing rows. A clean chunk, the usual case, skips
the unexpected-row bookkeeping of every expectation.

:meth:`SuiteRunner.for_suite` keeps one runner per suite content in the process, so a process
that validates many windows (``run_window``, a worker that imported GX before it forked) builds
the context once; the key is the file's path and parsed content, so an edited suite is rebuilt.
Importing GX is most of a small window's validate (2-6 s on a 2-core machine, against well under
a second for the checks themselves): :func:`import_great_expectations` is the one place it
happens, so a worker can do it once before its task processes fork
(:mod:`apisync.pipeline.executor`). A process that has not, :meth:`SuiteRunner.prepare` builds the
runner in a background thread while the window is still being extracted (the extract mostly
waits on the network): validate then waits only for what is left of the build, and counts only
that wait as GX time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from apisync.errors import BatchValidationError
from apisync.quality.suites import build_suite, checked_columns, checks_dtypes, read_suite_file
from apisync.staging.columns import ROW

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

__all__ = ["ChunkFailures", "SuiteRunner", "import_great_expectations"]

_SCREEN_FORMAT = {"result_format": "BOOLEAN_ONLY"}


@dataclass
class ChunkFailures:
    rows: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    batch: list[str] = field(default_factory=list)
    batch_failures: list[dict[str, Any]] = field(default_factory=list)


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        try:
            return value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def import_great_expectations() -> Any:
    """Import GX as the runner uses it (no analytics, quiet logger) with the modules a validation
    loads on first use; returns the ``great_expectations`` module."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    import great_expectations.data_context.types.base
    import great_expectations.validator.v1_validator
    import pyarrow.dataset  # noqa: F401  (pandas' Arrow-backed frames load it on the first check)

    return gx


# Runners this process built or is building, by (suite file, its parsed content, index columns):
# few suites per process, so the cache is small and never evicts.
_RunnerKey = tuple[str, str, tuple[str, ...]]
_RUNNERS: dict[_RunnerKey, Future[SuiteRunner]] = {}
_RUNNERS_LOCK = threading.Lock()


def _runner_key(suite_file: Path, index_columns: list[str]) -> tuple[_RunnerKey, dict[str, Any]]:
    data = read_suite_file(suite_file)
    key = (str(suite_file.resolve()), json.dumps(data, sort_keys=True, default=str), tuple(index_columns))
    return key, data


class SuiteRunner:
    """Holds the GX objects for one suite; ``seconds`` accumulates time spent inside GX."""

    def __init__(
        self, suite_file: Path, index_columns: list[str], suite_data: dict[str, Any] | None = None
    ) -> None:
        """``suite_data``: the file as :func:`read_suite_file` read it (read here when None)."""
        started = time.perf_counter()
        gx = import_great_expectations()
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        )
        data = read_suite_file(suite_file) if suite_data is None else suite_data
        self.suite_file = suite_file
        self.context = gx.get_context(project_config=config, mode="ephemeral")
        self.suite = self.context.suites.add(build_suite(suite_file, data))
        self.checked_columns = checked_columns(data)
        self.checks_dtypes = checks_dtypes(data)
        self._by_id = {expectation.id: expectation for expectation in self.suite.expectations}
        source = self.context.data_sources.add_pandas("apisync")
        asset = source.add_dataframe_asset("chunk")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        self.index_columns = [*index_columns, ROW]
        self._complete_format = {
            "result_format": "COMPLETE",
            "unexpected_index_column_names": self.index_columns,
        }
        self.chunks = 0  # validated so far
        self.seconds = time.perf_counter() - started
        self.in_background = False  # built by prepare(): the first for_suite counts only its wait

    @classmethod
    def for_suite(cls, suite_file: Path, index_columns: list[str]) -> SuiteRunner:
        """This process's runner for the suite as the file reads now (built on first use).

        The file is read on every call (a few milliseconds) and its parsed content is part of the
        key: a suite edited since is a new runner, never a stale one. A runner is used by one
        validation at a time (``validate`` runs in the caller's thread).
        """
        key, data = _runner_key(suite_file, index_columns)
        with _RUNNERS_LOCK:
            pending = _RUNNERS.get(key)
            if pending is None:
                pending = _RUNNERS[key] = Future()
                build_here = True
            else:
                build_here = False
        if build_here:
            _build(pending, cls, suite_file, index_columns, data)
        started = time.perf_counter()
        try:
            runner = pending.result()
        except BaseException:
            with _RUNNERS_LOCK:  # a failed build is not cached: the next call tries again
                if _RUNNERS.get(key) is pending:
                    del _RUNNERS[key]
            raise
        with _RUNNERS_LOCK:
            if runner.in_background and not runner.chunks:
                # Built while the caller did other work: its cost to the caller is the wait.
                runner.seconds, runner.in_background = time.perf_counter() - started, False
        return runner

    @classmethod
    def prepare(cls, suite_file: Path, index_columns: list[str]) -> None:
        """Start building this process's runner for the suite in a background thread, unless it
        is built or being built; :meth:`for_suite` then waits for it. A suite that cannot be read
        is left for ``for_suite`` to report."""
        try:
            key, data = _runner_key(suite_file, index_columns)
        except Exception:
            return
        with _RUNNERS_LOCK:
            if key in _RUNNERS:
                return
            pending = _RUNNERS[key] = Future()
        threading.Thread(
            target=_build,
            args=(pending, cls, suite_file, index_columns, data, True),
            name="apisync-gx-build",
            daemon=True,  # an interpreter that exits meanwhile does not wait for GX's import
        ).start()

    def columns_to_check(self, available: list[str]) -> list[str]:
        """Of a part's columns, those GX must see: what the suite reads plus the index columns."""
        wanted = set(self.index_columns) | (
            set(available) if self.checked_columns is None else self.checked_columns
        )
        return [column for column in dict.fromkeys([*available, ROW]) if column in wanted]

    def validate(self, frame: pd.DataFrame) -> ChunkFailures:
        from great_expectations.validator.v1_validator import Validator

        started = time.perf_counter()
        failures = ChunkFailures()
        # What Batch.validate does, minus loading (and fingerprinting) the frame a second time.
        validator = Validator(
            batch_definition=self.batch_definition,
            batch_parameters={"dataframe": frame},
            result_format=_SCREEN_FORMAT,
        )
        screened = validator.validate_expectation_suite(self.suite)
        failed = [outcome for outcome in screened.results if not outcome.success]
        if failed:
            validator.result_format = self._complete_format
            for outcome in self._complete_results(validator, failed):
                self._record(outcome, failures)
        self.chunks += 1
        self.seconds += time.perf_counter() - started
        return failures

    def _complete_results(self, validator: Any, failed: list[Any]) -> list[ExpectationValidationResult]:
        """The failed expectations again, with their failing rows (COMPLETE result format)."""
        expectations = [self._by_id.get(outcome.expectation_config.id) for outcome in failed]
        if any(expectation is None for expectation in expectations):  # cannot tell which: all again
            return list(validator.validate_expectation_suite(self.suite).results)
        return [validator.validate_expectation(expectation) for expectation in expectations]

    def _record(self, outcome: ExpectationValidationResult, failures: ChunkFailures) -> None:
        # GX fills expectation_config on every result of a validation run.
        config = cast("ExpectationConfiguration", outcome.expectation_config)
        kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        exception = outcome.exception_info or {}
        if exception.get("raised_exception"):
            failures.batch.append(f"{config.type} {kwargs}: raised {exception.get('exception_message')}")
            failures.batch_failures.append(
                {"expectation": config.type, "column": kwargs.get("column"), "unexpected_count": None}
            )
            return
        if outcome.success:
            return
        rows = outcome.result.get("unexpected_index_list")
        if rows is None:
            observed = outcome.result.get("observed_value")
            failures.batch.append(f"{config.type} {kwargs}: observed {observed!r}")
            failures.batch_failures.append(
                {
                    "expectation": config.type,
                    "column": kwargs.get("column"),
                    "unexpected_count": outcome.result.get("unexpected_count"),
                }
            )
            return
        column = kwargs.get("column")
        for row in rows:
            failures.rows[int(row[ROW])].append(
                {
                    "expectation": config.type,
                    "column": column,
                    "value": _plain(row.get(column)),
                    "kwargs": kwargs,
                }
            )

    def raise_for_batch(self, failures: ChunkFailures, where: str) -> None:
        if failures.batch:
            raise BatchValidationError(
                f"suite {self.suite_file.name} failed at table level for {where}: "
                + "; ".join(failures.batch),
                failures.batch_failures,
            )


def _build(
    pending: Future[SuiteRunner],
    cls: type[SuiteRunner],
    suite_file: Path,
    index_columns: list[str],
    data: dict[str, Any],
    in_background: bool = False,
) -> None:
    """Build a runner into ``pending`` (its result, or the exception the build raised)."""
    try:
        runner = cls(suite_file, index_columns, data)
    except BaseException as error:
        pending.set_exception(error)
        return
    runner.in_background = in_background
    pending.set_result(runner)
