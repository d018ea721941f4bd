"""Column names from API keys: snake_case, [a-z0-9_] only, so no payload key can reach SQL raw.

Names are also quoted by SQLAlchemy when emitted; sanitizing first keeps them readable and stable.
Leading underscores are stripped because the ``_`` prefix is reserved for lineage columns.

A source key is a *path*: the keys from the record's top level down to the value, so the literal
key ``"meta.tag"`` is ``("meta.tag",)`` and ``{"meta": {"tag": ...}}`` is ``("meta", "tag")``, two
keys. Many keys share one natural name (``a-b``, ``a_b``, ``aB`` -> ``a_b``); which key gets which
column is decided once per destination table and kept (:class:`apisync.staging.column_map.ColumnMap`,
stored in the warehouse's ``apisync_columns``). The rule:

1. a key keeps the column it was first given, in every later chunk and run;
2. the spec's declared fields own their names (``column:`` or the natural name) first;
3. a new key takes its natural name (:func:`natural_column`) when no other key holds it; new keys
   are named in the order they first appear in the window (record order, then key order);
4. otherwise :func:`suffixed_column`: the natural name cut to 54 characters, ``_`` and 8 hex
   digits of BLAKE2s over :func:`path_text` (``a_b`` -> ``a_b_a3371a87``); should that be held
   too (a literal ``"meta.tag"`` and ``meta -> tag`` both losing ``meta_tag``, or a digest
   collision), ``_2``, ``_3``, ... after it, the first one free.
"""

from __future__ import annotations

import hashlib
import json
import re

__all__ = [
    "MAX_IDENTIFIER_LENGTH",
    "SourcePath",
    "column_name",
    "natural_column",
    "path_text",
    "suffixed_column",
]

MAX_IDENTIFIER_LENGTH = 63  # PostgreSQL truncates longer identifiers silently
_SUFFIX_LENGTH = 9  # "_" and 8 hex digits
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_UNSAFE = re.compile(r"[^0-9a-z]+")

SourcePath = tuple[str, ...]  # keys from the record's top level down to the value


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
        name = f"{name[: MAX_IDENTIFIER_LENGTH - _SUFFIX_LENGTH]}_{_digest(key)}"
    return name


def path_text(path: SourcePath) -> str:
    """The path as one text: its keys joined by ``.`` (as before paths), or, when a key holds a
    ``.`` itself, the JSON array of the keys, so ``("meta.tag",)`` and ``("meta", "tag")`` differ."""
    if any("." in key for key in path):
        return json.dumps(list(path), ensure_ascii=False)
    return ".".join(path)


def natural_column(path: SourcePath) -> str:
    """The column a key gets when no other key holds that name (rule 3)."""
    return column_name(".".join(path))


def suffixed_column(path: SourcePath) -> str:
    """The column a key gets when another key holds its natural name (rule 4, before ``_2``...)."""
    return f"{natural_column(path)[: MAX_IDENTIFIER_LENGTH - _SUFFIX_LENGTH]}_{_digest(path_text(path))}"
