"""Quality gates: GX suites from include/expectations/, per-row quarantine, batch failures.

Names resolve lazily: GX and pandas load only inside the tasks that validate.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BatchValidationError": "apisync.errors",
    "QualityError": "apisync.errors",
    "QuarantineThresholdError": "apisync.errors",
    "SuiteError": "apisync.errors",
    "build_suite": "apisync.quality.suites",
    "read_suite_file": "apisync.quality.suites",
    "suite_path": "apisync.quality.suites",
    "SuiteRunner": "apisync.quality.expectations",
    "ValidationResult": "apisync.quality.validation",
    "check_threshold": "apisync.quality.validation",
    "read_validated_manifest": "apisync.quality.validation",
    "validate": "apisync.quality.validation",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
