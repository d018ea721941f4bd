"""Quality gates: GX suites from include/expectations/, per-row quarantine, batch failures.

Owns the expectation suites (:mod:`~apisync.quality.suites`), running them
(:mod:`~apisync.quality.expectations`), splitting normalized parts into good and quarantined rows
(:mod:`~apisync.quality.validation`) and the quarantine in every form: its part, its warehouse
table and its writers (:mod:`~apisync.quality.quarantine`). May import: staging, spec, errors,
redaction; never transform, load, crm or pipeline.

Names resolve lazily: GX and pandas load only inside the tasks that validate.
"""

from __future__ import annotations

from apisync.lazy_exports import lazy_exports

_EXPORTS = {
    "BatchValidationError": "apisync.errors",
    "QualityError": "apisync.errors",
    "QuarantineThresholdError": "apisync.errors",
    "SuiteError": "apisync.errors",
    "SuiteRunner": "apisync.quality.expectations",
    "QUARANTINE_COLUMNS": "apisync.quality.quarantine",
    "persist_quarantine": "apisync.quality.quarantine",
    "quarantine_table": "apisync.quality.quarantine",
    "quarantine_writer": "apisync.quality.quarantine",
    "write_quarantine": "apisync.quality.quarantine",
    "build_suite": "apisync.quality.suites",
    "read_suite_file": "apisync.quality.suites",
    "suite_path": "apisync.quality.suites",
    "ValidationResult": "apisync.quality.validation",
    "check_threshold": "apisync.quality.validation",
    "validate": "apisync.quality.validation",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
