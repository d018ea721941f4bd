"""A run's API cost as ``sync_runs`` columns, from its hook stats (merged across deferrals).

The extract task puts these in its XCom, the tasks after it carry them, and the run's row (success
in the load's transaction, a failure from ``AuditOnFailure``) takes them; ``run_window`` uses the
same mapping. Light on purpose: imported when DAG files are parsed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from apisync.http.latency import latency_percentile

__all__ = ["API_COST_COLUMNS", "EXTRACT_API_COST", "api_cost"]

# XCom key under which the extract leaves its attempt's API cost as it stops, even when it fails
# (it has no return value then): the failed run's sync_runs row reads it.
EXTRACT_API_COST = "api_cost"

API_COST_COLUMNS = (
    "api_calls",
    "api_429s",
    "throttled_seconds",
    "backoff_seconds",
    "latency_p50_ms",
    "latency_p95_ms",
    "bytes_received",
    "status_counts",
    "api_errors",
    "latency_histogram",
    "api_not_modified",
)


def api_cost(stats: Mapping[str, Any]) -> dict[str, Any]:
    """``sync_runs`` columns of :meth:`apisync.http.ApiHook.stats` (or :func:`apisync.http.add_stats`
    of several): p50/p95 from the latency histogram, ``status_counts`` as JSON text."""
    latency = stats.get("latency_ms") or {}
    statuses = stats.get("status_counts") or {}
    return {
        "api_calls": int(stats.get("requests", 0)),
        "api_429s": int(stats.get("r429", 0)),
        "throttled_seconds": float(stats.get("throttled_s", 0.0)),
        "backoff_seconds": float(stats.get("backoff_s", 0.0)),
        "latency_p50_ms": latency_percentile(latency, 0.5),
        "latency_p95_ms": latency_percentile(latency, 0.95),
        "bytes_received": int(stats.get("bytes", 0)),
        "status_counts": json.dumps(dict(sorted(statuses.items()))),
        "api_errors": int(stats.get("api_errors", 0)),
        "latency_histogram": json.dumps(dict(sorted(latency.items(), key=lambda item: int(item[0])))),
        "api_not_modified": int(stats.get("not_modified", 0)),  # 304s: pages replayed from staging
    }
