"""The push state: what the CRM accepted per record (``crm_push_versions``) and what it rejected
(``crm_push_errors``), and the bookkeeping that keeps both true per key.

The state is per record, not a watermark: ``crm_push_versions`` holds, per (mapping, record key),
a hash of the payload the CRM last accepted and the row's change-column value then;
``crm_push_errors`` holds the inputs the CRM rejected (payload, category, message, attempts) until a
later push gets them through (``pushed``) or their row is gone (``source row missing``). The
methods here run on the caller's connection and open no transaction: the push groups one answered
batch's writes into one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from apisync.staging.tables import ensure_table_columns

__all__ = [
    "CRM_PUSH_ERRORS_TABLE",
    "CRM_PUSH_VERSIONS_TABLE",
    "KEY_CHUNK",
    "LEGACY_WATERMARK_TABLE",
    "PushInput",
    "PushState",
    "as_utc",
    "chunked",
    "crm_push_errors_table",
    "crm_push_versions_table",
]

log = logging.getLogger(__name__)

CRM_PUSH_VERSIONS_TABLE = "crm_push_versions"
CRM_PUSH_ERRORS_TABLE = "crm_push_errors"
LEGACY_WATERMARK_TABLE = "crm_push_state"  # the watermark before per-key state: never read, only noted
KEY_CHUNK = 500  # values per IN (...) list
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def crm_push_versions_table(db_schema: str | None = None) -> sa.Table:
    """One row per (mapping, record key): the payload the CRM last accepted for that record."""
    return sa.Table(
        CRM_PUSH_VERSIONS_TABLE,
        sa.MetaData(schema=db_schema),
        sa.Column("mapping", sa.Text(), primary_key=True),
        sa.Column("record_key", sa.Text(), primary_key=True),
        sa.Column("payload_hash", sa.Text(), nullable=False),  # of the canonical JSON input sent
        sa.Column("changed_value", sa.Text()),  # the row's change column then (ISO-8601 timestamps)
        sa.Column("crm_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
    )


def crm_push_errors_table(db_schema: str | None = None) -> sa.Table:
    """One row per (mapping, record key) the CRM rejected; open while ``resolved_at`` is NULL."""
    return sa.Table(
        CRM_PUSH_ERRORS_TABLE,
        sa.MetaData(schema=db_schema),
        sa.Column("mapping", sa.Text(), primary_key=True),
        sa.Column("record_key", sa.Text(), primary_key=True),
        sa.Column("crm_id", sa.Text()),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_run_id", sa.Text()),
        sa.Column("resolution", sa.Text()),  # pushed | source row missing
    )


@dataclass(slots=True)
class PushInput:
    """One source row as an upsert input: what is sent, and what the state records of it."""

    key: str  # the record key, as text
    crm_id: str | None  # the value of the mapping's id_property (None: nothing to upsert by)
    payload: dict[str, Any]
    payload_hash: str = ""
    changed: Any = None  # the change column's value (the audit interval; recorded as text)


def as_utc(value: datetime) -> datetime:
    """SQLite gives back naive UTC (the loader writes UTC); PostgreSQL aware values."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _changed_text(value: Any) -> str | None:
    if value is None:
        return None
    return as_utc(value).isoformat() if isinstance(value, datetime) else str(value)


class PushState:
    """The state tables of one mapping, read and written on ``conn`` for the push ``run_id``."""

    def __init__(self, conn: sa.Connection, mapping: str, run_id: str, db_schema: str | None) -> None:
        self.conn = conn
        self.mapping = mapping
        self.run_id = run_id
        self.db_schema = db_schema
        self.versions = crm_push_versions_table(db_schema)
        self.errors = crm_push_errors_table(db_schema)

    def create(self) -> None:
        """Create the state tables when missing; note a legacy watermark table (it is not read)."""
        ensure_table_columns(self.conn, self.versions)
        ensure_table_columns(self.conn, self.errors)
        if sa.inspect(self.conn).has_table(LEGACY_WATERMARK_TABLE, schema=self.db_schema):
            log.info(
                "table %s (the watermark of an older apisync) is no longer read; drop it when "
                "convenient. Keys without a row in %s are pushed once (idempotent upserts).",
                LEGACY_WATERMARK_TABLE,
                CRM_PUSH_VERSIONS_TABLE,
            )

    def open_error_keys(self) -> set[str]:
        """Keys of the open error rows (errors are few: they fit in memory)."""
        query = sa.select(self.errors.c.record_key).where(
            self.errors.c.mapping == self.mapping, self.errors.c.resolved_at.is_(None)
        )
        return set(self.conn.execute(query).scalars())

    def accepted_keys(self) -> int:
        """How many keys have an accepted version."""
        query = sa.select(sa.func.count()).where(self.versions.c.mapping == self.mapping)
        return int(self.conn.execute(query).scalar_one())

    def _insert(self, table: sa.Table) -> Any:
        dialect_module = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        return dialect_module.insert(table)

    def record_accepted(self, items: Sequence[PushInput], now: datetime) -> None:
        """The versions the CRM accepted replace the ones recorded before."""
        stmt = self._insert(self.versions)
        stmt = stmt.on_conflict_do_update(
            index_elements=[self.versions.c.mapping, self.versions.c.record_key],
            set_={
                name: stmt.excluded[name]
                for name in ("payload_hash", "changed_value", "crm_id", "run_id", "pushed_at")
            },
        )
        rows = [
            {
                "mapping": self.mapping,
                "record_key": item.key,
                "payload_hash": item.payload_hash,
                "changed_value": _changed_text(item.changed),
                "crm_id": item.crm_id,
                "run_id": self.run_id,
                "pushed_at": now,
            }
            for item in items
        ]
        self.conn.execute(stmt, rows)

    def record_errors(self, errors: Sequence[tuple[PushInput, str, str]], now: datetime) -> None:
        """(input, category, message): new error: attempts 1; still open: attempts + 1; resolved
        before: a new episode."""
        table = self.errors
        stmt = self._insert(table)
        still_open = table.c.resolved_at.is_(None)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.mapping, table.c.record_key],
            set_={
                **{
                    name: stmt.excluded[name]
                    for name in ("crm_id", "payload", "category", "message", "run_id", "last_seen_at")
                },
                "attempts": sa.case((still_open, table.c.attempts + 1), else_=1),
                "first_seen_at": sa.case(
                    (still_open, table.c.first_seen_at), else_=stmt.excluded.first_seen_at
                ),
                "resolved_at": None,
                "resolved_run_id": None,
                "resolution": None,
            },
        )
        rows = [
            {
                "mapping": self.mapping,
                "record_key": item.key,
                "crm_id": item.crm_id,
                "payload": item.payload,
                "category": category,
                "message": message,
                "run_id": self.run_id,
                "attempts": 1,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for item, category, message in errors
        ]
        self.conn.execute(stmt, rows)

    def resolve(self, keys: Sequence[str], resolution: str, now: datetime) -> None:
        """Close the open errors of ``keys``: ``pushed`` or ``source row missing``."""
        for chunk in chunked(keys, KEY_CHUNK):
            self.conn.execute(
                self.errors.update()
                .where(
                    self.errors.c.mapping == self.mapping,
                    self.errors.c.record_key.in_(chunk),
                    self.errors.c.resolved_at.is_(None),
                )
                .values(resolved_at=now, resolved_run_id=self.run_id, resolution=resolution)
            )
