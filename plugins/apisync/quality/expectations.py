"""Run a GX suite over normalized chunks and tell failing rows from failing batches.

One ephemeral context, suite and batch definition serve every chunk of a run (building them is
the expensive part). Column-map expectations report failing rows (COMPLETE result format, indexed
by the primary key plus our row number); any other failed expectation condemns the whole batch.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from apisync.quality.errors import BatchValidationError
from apisync.quality.suites import build_suite

__all__ = ["ChunkFailures", "SuiteRunner"]

ROW_COLUMN = "_apisync_row"


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


class SuiteRunner:
    """Holds the GX objects for one suite; ``seconds`` accumulates time spent inside GX."""

    def __init__(self, suite_file: Path, index_columns: list[str]) -> None:
        started = time.perf_counter()
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx
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
        self.suite_file = suite_file
        self.context = gx.get_context(project_config=config, mode="ephemeral")
        self.suite = self.context.suites.add(build_suite(suite_file))
        source = self.context.data_sources.add_pandas("apisync")
        asset = source.add_dataframe_asset("chunk")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        self.index_columns = [*index_columns, ROW_COLUMN]
        self.seconds = time.perf_counter() - started

    def validate(self, frame: pd.DataFrame) -> ChunkFailures:
        started = time.perf_counter()
        failures = ChunkFailures()
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            self.suite,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": self.index_columns},
        )
        for outcome in result.results:
            config = outcome.expectation_config
            kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
            exception = outcome.exception_info or {}
            if exception.get("raised_exception"):
                failures.batch.append(f"{config.type} {kwargs}: raised {exception.get('exception_message')}")
                failures.batch_failures.append(
                    {"expectation": config.type, "column": kwargs.get("column"), "unexpected_count": None}
                )
                continue
            if outcome.success:
                continue
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
                continue
            column = kwargs.get("column")
            for row in rows:
                failures.rows[int(row[ROW_COLUMN])].append(
                    {
                        "expectation": config.type,
                        "column": column,
                        "value": _plain(row.get(column)),
                        "kwargs": kwargs,
                    }
                )
        self.seconds += time.perf_counter() - started
        return failures

    def raise_for_batch(self, failures: ChunkFailures, where: str) -> None:
        if failures.batch:
            raise BatchValidationError(
                f"suite {self.suite_file.name} failed at table level for {where}: "
                + "; ".join(failures.batch),
                failures.batch_failures,
            )
