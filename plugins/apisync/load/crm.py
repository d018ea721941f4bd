"""Push new/changed warehouse rows to a CRM batch-upsert endpoint, losing nothing.

The mapping is data (``include/crm/<name>.yaml``). A push selects the rows whose change column is
past the watermark kept in ``crm_push_state`` plus the rows of still-open ``crm_push_errors``,
sends them in batches of at most ``batch_size`` through the rate-limited :class:`ApiHook`, and
accounts for every input: pushed ok (in the CRM's results) or errored (a per-record error of a
207 Multi-Status, or a row that could not be sent). Only then, in one transaction, are the error
rows written, errors that succeeded marked resolved, and the watermark moved. A crash or a failed
call (401, 400, retries exhausted) leaves the watermark where it was, so the next run repeats the
same upserts, which are idempotent by ``idProperty``.

Errors: ``CrmPushError`` (a ``LoadError``) for a response the push cannot account for; HTTP
failures are the hook's :mod:`apisync.http.errors`; a bad mapping file is ``CrmMappingError``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.dialects import postgresql

from apisync.load.audit import RunRecord, record_run
from apisync.load.connection import Warehouse
from apisync.load.errors import LoadError
from apisync.spec import include_dir, read_yaml_document, validation_messages

__all__ = [
    "AUDIT_STREAM",
    "CRM_PUSH_ERRORS_TABLE",
    "CRM_PUSH_STATE_TABLE",
    "CrmMapping",
    "CrmMappingError",
    "CrmPushError",
    "CrmPushResult",
    "crm_push_errors_table",
    "crm_push_state_table",
    "load_mapping",
    "push_contacts",
]

log = logging.getLogger(__name__)

CRM_PUSH_STATE_TABLE = "crm_push_state"
CRM_PUSH_ERRORS_TABLE = "crm_push_errors"
AUDIT_STREAM = "contacts_to_crm"
MAX_BATCH_INPUTS = 100  # HubSpot's batch limit; the sandbox answers 400 above it
READ_CHUNK_ROWS = 1000  # warehouse rows read per query (memory stays flat)
KEY_CHUNK = 500  # keys per IN (...) list
LOCAL_MISSING_ID = "MISSING_ID"
UNACCOUNTED = "UNACCOUNTED"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class CrmMappingError(LoadError, ValueError):
    """The mapping file is missing or invalid; the message names the file and the field."""


class CrmPushError(LoadError):
    """A CRM response could not be matched to the inputs sent; nothing was recorded or moved."""


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


def crm_push_state_table(db_schema: str | None = None) -> sa.Table:
    """One row per mapping: the change-column value up to which every row is accounted for."""
    return sa.Table(
        CRM_PUSH_STATE_TABLE,
        sa.MetaData(schema=db_schema),
        sa.Column("mapping", sa.Text(), primary_key=True),
        sa.Column("changed_column", sa.Text(), nullable=False),
        sa.Column("watermark", sa.Text()),  # ISO-8601 for timestamps, else the value as text
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
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
    """Accounting of one push: ``selected == pushed_ok + errored`` is checked before commit."""

    mapping: str
    run_id: str
    selected: int = 0
    changed: int = 0  # rows past the watermark
    retried: int = 0  # rows of open errors, not changed since
    pushed_ok: int = 0
    errored: int = 0
    resolved: int = 0  # open errors pushed ok this run (or whose row is gone)
    inserted: int = 0  # CRM results with new=true
    updated: int = 0  # CRM results with new=false
    batches: int = 0
    api_calls: int = 0
    api_429s: int = 0
    throttled_seconds: float = 0.0
    watermark_before: str | None = None
    watermark_after: str | None = None
    duration_seconds: float = 0.0
    error_categories: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Input:
    key: str
    crm_id: str | None
    payload: dict[str, Any]


@dataclass
class _Outcome:
    ok: int = 0  # inputs the CRM applied (record keys are unique within one push)
    ok_open: set[str] = field(default_factory=set)  # of those, keys with an open error row
    errors: dict[str, tuple[_Input, str, str]] = field(default_factory=dict)  # key -> input, cat, msg


# ---------------------------------------------------------------- values


def _property_value(value: Any) -> Any:
    """CRM property values are strings; timestamps go as ISO-8601 UTC."""
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value if isinstance(value, str) else str(value)


def _encode_watermark(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return str(value)


def _decode_watermark(text: str | None, column: sa.Column, dialect: str) -> Any:
    if text is None:
        return None
    if isinstance(column.type, sa.DateTime):
        value = datetime.fromisoformat(text)
        return _bind_datetime(value, dialect)
    if isinstance(column.type, sa.Integer):
        return int(text)
    if isinstance(column.type, sa.Float | sa.Numeric):
        return Decimal(text)
    return text


def _bind_datetime(value: datetime, dialect: str) -> datetime:
    """SQLite stores naive UTC text (the loader writes UTC); PostgreSQL compares aware values."""
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(tzinfo=None) if dialect == "sqlite" else value


def _audit_time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return fallback


# ---------------------------------------------------------------- the push


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Push:
    def __init__(self, warehouse: Warehouse, hook: PushHook, mapping: CrmMapping, run_id: str) -> None:
        self.engine = warehouse.engine
        self.dialect = self.engine.dialect.name
        self.bookkeeping_schema = warehouse.db_schema
        self.source_schema = mapping.source.db_schema or warehouse.db_schema
        self.hook = hook
        self.mapping = mapping
        self.run_id = run_id
        self.result = CrmPushResult(mapping=mapping.name, run_id=run_id)
        self.state = crm_push_state_table(self.bookkeeping_schema)
        self.errors = crm_push_errors_table(self.bookkeeping_schema)

    # -- warehouse reads ----------------------------------------------------------------------
    def prepare(self) -> None:
        with self.engine.begin() as conn:
            self.state.create(conn, checkfirst=True)
            self.errors.create(conn, checkfirst=True)
            try:
                self.source = sa.Table(
                    self.mapping.source.table, sa.MetaData(schema=self.source_schema), autoload_with=conn
                )
            except sa.exc.NoSuchTableError:
                raise CrmMappingError(
                    f"mapping {self.mapping.name}: source table "
                    f"{self.source_schema + '.' if self.source_schema else ''}{self.mapping.source.table} "
                    "does not exist in the warehouse"
                ) from None
            needed = {
                self.mapping.source.key,
                self.mapping.source.changed_column,
                self.mapping.destination.id_column,
                *self.mapping.properties.values(),
            }
            missing = sorted(c for c in needed if c not in self.source.c)
            if missing:
                raise CrmMappingError(
                    f"mapping {self.mapping.name}: table {self.mapping.source.table} has no column(s) "
                    f"{missing}; it has {sorted(self.source.c.keys())}"
                )
            self.columns = [self.source.c[c] for c in sorted(needed)]
            self.key_col = self.source.c[self.mapping.source.key]
            self.changed_col = self.source.c[self.mapping.source.changed_column]
            state = conn.execute(
                sa.select(self.state.c.watermark).where(self.state.c.mapping == self.mapping.name)
            ).first()
            self.has_state = state is not None
            self.watermark_text = state[0] if state else None
            self.watermark = _decode_watermark(self.watermark_text, self.changed_col, self.dialect)
            upper = sa.select(sa.func.max(self.changed_col))
            if self.watermark is not None:
                upper = upper.where(self.changed_col > self.watermark)
            self.high = conn.execute(upper).scalar()
            if isinstance(self.high, datetime):
                self.high = _bind_datetime(self.high, self.dialect)
            nulls = conn.execute(
                sa.select(sa.func.count()).select_from(self.source).where(self.changed_col.is_(None))
            ).scalar_one()
            if nulls:
                log.warning(
                    "%s: %d rows have no %s and are never selected as changed",
                    self.mapping.source.table,
                    nulls,
                    self.mapping.source.changed_column,
                )
            self.open_keys = set(
                conn.execute(
                    sa.select(self.errors.c.record_key).where(
                        self.errors.c.mapping == self.mapping.name, self.errors.c.resolved_at.is_(None)
                    )
                ).scalars()
            )
        self.result.watermark_before = self.watermark_text

    def _in_changed_range(self) -> Any:
        if self.high is None:
            return sa.false()
        upper = self.changed_col <= self.high
        return upper if self.watermark is None else sa.and_(self.changed_col > self.watermark, upper)

    def retry_rows(self) -> Iterator[list[sa.Row]]:
        """Current rows of open errors that the changed selection will not include."""
        found: set[str] = set()
        key = self.key_col if isinstance(self.key_col.type, sa.String) else sa.cast(self.key_col, sa.Text)
        for keys in _chunks(sorted(self.open_keys), KEY_CHUNK):
            with self.engine.connect() as conn:
                rows = list(
                    conn.execute(sa.select(*self.columns).where(key.in_(keys)).order_by(self.key_col))
                )
            found.update(str(row._mapping[self.key_col.name]) for row in rows)
            retry = [row for row in rows if not self._in_range(row)]
            if retry:
                yield retry
        self.vanished = self.open_keys - found

    def _in_range(self, row: sa.Row) -> bool:
        """Whether changed_rows() selects this row (watermark < value <= high)."""
        value = row._mapping[self.changed_col.name]
        if value is None or self.high is None:
            return False
        if isinstance(value, datetime):
            value = _bind_datetime(value, self.dialect)
        return value <= self.high and (self.watermark is None or value > self.watermark)

    def changed_rows(self) -> Iterator[list[sa.Row]]:
        """Rows in (watermark, high], keyset-paginated on (changed column, key)."""
        if self.high is None:
            return
        last: tuple[Any, Any] | None = None
        while True:
            query = sa.select(*self.columns).where(self._in_changed_range())
            if last is not None:
                query = query.where(
                    sa.or_(
                        self.changed_col > last[0],
                        sa.and_(self.changed_col == last[0], self.key_col > last[1]),
                    )
                )
            query = query.order_by(self.changed_col, self.key_col).limit(READ_CHUNK_ROWS)
            with self.engine.connect() as conn:
                rows = list(conn.execute(query))
            if not rows:
                return
            yield rows
            tail = rows[-1]._mapping
            last_changed = tail[self.changed_col.name]
            if isinstance(last_changed, datetime):
                last_changed = _bind_datetime(last_changed, self.dialect)
            last = (last_changed, tail[self.key_col.name])
            if len(rows) < READ_CHUNK_ROWS:
                return

    # -- CRM calls ----------------------------------------------------------------------------
    def to_input(self, row: sa.Row) -> _Input:
        values = row._mapping
        destination = self.mapping.destination
        properties: dict[str, Any] = {}
        for prop, column in self.mapping.properties.items():
            value = values[column]
            if value is None:
                if destination.nulls == "clear":
                    properties[prop] = ""
                continue
            properties[prop] = _property_value(value)
        crm_id = values[destination.id_column]
        crm_id = None if crm_id is None or str(crm_id).strip() == "" else str(_property_value(crm_id))
        payload = {"idProperty": destination.id_property, "id": crm_id, "properties": properties}
        return _Input(key=str(values[self.mapping.source.key]), crm_id=crm_id, payload=payload)

    def push_rows(self, rows: list[sa.Row], outcome: _Outcome) -> None:
        sendable: list[_Input] = []
        for row in rows:
            item = self.to_input(row)
            if item.crm_id is None:
                message = f"column {self.mapping.destination.id_column} is empty: nothing to upsert by"
                outcome.errors[item.key] = (item, LOCAL_MISSING_ID, message)
                continue
            sendable.append(item)
        for batch in self._batches(sendable):
            self.send(batch, outcome)

    def _batches(self, items: list[_Input]) -> Iterator[list[_Input]]:
        """Batches of unique CRM ids (HubSpot rejects a batch repeating one); order is kept."""
        pending = items
        size = self.mapping.destination.batch_size
        while pending:
            batch: list[_Input] = []
            seen: set[str] = set()
            later: list[_Input] = []
            for item in pending:
                ident = (item.crm_id or "").casefold()
                if len(batch) >= size or ident in seen:
                    later.append(item)  # once full, everything waits: same-id order is kept
                    continue
                seen.add(ident)
                batch.append(item)
            yield batch
            pending = later

    def send(self, batch: list[_Input], outcome: _Outcome) -> None:
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
        for index in applied:
            outcome.ok += 1
            if batch[index].key in self.open_keys:
                outcome.ok_open.add(batch[index].key)
            if flags.get(index) is True:
                self.result.inserted += 1
            elif flags.get(index) is False:
                self.result.updated += 1
        for index, (category, message) in errored.items():
            outcome.errors[batch[index].key] = (batch[index], category, message)
        for index in rest:
            message = "not in the CRM response's results or errors" + (
                f"; unmatched errors: {' | '.join(unmapped)[:1000]}" if unmapped else ""
            )
            outcome.errors[batch[index].key] = (batch[index], UNACCOUNTED, message)
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

    # -- the commit -----------------------------------------------------------------------------
    def commit(self, outcome: _Outcome, now: datetime) -> None:
        result = self.result
        resolved = outcome.ok_open | self.vanished
        with self.engine.begin() as conn:
            for key, (item, category, message) in outcome.errors.items():
                values = {
                    "crm_id": item.crm_id,
                    "payload": item.payload,
                    "category": category,
                    "message": message,
                    "run_id": self.run_id,
                    "last_seen_at": now,
                }
                where = (self.errors.c.mapping == self.mapping.name, self.errors.c.record_key == key)
                existing = conn.execute(sa.select(self.errors.c.resolved_at).where(*where)).first()
                if existing is None:
                    conn.execute(
                        self.errors.insert().values(
                            mapping=self.mapping.name, record_key=key, attempts=1, first_seen_at=now, **values
                        )
                    )
                elif existing[0] is None:
                    conn.execute(
                        self.errors.update()
                        .where(*where)
                        .values(attempts=self.errors.c.attempts + 1, **values)
                    )
                else:  # failed again after it was resolved: a new episode
                    conn.execute(
                        self.errors.update()
                        .where(*where)
                        .values(
                            attempts=1,
                            first_seen_at=now,
                            resolved_at=None,
                            resolved_run_id=None,
                            resolution=None,
                            **values,
                        )
                    )
            for keys in _chunks(sorted(resolved), KEY_CHUNK):
                conn.execute(
                    self.errors.update()
                    .where(
                        self.errors.c.mapping == self.mapping.name,
                        self.errors.c.record_key.in_(keys),
                        self.errors.c.resolved_at.is_(None),
                    )
                    .values(
                        resolved_at=now,
                        resolved_run_id=self.run_id,
                        resolution=sa.case(
                            (
                                self.errors.c.record_key.in_(sorted(self.vanished & set(keys))),
                                "source row missing",
                            ),
                            else_="pushed",
                        ),
                    )
                )
            new_text = _encode_watermark(self.high) if self.high is not None else self.watermark_text
            if self.high is not None:
                state_values = {
                    "changed_column": self.mapping.source.changed_column,
                    "watermark": new_text,
                    "run_id": self.run_id,
                    "moved_at": now,
                }
                if self.has_state:
                    moved = conn.execute(
                        self.state.update()
                        .where(
                            self.state.c.mapping == self.mapping.name,
                            self.state.c.watermark == self.watermark_text
                            if self.watermark_text is not None
                            else self.state.c.watermark.is_(None),
                        )
                        .values(**state_values)
                    ).rowcount
                    if moved != 1:
                        raise CrmPushError(
                            f"mapping {self.mapping.name}: the watermark moved during this push "
                            "(another push ran at the same time); nothing recorded, rerun to continue"
                        )
                else:
                    conn.execute(self.state.insert().values(mapping=self.mapping.name, **state_values))
            result.watermark_after = new_text
        result.resolved = len(resolved)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple | set) else [value]


def push_contacts(
    warehouse: Warehouse,
    hook: PushHook,
    mapping: CrmMapping,
    run_id: str,
    *,
    audit: bool = True,
) -> CrmPushResult:
    """Push the mapping's new/changed rows and open errors to the CRM; return the accounting.

    ``warehouse`` holds the source table and the state tables (its ``db_schema``); ``hook`` is an
    :class:`~apisync.http.ApiHook` whose connection declares the upsert path idempotent. Raises the
    hook's errors (e.g. ``ApiAuthError`` on 401) or :class:`CrmPushError` with the watermark and
    the error rows untouched. With ``audit`` a ``sync_runs`` row is written, on failure too.
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    stats_before = dict(hook.stats())
    push = _Push(warehouse, hook, mapping, run_id)
    result = push.result
    outcome = _Outcome()
    try:
        push.prepare()
        retry_batches = list(push.retry_rows())  # open errors are few: read them before pushing
        for rows in retry_batches:
            result.retried += len(rows)
            push.push_rows(rows, outcome)
        for rows in push.changed_rows():
            result.changed += len(rows)
            push.push_rows(rows, outcome)
        result.selected = result.changed + result.retried
        result.pushed_ok = outcome.ok
        result.errored = len(outcome.errors)
        if result.selected != result.pushed_ok + result.errored:
            raise CrmPushError(
                f"mapping {mapping.name}: {result.selected} rows selected but {result.pushed_ok} pushed "
                f"ok + {result.errored} errored; nothing recorded, the watermark stays"
            )
        for _, category, _ in outcome.errors.values():
            result.error_categories[category] = result.error_categories.get(category, 0) + 1
        _take_stats(result, stats_before, hook.stats())
        push.commit(outcome, datetime.now(UTC))
    except Exception as exc:
        _take_stats(result, stats_before, hook.stats())
        result.duration_seconds = round(time.perf_counter() - started, 3)
        if audit:
            _audit(warehouse, push, started_at, status="failed", error=f"{type(exc).__name__}: {exc}")
            exc.apisync_audited = True  # type: ignore[attr-defined]
        raise
    result.duration_seconds = round(time.perf_counter() - started, 3)
    log.info(
        "%s: %d selected (%d changed, %d retried): %d ok, %d errored, %d resolved; %d calls, %d x 429; "
        "watermark %s -> %s",
        mapping.name,
        result.selected,
        result.changed,
        result.retried,
        result.pushed_ok,
        result.errored,
        result.resolved,
        result.api_calls,
        result.api_429s,
        result.watermark_before,
        result.watermark_after,
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
    """The run's sync_runs row; interval = the watermark range pushed (start time when unknown)."""
    result = push.result
    start = _audit_time(getattr(push, "watermark", None), _EPOCH)
    end = _audit_time(getattr(push, "high", None), start) if getattr(push, "high", None) else start
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
