"""Errors raised while turning raw pages into typed tables.

NormalizeError (ValueError)
├── TooManyColumnsError     payload flattens to more columns than the spec's max_columns
└── UnknownFieldsError      undeclared fields with ``unknown_fields: fail``
"""

from __future__ import annotations

__all__ = ["NormalizeError", "TooManyColumnsError", "UnknownFieldsError"]


class NormalizeError(ValueError):
    """Raw records cannot be normalized as the spec says."""


class TooManyColumnsError(NormalizeError):
    """An absurd payload (thousands of keys) would create more columns than allowed."""


class UnknownFieldsError(NormalizeError):
    """The spec forbids undeclared fields and the payload has some."""
