"""The quarantine, a page at a time: the rows a stream's runs kept aside, newest first.

Each row carries what a person needs to judge it: the reasons (``failures``, the failing checks),
the raw record as the server sent it, the window and run that quarantined it and the page it came
from. Texts pass through :func:`apisync.redaction.redact` on the way out: a record that echoes a
credential-looking field is shown masked. Columns an older warehouse lacks read as ``None``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from apisync.coverage.ledger import as_utc
from apisync.quality.quarantine import QUARANTINE_TABLE
from apisync.redaction import redact
from apisync.report.reflect import optional, reflected_table

__all__ = ["MAX_PAGE_SIZE", "QuarantinePage", "QuarantineRow", "read_quarantine"]

MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class QuarantineRow:
    id: int
    stream: str
    run_id: str
    interval_start: datetime
    interval_end: datetime
    record_key: str | None
    page_url: str | None
    raw_record: str
    failures: Any
    quarantined_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stream": self.stream,
            "run_id": self.run_id,
            "interval_start": self.interval_start.isoformat(),
            "interval_end": self.interval_end.isoformat(),
            "record_key": self.record_key,
            "page_url": self.page_url,
            "raw_record": self.raw_record,
            "failures": self.failures,
            "quarantined_at": self.quarantined_at.isoformat() if self.quarantined_at else None,
        }


@dataclass(frozen=True)
class QuarantinePage:
    rows: tuple[QuarantineRow, ...]
    total: int
    offset: int
    limit: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": [row.as_dict() for row in self.rows],
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
        }


def _failures(value: Any) -> Any:
    """The failing checks as JSON data: PostgreSQL gives jsonb back parsed, SQLite as text (and rows
    of an older release hold a JSON string inside the JSON)."""
    for _ in range(2):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    return json.loads(redact(json.dumps(value))) if value is not None else None


def read_quarantine(
    engine: sa.Engine,
    stream: str,
    *,
    db_schema: str | None = None,
    limit: int = 50,
    offset: int = 0,
    run_id: str | None = None,
) -> QuarantinePage:
    """Rows ``offset``..``offset + limit`` of the stream's quarantine (one run's with ``run_id``),
    newest first, and how many there are in all."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, got {offset}")
    table = reflected_table(engine, QUARANTINE_TABLE, db_schema)
    if table is None:
        return QuarantinePage((), 0, offset, limit)
    where = [table.c.stream == stream]
    if run_id is not None:
        where.append(table.c.run_id == run_id)
    columns = [
        table.c.id,
        table.c.stream,
        table.c.run_id,
        table.c.interval_start,
        table.c.interval_end,
        table.c.raw_record,
        table.c.failures,
        optional(table, "record_key", sa.Text()),
        optional(table, "page_url", sa.Text()),
        optional(table, "quarantined_at", sa.DateTime(timezone=True)),
    ]
    query = sa.select(*columns).where(*where).order_by(table.c.id.desc()).limit(limit).offset(offset)
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())
        rows = conn.execute(query).all()
    return QuarantinePage(
        tuple(
            QuarantineRow(
                id=int(row.id),
                stream=str(row.stream),
                run_id=str(row.run_id),
                interval_start=as_utc(row.interval_start),
                interval_end=as_utc(row.interval_end),
                record_key=row.record_key,
                page_url=redact(row.page_url) if row.page_url else None,
                raw_record=redact(str(row.raw_record)),
                failures=_failures(row.failures),
                quarantined_at=as_utc(row.quarantined_at) if row.quarantined_at is not None else None,
            )
            for row in rows
        ),
        total,
        offset,
        limit,
    )
