"""Push new/changed warehouse rows to a CRM batch-upsert endpoint, losing nothing.

The mapping is data (``include/crm/<name>.yaml``). The push state is per record, not a watermark:
``crm_push_versions`` holds, per (mapping, record key), a hash of the payload the CRM last accepted
and the row's change-column value then. A push reads the whole source table in key order, a chunk
at a time (memory stays flat), left-joined to that state, and sends every row that was never
accepted, whose payload differs from the accepted one, or that has an open ``crm_push_errors`` row.
So rows a backfill or a late run writes with an *older* ``updated_at``, a property fixed in place
and a property added to the mapping are all pushed; rows whose payload did not change are not.

Rows go in batches of at most ``batch_size`` through the rate-limited :class:`ApiHook`. Once the
CRM has answered a batch, its outcome is recorded in one transaction: the accepted payload hashes,
the per-record errors of a 207 Multi-Status (with attempts), and the open errors it resolved. A
crash or a failed call (401, 400, retries exhausted) records nothing for the batch in flight, so the
next run sends it again; upserts are idempotent by ``idProperty``. What was recorded is true per
key, so nothing is repeated beyond that batch. Open errors whose source row is gone are resolved
as ``source row missing`` at the end.

Rows sharing one CRM id (a duplicated email) are sent together after the others, oldest change
first, so the newest row's values win. One push per mapping at a time: PostgreSQL takes a session
advisory lock, SQLite a lock file next to the database file; a second push fails with
``CrmPushError`` before it sends anything.

Errors: ``CrmPushError`` (a ``LoadError``) for a response the push cannot account for or a push
already running; HTTP failures are the hook's :mod:`apisync.http.errors`; a bad mapping file is
``CrmMappingError``.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.dialects import postgresql, sqlite

from apisync.errors import CrmMappingError, CrmPushError
from apisync.load.audit import RunRecord, record_run
from apisync.load.connection import Warehouse
from apisync.spec import include_dir, read_yaml_document, validation_messages

__all__ = [
    "AUDIT_STREAM",
    "CRM_PUSH_ERRORS_TABLE",
    "CRM_PUSH_VERSIONS_TABLE",
    "CrmMapping",
    "CrmMappingError",
    "CrmPushError",
    "CrmPushResult",
    "crm_push_errors_table",
    "crm_push_versions_table",
    "load_mapping",
    "push_contacts",
]

log = logging.getLogger(__name__)

CRM_PUSH_VERSIONS_TABLE = "crm_push_versions"
CRM_PUSH_ERRORS_TABLE = "crm_push_errors"
LEGACY_WATERMARK_TABLE = "crm_push_state"  # the watermark before per-key state: never read, only noted
AUDIT_STREAM = "contacts_to_crm"
MAX_BATCH_INPUTS = 100  # HubSpot's batch limit; the sandbox answers 400 above it
READ_CHUNK_ROWS = 2000  # source rows read per query (memory stays flat)
KEY_CHUNK = 500  # values per IN (...) list
LOCAL_MISSING_ID = "MISSING_ID"
UNACCOUNTED = "UNACCOUNTED"
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_PAYLOAD_ENCODER = msgspec.json.Encoder(order="sorted")
# Labels of the bookkeeping columns the scan adds to the source columns.
_KEY, _ACCEPTED, _GROUP = "_crm_record_key", "_crm_accepted_hash", "_crm_id_group"


# ---------------------------------------------------------------- mapping


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CrmSource(_Strict):
    table: str = Field(min_length=1)
    key: str = Field(min_length=1)
    changed_column: str = Field(min_length=1)
    db_schema: str | None = Field(default=None, alias="schema")


class CrmDestination(_Strict):
    endpoint: str = Field(min_length=1)
    id_property: str = Field(min_length=1)
    id_column: str = Field(min_length=1)
    batch_size: int = Field(default=MAX_BATCH_INPUTS, ge=1, le=MAX_BATCH_INPUTS)
    nulls: Literal["omit", "clear"] = "omit"


class CrmMapping(_Strict):
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    description: str = ""
    source: CrmSource
    destination: CrmDestination
    properties: dict[str, str] = Field(min_length=1)  # CRM property -> warehouse column


def load_mapping(name_or_path: str | Path, *, crm_dir: Path | None = None) -> CrmMapping:
    """Parse and validate ``include/crm/<name>.yaml`` (or a path); errors name the file and field."""
    path, raw = read_yaml_document(
        name_or_path, crm_dir or include_dir() / "crm", CrmMappingError, "CRM mapping"
    )
    try:
        mapping = CrmMapping.model_validate(raw)
    except ValidationError as exc:
        raise CrmMappingError("invalid CRM mapping:\n  " + validation_messages(path, exc)) from exc
    if mapping.name != path.stem:
        raise CrmMappingError(f"{path}: field 'name': {mapping.name!r} must match the file name")
    return mapping


# ---------------------------------------------------------------- tables


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


# ---------------------------------------------------------------- result


class PushHook(Protocol):
    """What the push needs of :class:`apisync.http.ApiHook`."""

    def request(self, method: str, endpoint: str, *, json: Any = None) -> Any: ...

    def stats(self) -> dict[str, Any]: ...


@dataclass
class CrmPushResult:
    """Accounting of one push: ``selected == pushed_ok + errored`` is checked at the end."""

    mapping: str
    run_id: str
    scanned: int = 0  # source rows read and compared with the push state
    selected: int = 0  # rows sent (or recorded as errors without a call): changed + retried
    changed: int = 0  # never accepted, or payload differs from the accepted one (or its CRM id's group)
    retried: int = 0  # rows with an open crm_push_errors row
    pushed_ok: int = 0
    errored: int = 0
    resolved: int = 0  # open errors pushed ok this run (or whose row is gone)
    inserted: int = 0  # CRM results with new=true
    updated: int = 0  # CRM results with new=false
    batches: int = 0
    api_calls: int = 0
    api_429s: int = 0
    throttled_seconds: float = 0.0
    accepted_keys_before: int = 0  # keys with an accepted version in crm_push_versions
    accepted_keys_after: int = 0
    duration_seconds: float = 0.0
    error_categories: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Input:
    key: str
    crm_id: str | None
    payload: dict[str, Any]
    payload_hash: str = ""
    changed: Any = None  # the change column's value (audit interval, recorded as text)


@dataclass
class _BatchOutcome:
    applied: list[tuple[_Input, Any]] = field(default_factory=list)  # input, the CRM's "new" flag
    errors: list[tuple[_Input, str, str]] = field(default_factory=list)  # input, category, message


# ---------------------------------------------------------------- values


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive UTC (the loader writes UTC); PostgreSQL aware values."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _property_value(value: Any) -> Any:
    """CRM property values are strings; timestamps go as ISO-8601 UTC."""
    if type(value) is str:  # most values: skip the checks below (every row of a scan comes here)
        return value
    if isinstance(value, datetime):
        return _aware(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value if isinstance(value, str) else str(value)


def _payload_hash(payload: dict[str, Any]) -> str:
    """Hash of the input as sent: any mapped value, the id or the mapping itself changes it."""
    return hashlib.blake2b(_PAYLOAD_ENCODER.encode(payload), digest_size=16).hexdigest()


def _changed_text(value: Any) -> str | None:
    if value is None:
        return None
    return _aware(value).isoformat() if isinstance(value, datetime) else str(value)


def _as_text(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return column if isinstance(column.type, sa.String) else sa.cast(column, sa.Text)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple | set) else [value]


# ---------------------------------------------------------------- one push at a time

_IN_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_IN_PROCESS_LOCKS_GUARD = threading.Lock()


def _lock_id(name: str) -> int:
    """A stable signed 64-bit id for pg_try_advisory_lock."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def _exclusive(conn: sa.Connection, db_schema: str | None, mapping: str) -> Iterator[None]:
    """Hold the mapping's push lock on this warehouse, or fail before anything is sent.

    The lock lives as long as the session (PostgreSQL) or the process (SQLite lock file), so a
    killed worker never leaves it behind. Held across the whole push: two pushes interleaving
    their upserts could leave the CRM with an older payload than the one recorded as accepted.
    """
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


# ---------------------------------------------------------------- the push


class _Push:
    def __init__(self, warehouse: Warehouse, hook: PushHook, mapping: CrmMapping, run_id: str) -> None:
        self.dialect = warehouse.engine.dialect.name
        self.bookkeeping_schema = warehouse.db_schema
        self.source_schema = mapping.source.db_schema or warehouse.db_schema
        self.hook = hook
        self.mapping = mapping
        self.run_id = run_id
        self.result = CrmPushResult(mapping=mapping.name, run_id=run_id)
        self.versions = crm_push_versions_table(self.bookkeeping_schema)
        self.errors = crm_push_errors_table(self.bookkeeping_schema)
        self.open_keys: set[str] = set()  # keys of open error rows (errors are few)
        self.seen_open: set[str] = set()  # of those, keys still in the source table
        self.id_groups: set[str] = set()  # lower(id_column) values shared by several rows
        self.pending: list[_Input] = []  # selected, not sent yet (at most a batch or so)
        self.local_errors: list[tuple[_Input, str, str]] = []  # rows without a CRM id
        self.changed_range: tuple[datetime, datetime] | None = None  # of the rows sent (audit)
        self.conn: sa.Connection

    # -- setup ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        conn = self.conn
        with conn.begin():
            self.versions.create(conn, checkfirst=True)
            self.errors.create(conn, checkfirst=True)
            self._reflect_source(conn)
            if sa.inspect(conn).has_table(LEGACY_WATERMARK_TABLE, schema=self.bookkeeping_schema):
                log.info(
                    "table %s (the watermark of an older apisync) is no longer read; drop it when "
                    "convenient. Keys without a row in %s are pushed once (idempotent upserts).",
                    LEGACY_WATERMARK_TABLE,
                    CRM_PUSH_VERSIONS_TABLE,
                )
            self.open_keys = set(
                conn.execute(
                    sa.select(self.errors.c.record_key).where(
                        self.errors.c.mapping == self.mapping.name, self.errors.c.resolved_at.is_(None)
                    )
                ).scalars()
            )
            self.id_groups = set(
                conn.execute(
                    sa.select(self.group_expr)
                    .where(self.id_col.is_not(None))
                    .group_by(self.group_expr)
                    .having(sa.func.count() > 1)
                ).scalars()
            )
            self.result.accepted_keys_before = self._accepted_keys(conn)
        if self.id_groups:
            log.warning(
                "%s: %d %s values are shared by several rows; those rows go after the others, newest last",
                self.mapping.source.table,
                len(self.id_groups),
                self.mapping.destination.id_column,
            )

    def _reflect_source(self, conn: sa.Connection) -> None:
        source = self.mapping.source
        qualified = f"{self.source_schema + '.' if self.source_schema else ''}{source.table}"
        try:
            self.source = sa.Table(source.table, sa.MetaData(schema=self.source_schema), autoload_with=conn)
        except sa.exc.NoSuchTableError:
            raise CrmMappingError(
                f"mapping {self.mapping.name}: source table {qualified} does not exist in the warehouse"
            ) from None
        needed = {source.key, source.changed_column, self.mapping.destination.id_column}
        needed.update(self.mapping.properties.values())
        missing = sorted(c for c in needed if c not in self.source.c)
        if missing:
            raise CrmMappingError(
                f"mapping {self.mapping.name}: table {source.table} has no column(s) "
                f"{missing}; it has {sorted(self.source.c.keys())}"
            )
        if not self._key_is_unique(conn):
            raise CrmMappingError(
                f"mapping {self.mapping.name}: key {source.key!r} of table {qualified} is neither its "
                "primary key nor a unique index; the push state is kept per key"
            )
        self.columns = [self.source.c[c] for c in sorted(needed)]
        # Row positions: to_input runs for every row of the scan, tuple indexing keeps it cheap.
        position = {column.name: index for index, column in enumerate(self.columns)}
        self.property_positions = [(prop, position[col]) for prop, col in self.mapping.properties.items()]
        self.id_position = position[self.mapping.destination.id_column]
        self.changed_position = position[source.changed_column]
        self.key_position, self.accepted_position, self.group_position = range(
            len(self.columns), len(self.columns) + 3
        )
        self.key_col = self.source.c[source.key]
        self.changed_col = self.source.c[source.changed_column]
        self.id_col = self.source.c[self.mapping.destination.id_column]
        self.group_expr = sa.func.lower(_as_text(self.id_col))

    def _key_is_unique(self, conn: sa.Connection) -> bool:
        key = [self.mapping.source.key]
        if list(self.source.primary_key.columns.keys()) == key:
            return True
        inspector = sa.inspect(conn)
        table, schema = self.mapping.source.table, self.source_schema
        uniques = [u["column_names"] for u in inspector.get_unique_constraints(table, schema=schema)]
        uniques += [i["column_names"] for i in inspector.get_indexes(table, schema=schema) if i["unique"]]
        return key in [list(columns) for columns in uniques]

    def _accepted_keys(self, conn: sa.Connection) -> int:
        query = sa.select(sa.func.count()).where(self.versions.c.mapping == self.mapping.name)
        return int(conn.execute(query).scalar_one())

    # -- selection -----------------------------------------------------------------------------
    def _select(self) -> sa.Select[Any]:
        """Source columns + the record key as text + the accepted payload hash (NULL if none)."""
        versions = self.versions
        key_text = _as_text(self.key_col)
        joined = self.source.outerjoin(
            versions, sa.and_(versions.c.mapping == self.mapping.name, versions.c.record_key == key_text)
        )
        return sa.select(
            *self.columns,
            key_text.label(_KEY),
            versions.c.payload_hash.label(_ACCEPTED),
            self.group_expr.label(_GROUP),
        ).select_from(joined)

    def _read(self, query: sa.Select[Any]) -> Sequence[sa.Row[Any]]:
        """One short read transaction per chunk: SQLite writers are never blocked for long."""
        with self.conn.begin():
            return self.conn.execute(query).all()

    def push_changed(self) -> None:
        """Scan the source by key; queue rows not accepted as they are now (ids shared: see below)."""
        scan = self._select().order_by(self.key_col).limit(READ_CHUNK_ROWS)
        last: Any = None
        while True:
            rows = self._read(scan if last is None else scan.where(self.key_col > last))
            for row in rows:
                key = row[self.key_position]
                if key in self.open_keys:
                    self.seen_open.add(key)
                if row[self.group_position] in self.id_groups:
                    continue  # sent with its group by push_shared_ids, in change order
                item = self.to_input(row)
                reason = self._reason(item, row[self.accepted_position])
                if reason:
                    self.enqueue(item, reason)
            self.result.scanned += len(rows)
            if len(rows) < READ_CHUNK_ROWS:
                return
            last = rows[-1]._mapping[self.key_col.name]

    def push_shared_ids(self) -> None:
        """Rows sharing a CRM id: when one needs a push, all go, oldest change first (newest wins)."""
        changed = self.changed_col.nulls_first()
        for groups in _chunks(sorted(self.id_groups), KEY_CHUNK):
            query = self._select().where(self.group_expr.in_(groups))
            rows = self._read(query.order_by(self.group_expr, changed, self.key_col))
            for _, members in itertools.groupby(rows, key=lambda row: row[self.group_position]):
                items = [(self.to_input(row), row[self.accepted_position]) for row in members]
                reasons = [self._reason(item, accepted) for item, accepted in items]
                if any(reasons):
                    for (item, _), reason in zip(items, reasons, strict=True):
                        self.enqueue(item, reason or "changed")

    def _reason(self, item: _Input, accepted_hash: str | None) -> str | None:
        if item.key in self.open_keys:
            return "retried"
        return "changed" if accepted_hash != item.payload_hash else None

    def to_input(self, row: sa.Row[Any]) -> _Input:
        destination = self.mapping.destination
        properties: dict[str, Any] = {}
        for prop, position in self.property_positions:
            value = row[position]
            if value is None:
                if destination.nulls == "clear":
                    properties[prop] = ""
                continue
            properties[prop] = _property_value(value)
        crm_id = row[self.id_position]
        crm_id = None if crm_id is None or str(crm_id).strip() == "" else str(_property_value(crm_id))
        payload = {"idProperty": destination.id_property, "id": crm_id, "properties": properties}
        return _Input(
            key=row[self.key_position],
            crm_id=crm_id,
            payload=payload,
            payload_hash=_payload_hash(payload),
            changed=row[self.changed_position],
        )

    # -- CRM calls -----------------------------------------------------------------------------
    def enqueue(self, item: _Input, reason: str) -> None:
        if reason == "retried":
            self.result.retried += 1
        else:
            self.result.changed += 1
        self.result.selected += 1
        if isinstance(item.changed, datetime):
            at = _aware(item.changed)
            low, high = self.changed_range or (at, at)
            self.changed_range = (min(low, at), max(high, at))
        if item.crm_id is None:
            message = f"column {self.mapping.destination.id_column} is empty: nothing to upsert by"
            self.local_errors.append((item, LOCAL_MISSING_ID, message))
            if len(self.local_errors) >= MAX_BATCH_INPUTS:
                self.record(_BatchOutcome())
            return
        self.pending.append(item)
        while len(self.pending) >= self.mapping.destination.batch_size:
            self.send_next()

    def flush(self) -> None:
        while self.pending:
            self.send_next()
        if self.local_errors:
            self.record(_BatchOutcome())

    def send_next(self) -> None:
        """Send the next batch (unique CRM ids; HubSpot rejects a batch repeating one), record it."""
        batch: list[_Input] = []
        later: list[_Input] = []
        seen: set[str] = set()
        size = self.mapping.destination.batch_size
        for item in self.pending:
            ident = (item.crm_id or "").casefold()
            if len(batch) >= size or ident in seen:
                later.append(item)  # once full, everything waits: same-id order is kept
                continue
            seen.add(ident)
            batch.append(item)
        self.pending = later
        self.record(self.send(batch))

    def send(self, batch: list[_Input]) -> _BatchOutcome:
        endpoint = self.mapping.destination.endpoint
        response = self.hook.request("POST", endpoint, json={"inputs": [i.payload for i in batch]})
        self.result.batches += 1
        if response.status_code not in (200, 207):
            raise CrmPushError(
                f"POST {endpoint}: HTTP {response.status_code} is neither 200 nor 207 Multi-Status; "
                f"body: {response.text[:300]}"
            )
        try:
            body = response.json()
        except ValueError:
            raise CrmPushError(f"POST {endpoint}: HTTP {response.status_code} body is not JSON") from None
        results = body.get("results") or []
        errors = body.get("errors") or []
        if response.status_code == 200 and errors:
            log.warning("POST %s: HTTP 200 carrying %d errors; treating them as 207", endpoint, len(errors))
        by_id: dict[str, list[int]] = {}
        for index, item in enumerate(batch):
            by_id.setdefault((item.crm_id or "").casefold(), []).append(index)
        errored: dict[int, tuple[str, str]] = {}
        unmapped: list[str] = []
        for error in errors:
            category = str(error.get("category") or "ERROR")
            message = str(error.get("message") or json.dumps(error)[:1000])
            indexes = self._error_inputs(error, batch, by_id)
            if not indexes:
                unmapped.append(f"{category}: {message}")
                continue
            for index in indexes:
                errored[index] = (category, message)
        applied: set[int] = set()
        id_property = self.mapping.destination.id_property
        flags: dict[int, Any] = {}
        for result in results:
            props = result.get("properties") or {}
            ident = props.get(id_property)
            candidates = by_id.get(str(ident).casefold(), []) if ident is not None else []
            for index in candidates:
                if index not in errored:
                    applied.add(index)
                    flags[index] = result.get("new")
        rest = [i for i in range(len(batch)) if i not in errored and i not in applied]
        complete = response.status_code == 200 and not errors
        if rest and (complete or len(results) == len(batch) - len(errored)):
            applied.update(rest)  # every non-errored input was applied; results just did not echo ids
            rest = []
        message = "not in the CRM response's results or errors" + (
            f"; unmatched errors: {' | '.join(unmapped)[:1000]}" if unmapped else ""
        )
        outcome = _BatchOutcome(
            applied=[(batch[index], flags.get(index)) for index in sorted(applied)],
            errors=[(batch[index], *errored[index]) for index in sorted(errored)]
            + [(batch[index], UNACCOUNTED, message) for index in rest],
        )
        if unmapped and not rest:
            log.warning("POST %s: %d errors matched no input: %s", endpoint, len(unmapped), unmapped[:5])
        log.info(
            "batch %d: %d inputs, %d ok, %d errors (HTTP %d)",
            self.result.batches,
            len(batch),
            len(applied),
            len(errored) + len(rest),
            response.status_code,
        )
        return outcome

    @staticmethod
    def _error_inputs(error: dict[str, Any], batch: list[_Input], by_id: dict[str, list[int]]) -> set[int]:
        """Inputs an error is about: context inputIndex, then context ids, then ids in the message."""
        context = error.get("context") or {}
        found: set[int] = set()
        for value in _as_list(context.get("inputIndex")):
            try:
                index = int(value)
            except (TypeError, ValueError):
                continue
            if 0 <= index < len(batch):
                found.add(index)
        if found:
            return found
        for name in ("id", "ids", "email", "emails"):
            for value in _as_list(context.get(name)):
                found.update(by_id.get(str(value).casefold(), []))
        if found:
            return found
        message = str(error.get("message") or "")
        for ident, indexes in by_id.items():
            if ident and re.search(rf"(?<![\w.@+-]){re.escape(ident)}(?![\w@-])", message, re.IGNORECASE):
                found.update(indexes)
        return found

    # -- bookkeeping ---------------------------------------------------------------------------
    def _insert(self, table: sa.Table) -> Any:
        dialect_module = postgresql if self.dialect == "postgresql" else sqlite
        return dialect_module.insert(table)

    def record(self, outcome: _BatchOutcome) -> None:
        """One transaction per answered batch: accepted versions, error rows, resolved errors."""
        errors = outcome.errors + self.local_errors
        resolved = sorted({item.key for item, _ in outcome.applied} & self.open_keys)
        now = datetime.now(UTC)
        with self.conn.begin():
            if outcome.applied:
                self._record_accepted([item for item, _ in outcome.applied], now)
            if errors:
                self._record_errors(errors, now)
            if resolved:
                self._resolve(resolved, "pushed", now)
        self.local_errors = []
        result = self.result
        result.pushed_ok += len(outcome.applied)
        result.inserted += sum(1 for _, new in outcome.applied if new is True)
        result.updated += sum(1 for _, new in outcome.applied if new is False)
        result.errored += len(errors)
        result.resolved += len(resolved)
        for _, category, _ in errors:
            result.error_categories[category] = result.error_categories.get(category, 0) + 1

    def _record_accepted(self, items: list[_Input], now: datetime) -> None:
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
                "mapping": self.mapping.name,
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

    def _record_errors(self, errors: list[tuple[_Input, str, str]], now: datetime) -> None:
        """New error: attempts 1; still open: attempts + 1; resolved before: a new episode."""
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
                "mapping": self.mapping.name,
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

    def _resolve(self, keys: list[str], resolution: str, now: datetime) -> None:
        for chunk in _chunks(keys, KEY_CHUNK):
            self.conn.execute(
                self.errors.update()
                .where(
                    self.errors.c.mapping == self.mapping.name,
                    self.errors.c.record_key.in_(chunk),
                    self.errors.c.resolved_at.is_(None),
                )
                .values(resolved_at=now, resolved_run_id=self.run_id, resolution=resolution)
            )

    def finish(self) -> None:
        """Resolve the open errors whose row is gone; count the accepted keys."""
        vanished = sorted(self.open_keys - self.seen_open)
        with self.conn.begin():
            if vanished:
                self._resolve(vanished, "source row missing", datetime.now(UTC))
            self.result.accepted_keys_after = self._accepted_keys(self.conn)
        self.result.resolved += len(vanished)


def push_contacts(
    warehouse: Warehouse,
    hook: PushHook,
    mapping: CrmMapping,
    run_id: str,
    *,
    audit: bool = True,
) -> CrmPushResult:
    """Push the mapping's rows the CRM does not hold as they are now; return the accounting.

    ``warehouse`` holds the source table and the state tables (its ``db_schema``); ``hook`` is an
    :class:`~apisync.http.ApiHook` whose connection declares the upsert path idempotent. Raises the
    hook's errors (e.g. ``ApiAuthError`` on 401) or :class:`CrmPushError`; batches answered before
    the failure stay recorded, the one in flight is sent again by the next run. With ``audit`` a
    ``sync_runs`` row is written, on failure too.
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    stats_before = dict(hook.stats())
    push = _Push(warehouse, hook, mapping, run_id)
    result = push.result
    try:
        with warehouse.engine.connect() as conn:
            push.conn = conn
            with _exclusive(conn, warehouse.db_schema, mapping.name):
                push.prepare()
                push.push_changed()
                push.push_shared_ids()
                push.flush()
                push.finish()
        if result.selected != result.pushed_ok + result.errored:
            raise CrmPushError(
                f"mapping {mapping.name}: {result.selected} rows selected but {result.pushed_ok} pushed "
                f"ok + {result.errored} errored"
            )
        _take_stats(result, stats_before, hook.stats())
    except Exception as exc:
        _take_stats(result, stats_before, hook.stats())
        result.duration_seconds = round(time.perf_counter() - started, 3)
        if audit:
            _audit(warehouse, push, started_at, status="failed", error=f"{type(exc).__name__}: {exc}")
            exc.apisync_audited = True  # type: ignore[attr-defined]
        raise
    result.duration_seconds = round(time.perf_counter() - started, 3)
    log.info(
        "%s: %d scanned, %d selected (%d changed, %d retried): %d ok, %d errored, %d resolved; "
        "%d calls, %d x 429; accepted keys %d -> %d",
        mapping.name,
        result.scanned,
        result.selected,
        result.changed,
        result.retried,
        result.pushed_ok,
        result.errored,
        result.resolved,
        result.api_calls,
        result.api_429s,
        result.accepted_keys_before,
        result.accepted_keys_after,
    )
    if audit:
        _audit(warehouse, push, started_at, status="success")
    return result


def _take_stats(result: CrmPushResult, before: dict[str, Any], after: dict[str, Any]) -> None:
    result.api_calls = int(after.get("requests", 0) - before.get("requests", 0))
    result.api_429s = int(after.get("r429", 0) - before.get("r429", 0))
    result.throttled_seconds = round(float(after.get("throttled_s", 0) - before.get("throttled_s", 0)), 3)


def _audit(
    warehouse: Warehouse, push: _Push, started_at: datetime, *, status: str, error: str | None = None
) -> None:
    """The run's sync_runs row; interval = the change-column range of the rows sent (else start)."""
    result = push.result
    start, end = push.changed_range or (started_at, started_at)
    inserted_updated = result.inserted + result.updated
    try:
        record_run(
            warehouse.engine,
            RunRecord(
                stream=AUDIT_STREAM,
                interval_start=start,
                interval_end=end,
                run_id=result.run_id,
                status=status,
                destination_table=f"crm:{push.mapping.destination.endpoint}",
                records_pulled=result.selected,
                records_quarantined=result.errored,
                records_inserted=result.inserted,
                records_updated=result.updated,
                records_unchanged=max(result.pushed_ok - inserted_updated, 0),
                api_calls=result.api_calls,
                api_429s=result.api_429s,
                throttled_seconds=result.throttled_seconds,
                duration_seconds=result.duration_seconds,
                error=error,
            ),
            warehouse.db_schema,
        )
    except Exception:
        if status == "success":
            raise
        log.exception("could not write the failed run's sync_runs row")
