"""Errors raised while checking normalized records.

QualityError (Exception)
├── SuiteError                    a suite file is unreadable or GX dropped/rejected an expectation
├── BatchValidationError          a table-level expectation failed: the whole batch is wrong
└── QuarantineThresholdError   too large a share of rows was quarantined for this stream
"""

from __future__ import annotations

__all__ = ["BatchValidationError", "QualityError", "QuarantineThresholdError", "SuiteError"]


class QualityError(Exception):
    """Records failed a quality gate.

    ``failures`` lists what failed as ``{"expectation", "column", "unexpected_count"}`` dicts: the
    alerts (apisync.alerts) print them line by line, so on-call sees which checks broke and how often.
    """

    def __init__(self, message: str, failures: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


class SuiteError(QualityError, ValueError):
    """An expectation suite file cannot be used as written."""


class BatchValidationError(QualityError):
    """A table-level expectation failed, so no row of the batch is trusted."""


class QuarantineThresholdError(QualityError):
    """The quarantined share of a run is above the stream's quarantine_threshold."""
