"""The read model of what was synced: per-stream run history, interval coverage and quarantine.

Shared by the Syncs view in the Airflow UI (:mod:`apisync.ui`) and ``python -m apisync status``
(:mod:`apisync.cli.status`), so both show the same numbers. It only reads the warehouse's
bookkeeping tables (``sync_runs``, ``quarantine``) through SQLAlchemy, reflecting them: a column a
newer release adds (latency percentiles, status counts, error counts) may be missing from an
older warehouse or NULL in older rows, and reads as ``None`` ("—" on a page). Coverage is the
interval ledger of :mod:`apisync.coverage`. May import: load (the warehouse and ``sync_runs``
definitions), coverage, quality (the quarantine table's name), http.latency (merging slices' latency
histograms), staging, spec, errors, redaction.
"""

from __future__ import annotations

from apisync.lazy_exports import lazy_exports

_EXPORTS = {
    "RunPoint": "apisync.report.runs",
    "StreamSummary": "apisync.report.runs",
    "read_runs": "apisync.report.runs",
    "stream_summaries": "apisync.report.runs",
    "recorded_streams": "apisync.report.runs",
    "IntervalCoverage": "apisync.report.intervals",
    "interval_coverage": "apisync.report.intervals",
    "QuarantinePage": "apisync.report.quarantine",
    "QuarantineRow": "apisync.report.quarantine",
    "read_quarantine": "apisync.report.quarantine",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
