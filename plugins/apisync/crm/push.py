"""Push new/changed warehouse rows to a CRM batch-upsert endpoint, losing nothing.

A push reads the mapping's whole source table in key order, a chunk at a time (memory stays
flat), left-joined to the push state (:mod:`apisync.crm.state`), and sends every row that was
never accepted, whose payload differs from the accepted one, or that has an open error. So rows a
backfill or a late run writes with an *older* change value, a property fixed in place and a
property added to the mapping are all pushed; rows whose payload did not change are not.

Rows go in batches of at most ``batch_size`` through the rate-limited hook. Once the CRM has
answered a batch, :func:`~apisync.crm.reconcile.reconcile` says which inputs it accepted and
which it rejected, and that outcome is recorded in one transaction: the accepted payload hashes,
the rejected inputs (with attempts), and the open errors it resolved. A crash or a failed call
(401, 400, retries exhausted) records nothing for the batch in flight, so the next run sends it
again; upserts are idempotent by ``idProperty``. Open errors whose source row is gone are resolved
as ``source row missing`` at the end.

Rows sharing one CRM id (a duplicated email) are sent together after the others, oldest change
first, so the newest row's values win. The whole push holds the mapping's lock
(:mod:`apisync.crm.lock`). The push writes no ``sync_runs`` row: it returns its accounting, and
the pipeline records the run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import msgspec
import sqlalchemy as sa

from apisync.crm.lock import exclusive
from apisync.crm.mapping import MAX_BATCH_INPUTS, CrmMapping
from apisync.crm.reconcile import reconcile
from apisync.crm.state import KEY_CHUNK, PushInput, PushState, as_utc, chunked
from apisync.errors import CrmMappingError, CrmPushError

__all__ = ["LOCAL_MISSING_ID", "READ_CHUNK_ROWS", "CrmPushResult", "PushHook", "push_changes"]

log = logging.getLogger(__name__)

READ_CHUNK_ROWS = 2000  # source rows read per query (memory stays flat)
LOCAL_MISSING_ID = "MISSING_ID"  # category of a row without a CRM id: recorded, never sent
_PAYLOAD_ENCODER = msgspec.json.Encoder(order="sorted")
# Labels of the bookkeeping columns the scan adds to the source columns.
_KEY, _ACCEPTED, _GROUP = "_crm_record_key", "_crm_accepted_hash", "_crm_id_group"


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
    throttled_seconds: float = 0.0  # waits for the rate limiter's budget only
    backoff_seconds: float = 0.0  # sleeps backing off after a 429, 5xx or network error
    accepted_keys_before: int = 0  # keys with an accepted version in crm_push_versions
    accepted_keys_after: int = 0
    duration_seconds: float = 0.0
    error_categories: dict[str, int] = field(default_factory=dict)
    changed_from: datetime | None = None  # range of the change column over the rows selected
    changed_to: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (XCom): timestamps as ISO-8601."""
        values = asdict(self)
        for name in ("changed_from", "changed_to"):
            values[name] = values[name].isoformat() if values[name] else None
        return values


def push_changes(
    engine: sa.Engine,
    hook: PushHook,
    mapping: CrmMapping,
    run_id: str,
    *,
    db_schema: str | None = None,
    result: CrmPushResult | None = None,
) -> CrmPushResult:
    """Push the mapping's rows the CRM does not hold as they are now; return the accounting.

    ``engine`` is the warehouse holding the source table and the state tables (in ``db_schema``);
    ``hook`` is an :class:`~apisync.http.ApiHook` whose connection declares the upsert path
    idempotent. Raises the hook's errors (e.g. ``ApiAuthError`` on 401), :class:`CrmPushError` or
    :class:`CrmMappingError`; batches answered before the failure stay recorded, the one in flight
    is sent again by the next run. Pass ``result`` to keep the counts of a push that raises.
    """
    result = result or CrmPushResult(mapping=mapping.name, run_id=run_id)
    started = time.perf_counter()
    stats_before = dict(hook.stats())
    try:
        with engine.connect() as conn, exclusive(conn, db_schema, mapping.name):
            push = _Push(conn, hook, mapping, run_id, db_schema, result)
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
    finally:
        _take_stats(result, stats_before, hook.stats())
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
    return result


def _take_stats(result: CrmPushResult, before: dict[str, Any], after: dict[str, Any]) -> None:
    result.api_calls = int(after.get("requests", 0) - before.get("requests", 0))
    result.api_429s = int(after.get("r429", 0) - before.get("r429", 0))
    result.throttled_seconds = round(float(after.get("throttled_s", 0) - before.get("throttled_s", 0)), 3)
    result.backoff_seconds = round(float(after.get("backoff_s", 0) - before.get("backoff_s", 0)), 3)


# ---------------------------------------------------------------- values


def _property_value(value: Any) -> Any:
    """CRM property values are strings; timestamps go as ISO-8601 UTC."""
    if type(value) is str:  # most values: skip the checks below (every row of a scan comes here)
        return value
    if isinstance(value, datetime):
        return as_utc(value).isoformat().replace("+00:00", "Z")
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


def _as_text(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return column if isinstance(column.type, sa.String) else sa.cast(column, sa.Text)


# ---------------------------------------------------------------- the push


class _Push:
    def __init__(
        self,
        conn: sa.Connection,
        hook: PushHook,
        mapping: CrmMapping,
        run_id: str,
        db_schema: str | None,
        result: CrmPushResult,
    ) -> None:
        self.conn = conn
        self.source_schema = mapping.source.db_schema or db_schema
        self.hook = hook
        self.mapping = mapping
        self.result = result
        self.state = PushState(conn, mapping.name, run_id, db_schema)
        self.versions = self.state.versions
        self.open_keys: set[str] = set()  # keys of open error rows (errors are few)
        self.seen_open: set[str] = set()  # of those, keys still in the source table
        self.id_groups: set[str] = set()  # lower(id_column) values shared by several rows
        self.pending: list[PushInput] = []  # selected, not sent yet (at most a batch or so)
        self.local_errors: list[tuple[PushInput, str, str]] = []  # rows without a CRM id

    # -- setup ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        conn = self.conn
        with conn.begin():
            self.state.create()
            self._reflect_source(conn)
            self.open_keys = self.state.open_error_keys()
            self.id_groups = set(
                conn.execute(
                    sa.select(self.group_expr)
                    .where(self.id_col.is_not(None))
                    .group_by(self.group_expr)
                    .having(sa.func.count() > 1)
                ).scalars()
            )
            self.result.accepted_keys_before = self.state.accepted_keys()
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
        uniques: list[Sequence[str | None]] = [
            u["column_names"] for u in inspector.get_unique_constraints(table, schema=schema)
        ]
        uniques += [i["column_names"] for i in inspector.get_indexes(table, schema=schema) if i["unique"]]
        return key in [list(columns) for columns in uniques]

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
        for groups in chunked(sorted(self.id_groups), KEY_CHUNK):
            query = self._select().where(self.group_expr.in_(groups))
            rows = self._read(query.order_by(self.group_expr, changed, self.key_col))
            for _, members in itertools.groupby(rows, key=lambda row: row[self.group_position]):
                items = [(self.to_input(row), row[self.accepted_position]) for row in members]
                reasons = [self._reason(item, accepted) for item, accepted in items]
                if any(reasons):
                    for (item, _), reason in zip(items, reasons, strict=True):
                        self.enqueue(item, reason or "changed")

    def _reason(self, item: PushInput, accepted_hash: str | None) -> str | None:
        if item.key in self.open_keys:
            return "retried"
        return "changed" if accepted_hash != item.payload_hash else None

    def to_input(self, row: sa.Row[Any]) -> PushInput:
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
        return PushInput(
            key=row[self.key_position],
            crm_id=crm_id,
            payload=payload,
            payload_hash=_payload_hash(payload),
            changed=row[self.changed_position],
        )

    # -- CRM calls -----------------------------------------------------------------------------
    def enqueue(self, item: PushInput, reason: str) -> None:
        result = self.result
        if reason == "retried":
            result.retried += 1
        else:
            result.changed += 1
        result.selected += 1
        if isinstance(item.changed, datetime):
            at = as_utc(item.changed)
            result.changed_from = min(result.changed_from or at, at)
            result.changed_to = max(result.changed_to or at, at)
        if item.crm_id is None:
            message = f"column {self.mapping.destination.id_column} is empty: nothing to upsert by"
            self.local_errors.append((item, LOCAL_MISSING_ID, message))
            if len(self.local_errors) >= MAX_BATCH_INPUTS:
                self.record([], [])
            return
        self.pending.append(item)
        while len(self.pending) >= self.mapping.destination.batch_size:
            self.send_next()

    def flush(self) -> None:
        while self.pending:
            self.send_next()
        if self.local_errors:
            self.record([], [])

    def send_next(self) -> None:
        """Send the next batch (unique CRM ids; HubSpot rejects a batch repeating one), record it."""
        batch: list[PushInput] = []
        later: list[PushInput] = []
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
        self.send(batch)

    def send(self, batch: list[PushInput]) -> None:
        """One call; the reply reconciled with the batch and recorded (nothing if it cannot be)."""
        destination = self.mapping.destination
        inputs = [item.payload for item in batch]
        response = self.hook.request("POST", destination.endpoint, json={"inputs": inputs})
        self.result.batches += 1
        outcome = reconcile(
            response.status_code,
            response.content,
            [item.crm_id for item in batch],
            id_property=destination.id_property,
            endpoint=destination.endpoint,
        )
        for note in outcome.notes:
            log.warning("%s", note)
        log.info(
            "batch %d: %d inputs, %d ok, %d errors (HTTP %d)",
            self.result.batches,
            len(batch),
            len(outcome.accepted),
            len(outcome.rejected),
            response.status_code,
        )
        self.record(
            [(batch[a.index], a.new) for a in outcome.accepted],
            [(batch[r.index], r.category, r.message) for r in outcome.rejected],
        )

    # -- bookkeeping ---------------------------------------------------------------------------
    def record(
        self, applied: Sequence[tuple[PushInput, bool | None]], rejected: Sequence[tuple[PushInput, str, str]]
    ) -> None:
        """One transaction per answered batch: accepted versions, error rows, resolved errors."""
        errors = [*rejected, *self.local_errors]
        resolved = sorted({item.key for item, _ in applied} & self.open_keys)
        now = datetime.now(UTC)
        with self.conn.begin():
            if applied:
                self.state.record_accepted([item for item, _ in applied], now)
            if errors:
                self.state.record_errors(errors, now)
            if resolved:
                self.state.resolve(resolved, "pushed", now)
        self.local_errors = []
        result = self.result
        result.pushed_ok += len(applied)
        result.inserted += sum(1 for _, new in applied if new is True)
        result.updated += sum(1 for _, new in applied if new is False)
        result.errored += len(errors)
        result.resolved += len(resolved)
        for _, category, _ in errors:
            result.error_categories[category] = result.error_categories.get(category, 0) + 1

    def finish(self) -> None:
        """Resolve the open errors whose row is gone; count the accepted keys."""
        vanished = sorted(self.open_keys - self.seen_open)
        with self.conn.begin():
            if vanished:
                self.state.resolve(vanished, "source row missing", datetime.now(UTC))
            self.result.accepted_keys_after = self.state.accepted_keys()
        self.result.resolved += len(vanished)
