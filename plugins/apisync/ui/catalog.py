"""What the view shows: the sync streams of the DAGs folder and their warehouses, cached per process.

The streams are found the way the coverage check finds them (the DAG files parsed, see
:func:`apisync.pipeline.coverage.find_sync_streams`), because the ledger needs each DAG's own
timetable and start. Parsing costs a second or two, so the result is kept until a file in the DAGs
folder changes (its path, size or mtime). Warehouse engines are kept for a few minutes, so an
edited connection is picked up without restarting the api-server.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apisync.load.connection import Warehouse
    from apisync.pipeline.coverage import SyncStream

__all__ = ["Catalog", "catalog", "warehouse"]

WAREHOUSE_TTL_S = 300.0


@dataclass(frozen=True)
class Catalog:
    streams: tuple[SyncStream, ...]
    import_errors: dict[str, str]

    def find(self, stream: str) -> SyncStream | None:
        return next((s for s in self.streams if s.target.stream == stream), None)


_lock = threading.Lock()
_catalog: tuple[tuple[tuple[str, int, int], ...], Catalog] | None = None
_warehouses: dict[str, tuple[float, Warehouse]] = {}


def _folder_state(folder: Path) -> tuple[tuple[str, int, int], ...]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".py", ".zip"))
    state = []
    for path in files:
        stat = path.stat()
        state.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(state)


def catalog() -> Catalog:
    """The streams of ``[core] dags_folder``, parsed again only when a file there changed."""
    global _catalog
    from airflow.configuration import conf

    from apisync.pipeline.coverage import find_sync_streams

    folder = Path(conf.get("core", "dags_folder"))
    state = _folder_state(folder)
    with _lock:
        if _catalog is None or _catalog[0] != state:
            streams, errors = find_sync_streams(str(folder))
            _catalog = (state, Catalog(tuple(streams), errors))
        return _catalog[1]


def warehouse(conn_id: str) -> Warehouse:
    """The warehouse of connection ``conn_id`` (its engine reused for :data:`WAREHOUSE_TTL_S`)."""
    from apisync.load.connection import warehouse_from_connection

    with _lock:
        cached = _warehouses.get(conn_id)
        if cached is not None and time.monotonic() - cached[0] < WAREHOUSE_TTL_S:
            return cached[1]
        if cached is not None:
            cached[1].engine.dispose()
        fresh = warehouse_from_connection(conn_id)
        _warehouses[conn_id] = (time.monotonic(), fresh)
        return fresh
