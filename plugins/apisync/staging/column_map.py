"""Which column each source key of a destination table lands in, kept from chunk to chunk and run to run.

Transform names columns through a :class:`ColumnMap` per table (the stream's table and each child
table), started from the mapping stored with the table and the spec's declared fields; the entries
it adds travel in the normalized manifest (``column_map``) and load stores them in the load's
transaction. The naming rule itself is documented in :mod:`apisync.naming`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from apisync.errors import ColumnMapConflictError
from apisync.naming import SourcePath, natural_column, suffixed_column
from apisync.spec import StreamSpec

__all__ = [
    "ColumnMap",
    "declared_path",
    "decode_path",
    "encode_path",
    "stream_column_maps",
    "stream_tables",
]


def encode_path(path: SourcePath) -> str:
    """A path as stored and in manifests: the JSON array of its keys, ``["meta","tag"]``."""
    return json.dumps(list(path), ensure_ascii=False, separators=(",", ":"))


def decode_path(text: str) -> SourcePath:
    return tuple(str(key) for key in json.loads(text))


def declared_path(dotted: str) -> SourcePath:
    """A spec's dotted field or array path (``customer.email``) as the nested path it names."""
    return tuple(dotted.split("."))


def _show(path: SourcePath) -> str:
    return str(list(path))


class ColumnMap:
    """Source path -> column of one destination table; a path, once named, keeps its name.

    ``known``: the mapping stored with the table. ``declared``: the spec's fields, which own their
    columns (an error when a stored key of another path holds one). ``reserved``: columns no
    source key may take (a child table's parent-key columns).
    """

    def __init__(
        self,
        stream: str,
        table: str,
        known: Mapping[SourcePath, str] | None = None,
        *,
        declared: Mapping[SourcePath, str] | None = None,
        reserved: Iterable[str] = (),
    ) -> None:
        self.stream = stream
        self.table = table
        self._columns: dict[SourcePath, str] = dict(known or {})
        self._new: dict[SourcePath, str] = {}
        owners = {column: path for path, column in self._columns.items()}
        for path, column in (declared or {}).items():
            owner = owners.get(column)
            if owner is not None and owner != path:
                raise ColumnMapConflictError(
                    f"stream {self.stream}, table {self.table}: declared field {_show(path)} has column "
                    f"{column!r}, which the stored mapping (apisync_columns) gives to source key "
                    f"{_show(owner)}; give the field another name with `column:` in the spec"
                )
            if path not in self._columns:
                self._new[path] = column
            self._columns[path] = column  # the spec decides while the field is declared
        self._taken = set(self._columns.values()) | set(reserved)

    def column(self, path: SourcePath) -> str:
        """The column of ``path``, naming it now if it has none (the rule in :mod:`apisync.naming`)."""
        name = self._columns.get(path)
        if name is not None:
            return name
        name = natural_column(path)
        if name in self._taken:
            suffixed = suffixed_column(path)
            name, counter = suffixed, 2
            while name in self._taken:
                name, counter = f"{suffixed}_{counter}", counter + 1
        self._columns[path] = name
        self._new[path] = name
        self._taken.add(name)
        return name

    def new_entries(self) -> dict[str, str]:
        """The entries this map added, encoded path -> column, as the manifest carries them."""
        return {encode_path(path): column for path, column in self._new.items()}


def stream_tables(spec: StreamSpec) -> list[str]:
    """The destination tables a stream writes: its table, then its child tables."""
    children = [a.table for a in spec.arrays.values() if a.mode == "child_table" and a.table]
    return [spec.destination.table, *children]


def stream_column_maps(
    spec: StreamSpec, known: Mapping[str, Mapping[SourcePath, str]] | None = None
) -> dict[str, ColumnMap]:
    """A :class:`ColumnMap` per destination table of the stream, from the stored ``known`` maps."""
    known = known or {}
    declared = {declared_path(path): spec.column_for(path) for path in spec.fields}
    for path, array in spec.arrays.items():
        if array.mode == "json":
            declared[declared_path(path)] = natural_column(declared_path(path))
    table = spec.destination.table
    maps = {table: ColumnMap(spec.name, table, known.get(table), declared=declared)}
    parent_keys = [f"{spec.name}_{key}" for key in spec.primary_key]
    for child in stream_tables(spec)[1:]:
        maps[child] = ColumnMap(spec.name, child, known.get(child), reserved=parent_keys)
    return maps
