"""Coverage: which windows of each stream's schedule were synced, and what to do about the rest.

Owns the interval ledger (:mod:`.ledger`: expected windows from the DAG's timetable, synced and
failed windows from ``sync_runs``), the coverage alert (:mod:`.check`), the repair backfill
through Airflow's REST API (:mod:`.repair`) and the replay of one window from its staged raw files
(:mod:`.replay`, a clear of its run from normalize onward). Knows nothing of DAG files: the
pipeline finds the sync DAGs and their streams and hands them in as
:class:`~apisync.coverage.check.StreamTarget`. May
import: load (the ``sync_runs`` table definition only), alerts, spec, staging (the raw pages'
manifest name only), errors, redaction.
"""

from __future__ import annotations

from apisync.lazy_exports import lazy_exports

_EXPORTS = {
    "Ledger": "apisync.coverage.ledger",
    "LedgerWindow": "apisync.coverage.ledger",
    "Window": "apisync.coverage.ledger",
    "WindowState": "apisync.coverage.ledger",
    "build_ledger": "apisync.coverage.ledger",
    "expected_windows": "apisync.coverage.ledger",
    "read_attempts": "apisync.coverage.ledger",
    "read_ledger": "apisync.coverage.ledger",
    "StreamCoverage": "apisync.coverage.check",
    "StreamTarget": "apisync.coverage.check",
    "assess_stream": "apisync.coverage.check",
    "coverage_alert": "apisync.coverage.check",
    "send_coverage_alert": "apisync.coverage.check",
    "AirflowApi": "apisync.coverage.repair",
    "RepairOutcome": "apisync.coverage.repair",
    "repair_missing": "apisync.coverage.repair",
    "ReplayOutcome": "apisync.coverage.replay",
    "replay_window": "apisync.coverage.replay",
    "wait_for_run": "apisync.coverage.replay",
}
# The Airflow API connection the check and its repair use (here, so a DAG file reads it cheaply).
DEFAULT_API_CONN_ID = "airflow_api"

__all__ = sorted([*_EXPORTS, "DEFAULT_API_CONN_ID"])
__getattr__ = lazy_exports(__name__, _EXPORTS)
