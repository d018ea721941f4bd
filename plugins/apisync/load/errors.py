"""Errors raised while writing to a warehouse.

LoadError (Exception)
├── WarehouseConfigError     the Airflow connection cannot be turned into an engine
├── SchemaEvolutionError     a source field changed type incompatibly with the table's column
└── TooManyColumnsError      the table would grow past the configured maximum column count
"""

from __future__ import annotations

__all__ = ["LoadError", "SchemaEvolutionError", "TooManyColumnsError", "WarehouseConfigError"]


class LoadError(Exception):
    """Rows could not be written; the transaction was rolled back and the target is untouched."""


class WarehouseConfigError(LoadError, ValueError):
    """The warehouse connection is missing or of an unsupported type."""


class SchemaEvolutionError(LoadError):
    """The data's type for a column cannot be stored in the existing column."""


class TooManyColumnsError(LoadError):
    """An absurd payload would add more columns than allowed."""
