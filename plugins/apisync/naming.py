"""Column names from API keys: snake_case, [a-z0-9_] only, so no payload key can reach SQL raw.

Names are also quoted by SQLAlchemy when emitted; sanitizing first keeps them readable and stable.
Leading underscores are stripped because the ``_`` prefix is reserved for lineage columns.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["MAX_IDENTIFIER_LENGTH", "column_name", "column_names"]

MAX_IDENTIFIER_LENGTH = 63  # PostgreSQL truncates longer identifiers silently
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_UNSAFE = re.compile(r"[^0-9a-z]+")


def _digest(text: str) -> str:
    return hashlib.blake2s(text.encode("utf-8"), digest_size=4).hexdigest()


def column_name(key: str) -> str:
    """Sanitized snake_case column for a (possibly dotted) source key."""
    name = _CAMEL_BOUNDARY.sub("_", key).lower()
    name = _UNSAFE.sub("_", name).strip("_")
    if not name:
        return f"col_{_digest(key)}"
    if name[0].isdigit():
        name = f"c_{name}"
    if len(name) > MAX_IDENTIFIER_LENGTH:
        name = f"{name[: MAX_IDENTIFIER_LENGTH - 9]}_{_digest(key)}"
    return name


def column_names(keys: list[str], reserved: dict[str, str] | None = None) -> dict[str, str]:
    """Map source keys to unique column names; colliding keys get a stable hash suffix.

    ``reserved`` maps keys whose column is fixed (spec fields) to that column.
    """
    mapping = dict(reserved or {})
    taken = set(mapping.values())
    for key in keys:
        if key in mapping:
            continue
        name = column_name(key)
        if name in taken:
            name = f"{name[: MAX_IDENTIFIER_LENGTH - 9]}_{_digest(key)}"
        mapping[key] = name
        taken.add(name)
    return mapping
