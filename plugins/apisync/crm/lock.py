"""One push per mapping at a time: a PostgreSQL advisory lock, or a lock file next to a SQLite file.

Two pushes of one mapping interleaving their upserts could leave the CRM holding an older payload
than the one recorded as accepted, so the second fails with :class:`CrmPushError` before it sends
anything. The lock lives as long as the session (PostgreSQL) or the process (SQLite lock file), so
a killed worker never leaves it behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from apisync.errors import CrmPushError

__all__ = ["exclusive"]

log = logging.getLogger(__name__)

_IN_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_IN_PROCESS_LOCKS_GUARD = threading.Lock()


def _lock_id(name: str) -> int:
    """A stable signed 64-bit id for pg_try_advisory_lock."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def exclusive(conn: sa.Connection, db_schema: str | None, mapping: str) -> Iterator[None]:
    """Hold the mapping's push lock on this warehouse (``conn``'s database), or fail with
    :class:`CrmPushError` before anything is sent. Hold it across the whole push."""
    name = f"apisync.crm_push:{db_schema or ''}:{mapping}"
    busy = CrmPushError(
        f"mapping {mapping}: another push of it is running on this warehouse; nothing was sent, "
        "run again once it has finished"
    )
    dialect = conn.dialect.name
    if dialect == "postgresql":
        lock_id = _lock_id(name)
        got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(lock_id))).scalar_one()
        conn.commit()
        if not got:
            raise busy
        try:
            yield
        finally:
            try:
                conn.rollback()
                conn.execute(sa.select(sa.func.pg_advisory_unlock(lock_id)))
                conn.commit()
            except Exception:
                log.warning("could not release the advisory lock; closing the session instead")
                conn.invalidate()
        return
    if dialect != "sqlite":
        raise CrmPushError(f"mapping {mapping}: the CRM push supports PostgreSQL and SQLite, not {dialect}")
    database = conn.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        with _IN_PROCESS_LOCKS_GUARD:  # the database lives in this process only
            lock = _IN_PROCESS_LOCKS.setdefault(f"{id(conn.engine)}:{name}", threading.Lock())
        if not lock.acquire(blocking=False):
            raise busy
        try:
            yield
        finally:
            lock.release()
        return
    suffix = f"{db_schema}.{mapping}" if db_schema else mapping
    fd = os.open(f"{database}.crm-push-{suffix}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race a new holder)
