"""Airflow's LocalExecutor, with the sync tasks' libraries imported once before its workers fork.

On Linux the LocalExecutor forks its worker processes from the scheduler when it starts, and each
task process is a fork of a worker (the task SDK's supervisor): a task starts with whatever the
scheduler had imported and imports the rest itself. For a small window that import was the run:
a 100-record validate took 4-6 s on a 2-core machine, nearly all of it importing Great
Expectations (the checks themselves: under 0.3 s), and every task paid again for pandas, pyarrow,
SQLAlchemy and our steps (issue 14). :class:`PreloadingLocalExecutor` imports them in
``start()``, before the workers fork, so task processes find them in ``sys.modules``.

It also builds each stream's suite runner (GX's ephemeral context, suite and batch definition:
pure Python objects, no data, no connection, no thread), so a task process's validate starts
checking at once. The scheduler pays this once, as it starts: its first loop waits for it (5 s on
an idle 2-core machine, 15 s on a loaded one), and it keeps the modules (~220 MB, shared
copy-on-write with the workers; the LocalExecutor freezes the GC around the fork to keep the
pages shared). With the spawn start method (macOS) a worker is a fresh interpreter, so nothing
is preloaded. A module that fails to import is logged and left for the task to fail on, with
its own traceback.
Set ``[core] executor = apisync.pipeline.executor.PreloadingLocalExecutor`` (``make run`` and the
end-to-end stack do, :func:`scripts.localstack.airflow_env`).
"""

from __future__ import annotations

import importlib
import time

from airflow.executors.local_executor import LocalExecutor

__all__ = ["PRELOADED_MODULES", "PreloadingLocalExecutor", "preload"]

# What the sync tasks import, below the DAG files: the steps (pandas, pyarrow, SQLAlchemy, the
# transform, load and quality packages), the load's dialects and Parquet, and the tasks' module.
PRELOADED_MODULES = (
    "apisync.pipeline",
    "apisync.pipeline.tasks",
    "apisync.pipeline.steps",
    "apisync.pipeline.metrics",
    "apisync.defaults",
    "apisync.load",
    "apisync.quality.validation",
    "apisync.transform",
    "pyarrow.parquet",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.sqlite",
)


def preload() -> list[str]:
    """Import :data:`PRELOADED_MODULES` and GX, and build every stream's suite runner; return the
    failures, one ``what: error`` each."""
    failed = []
    for name in PRELOADED_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            failed.append(f"{name}: {exc}")
    try:
        from apisync.quality.expectations import import_great_expectations

        import_great_expectations()
    except ImportError as exc:
        failed.append(f"great_expectations: {exc}")
        return failed
    failed.extend(_build_suite_runners())
    return failed


def _build_suite_runners() -> list[str]:
    """One :meth:`~apisync.quality.expectations.SuiteRunner.for_suite` per stream spec: the GX
    context, suite and batch definition (a tenth of a second each) are then in the cache the task
    processes inherit; one whose file changes after this is rebuilt there (the cache keys on it).
    Building runs no validation: no data, no thread, nothing that minds being forked."""
    from apisync.quality.expectations import SuiteRunner
    from apisync.quality.suites import suite_path
    from apisync.spec import include_dir, load_spec

    failed = []
    for path in sorted((include_dir() / "streams").glob("*.yaml")):
        try:
            spec = load_spec(path)
            SuiteRunner.for_suite(suite_path(spec.quality.suite), spec.primary_key)
        except Exception as exc:  # the stream's DAG reports a broken spec or suite at parse time
            failed.append(f"suite of {path.name}: {type(exc).__name__}: {exc}")
    return failed


class PreloadingLocalExecutor(LocalExecutor):
    """A LocalExecutor whose workers (and so their task processes) start with the data path imported."""

    def start(self) -> None:
        if self.is_mp_using_fork:
            started = time.monotonic()
            failed = preload()
            self.log.info("preloaded the sync tasks' modules in %.1f s", time.monotonic() - started)
            for failure in failed:
                self.log.warning("could not preload %s", failure)
        super().start()
