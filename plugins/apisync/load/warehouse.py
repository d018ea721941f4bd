"""Load validated parts into a warehouse table in one transaction.

Before the transaction, the key columns of all parts are read to find keys repeated across parts
(the latest cursor wins, see :mod:`apisync.load.dedupe`): superseded rows are never sent. Then,
by mode:

- ``merge``: upsert on the key; a row older than the stored one, or identical to it, is left
  alone, so replaying a window leaves the table byte-for-byte the same.
- ``replace_window``: delete the interval's rows (by cursor), then merge.
- ``append``: insert the deduplicated rows.

PostgreSQL: the target is locked against other writers (SHARE ROW EXCLUSIVE; readers go on) so
that what the load finds in it holds until commit. When no row of the batch can already be in the
target (a table this load creates, an empty one, append mode) the rows are COPYed straight into
it, and a table created here gets its primary key and indexes only after the rows are in.
Otherwise they are COPYed into a temporary staging table and merged from there in SQL. COPY uses
the binary format where it can (:mod:`apisync.load.pg_copy`). The children of every inserted or
updated parent replace that parent's old ones, COPYed straight into the child table.
SQLite: the same modes through a staging table filled with executemany, and INSERT ... ON CONFLICT.

The target, its child tables and the quarantine rows (written by the ``quarantine_writer`` the
pipeline passes) change in the same transaction, so a load killed half-way leaves the target
untouched and a retry neither duplicates nor loses rows. What must commit with the load or not at
all (the accounting check, the ``sync_runs`` row) is passed as ``in_transaction`` callables: one
raising rolls the whole load back. Two runs creating the same new table serialize on a lock
(:func:`apisync.staging.tables.table_exists_or_lock`): the second finds the first's table.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from apisync.load.dedupe import Winners, latest_per_key
from apisync.load.pg_copy import copy_parts, copy_target
from apisync.load.schema import add_keys, create_table, evolve_table
from apisync.spec import StreamSpec
from apisync.staging.columns import PARENT_ROW, POSITION, ROW
from apisync.staging.logical_types import sql_type
from apisync.staging.manifests import read_validated_manifest
from apisync.staging.parts import RowMask, read_part, row_flags
from apisync.staging.tables import table_exists_or_lock

__all__ = ["InTransaction", "LoadResult", "load"]

SEQ = "_apisync_seq"
NEW = "_apisync_new"  # in the table of rows to write: the key was not in the target
SQLITE_BATCH = 5_000


@dataclass
class LoadResult:
    table: str
    staged: int = 0
    deduped: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    child_rows: int = 0
    quarantined: int = 0
    seconds: float = 0.0

    @property
    def merged(self) -> int:
        """Rows the load merged into the target: inserted + updated + unchanged. A rerun of a
        window already loaded merges its rows again (unchanged); "loaded" counts them."""
        return self.inserted + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Work that commits with the load or not at all: gets the load's connection and its counts.
InTransaction = Callable[[sa.Connection, LoadResult], None]


@dataclass(frozen=True)
class _Batch:
    """One window's load: the stream, where its validated parts are, what survives dedupe."""

    spec: StreamSpec
    validated_dir: Any
    manifest: dict[str, Any]
    winners: Winners
    window: tuple[datetime, datetime]
    db_schema: str | None

    @property
    def columns(self) -> dict[str, str]:
        columns: dict[str, str] = self.manifest["columns"]
        return columns

    @property
    def parts(self) -> list[Any]:
        return [self.validated_dir / name for name in self.manifest["parts"]]

    @property
    def children(self) -> dict[str, dict[str, Any]]:
        children: dict[str, dict[str, Any]] = self.manifest.get("children", {})
        return children

    def child_parts(self, name: str) -> list[Any]:
        return [self.validated_dir / name / part for part in self.children[name]["parts"]]

    @property
    def mode(self) -> str:
        return self.spec.destination.write_mode

    @property
    def max_columns(self) -> int:
        return self.spec.max_columns + 16

    def target_keys(self) -> tuple[list[str] | None, list[str] | None]:
        """Primary key and indexed columns of the target table."""
        primary_key = self.spec.primary_key if self.mode != "append" else None
        return primary_key, [self.spec.cursor_field] if self.mode == "replace_window" else None

    def child_key(self) -> list[str] | None:
        return [a for a, _ in _parent_pairs(self.spec)] + [POSITION] if self.mode != "append" else None


def _tune_session(conn: sa.Connection) -> None:
    """PostgreSQL: memory for the merge's joins and the key builds, room for the staging tables
    in memory (only possible before a session's first temp table, hence the savepoint), and no
    commit flush wait for this bulk transaction."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
    # The merge joins and groups whole windows (1M staged rows and more): with the 4 MB default
    # those hash tables spill to disk in batches.
    conn.execute(sa.text("SET LOCAL work_mem TO '256MB'"))
    # A first load builds its keys after the rows are in: each sorts every key of the table.
    conn.execute(sa.text("SET LOCAL maintenance_work_mem TO '256MB'"))
    try:
        with conn.begin_nested():
            conn.execute(sa.text("SET LOCAL temp_buffers TO '1GB'"))
    except sa.exc.DBAPIError:
        pass


def _temp_table(name: str, *columns: sa.Column[Any]) -> sa.Table:
    """A temporary table (PostgreSQL drops it at commit at the latest)."""
    return sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


def _staging_table(name: str, columns: dict[str, str], extra: list[str]) -> sa.Table:
    return _temp_table(
        name,
        *(sa.Column(column, sql_type(kind), quote=True) for column, kind in columns.items()),
        *(sa.Column(column, sa.BigInteger()) for column in extra),
    )


def _create_temp(conn: sa.Connection, table: sa.Table) -> None:
    _drop_temp(conn, table)
    table.create(conn)


def _drop_temp(conn: sa.Connection, table: sa.Table) -> None:
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {conn.dialect.identifier_preparer.format_table(table)}"))


def _send_parts(
    conn: sa.Connection,
    table: sa.Table,
    parts: list[Any],
    columns: dict[str, str],
    extra: dict[str, str],
    keep: RowMask | None,
    sort_by: list[str] | None = None,
    created_here: bool = False,
) -> int:
    """Write the kept rows of ``parts`` into ``table``; return the rows written.

    PostgreSQL: COPY, part by part (FREEZE into a table ``created_here``, in this transaction).
    ``sort_by``: send each part in this order (an indexed table's key: its b-tree then fills page
    by page instead of being hit at random). SQLite: executemany in batches.
    """

    def read(path: Any) -> pa.Table:
        rows = read_part(path, columns, extra, keep)
        return rows.sort_by([(name, "ascending") for name in sort_by]) if sort_by else rows

    if conn.dialect.name == "postgresql":
        preparer = conn.dialect.identifier_preparer
        cursor = _driver_cursor(conn)
        try:
            target = copy_target(
                cursor,
                preparer.format_table(table),
                [*columns, *extra.values()],
                preparer.quote_identifier,
                freeze=created_here,
            )
            return copy_parts(cursor, target, parts, read)
        finally:
            cursor.close()
    rows = 0
    insert = table.insert()
    for path in parts:
        for batch in read(path).to_batches(max_chunksize=SQLITE_BATCH):
            records = batch.to_pylist()
            if records:
                conn.execute(insert, records)
            rows += batch.num_rows
    return rows


def _driver_cursor(conn: sa.Connection) -> Any:
    """A cursor of the driver's own connection: COPY needs psycopg2's ``copy_expert``."""
    driver_connection = conn.connection.dbapi_connection
    assert driver_connection is not None, "an open Connection always has its DB-API connection"
    return driver_connection.cursor()


def _key_match(left: sa.FromClause, right: sa.FromClause, pairs: list[tuple[str, str]]) -> Any:
    return sa.and_(*(left.c[a] == right.c[b] for a, b in pairs))


def _parent_pairs(spec: StreamSpec) -> list[tuple[str, str]]:
    """(column in a child table, key column of the parent) for every key column."""
    return [(f"{spec.name}_{k}", k) for k in spec.primary_key]


def _delete_children(
    conn: sa.Connection, spec: StreamSpec, child: sa.Table, parents: sa.Table, *where: Any
) -> None:
    """Delete the rows of ``child`` that belong to a row of ``parents`` (one matching ``where``)."""
    of_parents = sa.select(sa.literal(1)).where(_key_match(child, parents, _parent_pairs(spec)), *where)
    conn.execute(sa.delete(child).where(of_parents.exists()))


def _bounds(spec: StreamSpec, columns: dict[str, str], window: tuple[datetime, datetime]) -> tuple[Any, Any]:
    if columns.get(spec.cursor_field) == "integer":
        return int(window[0].timestamp()), int(window[1].timestamp())
    return window


def _child_table_names(spec: StreamSpec) -> list[str]:
    return [a.table for a in spec.arrays.values() if a.mode == "child_table" and a.table]


def _delete_window(
    conn: sa.Connection, spec: StreamSpec, target: sa.Table, children: list[sa.Table], bounds: tuple[Any, Any]
) -> int:
    """replace_window: delete the interval's rows of the target and their children; return the rows."""
    cursor = target.c[spec.cursor_field]
    in_window = sa.and_(cursor >= bounds[0], cursor < bounds[1])
    for child in children:
        _delete_children(conn, spec, child, target, in_window)
    deleted = conn.execute(sa.delete(target).where(in_window)).rowcount
    return max(deleted or 0, 0)


def _empty_window(
    conn: sa.Connection,
    spec: StreamSpec,
    result: LoadResult,
    window: tuple[datetime, datetime],
    db_schema: str | None,
) -> None:
    """Nothing valid arrived (a quiet hour): no table to create, but replace_window still empties it."""
    if spec.destination.write_mode != "replace_window" or not sa.inspect(conn).has_table(
        spec.destination.table, schema=db_schema
    ):
        return
    target = sa.Table(spec.destination.table, sa.MetaData(schema=db_schema), autoload_with=conn)
    kind = "integer" if isinstance(target.c[spec.cursor_field].type, sa.Integer) else "timestamp"
    children = [
        sa.Table(name, sa.MetaData(schema=db_schema), autoload_with=conn)
        for name in _child_table_names(spec)
        if sa.inspect(conn).has_table(name, schema=db_schema)
    ]
    bounds = _bounds(spec, {spec.cursor_field: kind}, window)
    result.deleted = _delete_window(conn, spec, target, children, bounds)


def load(
    spec: StreamSpec,
    engine: sa.Engine,
    validated_dir: Any,
    *,
    window: tuple[datetime, datetime],
    run_id: str,
    db_schema: str | None = None,
    quarantine_writer: Callable[[sa.Connection], int] | None = None,
    in_transaction: Sequence[InTransaction] = (),
) -> LoadResult:
    """Load a validated window into ``spec.destination.table`` (and its child tables) atomically.

    ``quarantine_writer`` writes the window's quarantine rows in the same transaction and returns
    how many (``result.quarantined``): the pipeline passes
    :func:`apisync.quality.quarantine.quarantine_writer`, so load needs no knowledge of quality.
    Then each of ``in_transaction`` runs, in order, with the connection and the counts, before
    the commit: an exception there rolls the load back.
    """
    started = time.perf_counter()
    manifest = read_validated_manifest(validated_dir)
    db_schema = spec.destination.db_schema or db_schema
    table_name = spec.destination.table
    result = LoadResult(table=f"{db_schema}.{table_name}" if db_schema else table_name)
    batch = None
    if manifest["columns"]:
        parts = [validated_dir / name for name in manifest["parts"]]
        winners = latest_per_key(parts, manifest["columns"], spec.primary_key, spec.cursor_field)
        result.staged, result.deduped = winners.staged, winners.staged - winners.kept
        batch = _Batch(spec, validated_dir, manifest, winners, window, db_schema)
    with engine.begin() as conn:
        if batch is None:
            _empty_window(conn, spec, result, window, db_schema)
        else:
            _tune_session(conn)
            if conn.dialect.name == "postgresql":
                _load_postgres(conn, batch, result)
            else:
                _load_sqlite(conn, batch, result)
            result.unchanged = batch.winners.kept - result.inserted - result.updated
        if quarantine_writer is not None:
            result.quarantined = quarantine_writer(conn)
        result.seconds = round(time.perf_counter() - started, 3)
        for work in in_transaction:
            work(conn, result)
    return result


def _open_table(
    conn: sa.Connection,
    batch: _Batch,
    name: str,
    columns: dict[str, str],
    primary_key: list[str] | None,
    indexes: list[str] | None = None,
) -> tuple[sa.Table, bool]:
    """The table to load, evolved to the data's columns; True when this load creates it (PostgreSQL:
    without its keys yet, see :func:`create_table`)."""
    if table_exists_or_lock(conn, name, batch.db_schema):
        table = evolve_table(conn, name, columns, db_schema=batch.db_schema, max_columns=batch.max_columns)
        return table, False
    table = create_table(
        conn,
        name,
        columns,
        primary_key=primary_key,
        db_schema=batch.db_schema,
        max_columns=batch.max_columns,
        indexes=indexes,
        keys_later=conn.dialect.name == "postgresql",
    )
    return table, True


def _has_rows(conn: sa.Connection, table: sa.Table) -> bool:
    return bool(conn.execute(sa.select(sa.exists(sa.select(sa.literal(1)).select_from(table)))).scalar())


def _load_postgres(conn: sa.Connection, batch: _Batch, result: LoadResult) -> None:
    """Write the batch by the cheapest path its target allows (see the module docstring)."""
    spec, mode = batch.spec, batch.mode
    primary_key, indexes = batch.target_keys()
    target, target_is_new = _open_table(
        conn, batch, spec.destination.table, batch.columns, primary_key, indexes
    )
    preparer = conn.dialect.identifier_preparer
    if not target_is_new and mode != "append":
        # Other writers wait until commit (readers do not): the rows this load finds in the
        # target, and so its insert/update counts, stay true until the transaction ends.
        conn.execute(sa.text(f"LOCK TABLE {preparer.format_table(target)} IN SHARE ROW EXCLUSIVE MODE"))
    children = {
        name: _open_table(conn, batch, name, entry["columns"], batch.child_key())
        for name, entry in batch.children.items()
    }
    if mode == "replace_window" and not target_is_new:
        bounds = _bounds(spec, batch.columns, batch.window)
        result.deleted = _delete_window(conn, spec, target, [child for child, _ in children.values()], bounds)

    temps: list[sa.Table] = []
    if mode == "append" or target_is_new or not _has_rows(conn, target):
        # No key of the batch is in the target: every kept row is an insert.
        result.inserted = _send_parts(
            conn, target, batch.parts, batch.columns, {}, batch.winners.mask(ROW), created_here=target_is_new
        )
        children_kept = batch.winners.mask(PARENT_ROW)
        parents = target  # after this insert the target holds only this batch
    else:
        staging = _staging_table(f"_apisync_stg_{target.name}", batch.columns, [SEQ])
        _create_temp(conn, staging)
        rows = batch.winners.mask(ROW)
        _send_parts(conn, staging, batch.parts, batch.columns, {ROW: SEQ}, rows, created_here=True)
        _analyze(conn, staging, [*spec.primary_key, spec.cursor_field])
        parents = _merge(conn, target, staging, batch.columns, spec.primary_key, spec.cursor_field, result)
        children_kept = RowMask(PARENT_ROW, _kept_parents(conn, parents))
        temps += [staging, parents]

    for name, (child, child_is_new) in children.items():
        if mode != "append" and not child_is_new:
            _delete_children(conn, spec, child, parents)
        if not result.inserted and not result.updated:
            continue  # no parent row inserted or updated: no child row to write
        result.child_rows += _send_children(conn, batch, name, child, child_is_new, children_kept)

    if target_is_new:
        add_keys(conn, target, primary_key=primary_key, indexes=indexes)
    for child, child_is_new in children.values():
        if child_is_new:
            add_keys(conn, child, primary_key=batch.child_key())
    for temp in temps:
        _drop_temp(conn, temp)


def _kept_parents(conn: sa.Connection, changed: sa.Table) -> np.ndarray:
    """Row numbers of the inserted or updated parent rows, as a mask (PostgreSQL).

    Read back with COPY TO: a million numbers as one CSV stream, not a million result rows.
    """
    kept = sa.select(changed.c[SEQ])
    query = str(kept.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = _driver_cursor(conn)
    try:
        buffer = io.BytesIO()
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", buffer)
    finally:
        cursor.close()
    if not buffer.tell():
        return np.zeros(0, dtype=bool)
    buffer.seek(0)
    rows = pa_csv.read_csv(
        buffer,
        read_options=pa_csv.ReadOptions(column_names=[SEQ], use_threads=False),
        convert_options=pa_csv.ConvertOptions(column_types={SEQ: pa.int64()}),
    )
    return row_flags(rows.column(SEQ).to_numpy())


def _analyze(conn: sa.Connection, table: sa.Table, columns: list[str]) -> None:
    """Row count and key statistics for a temporary table (autovacuum never sees those), sampled
    on the join columns only: the text and JSON columns' statistics would cost more than they help."""
    preparer = conn.dialect.identifier_preparer
    column_sql = ", ".join(preparer.quote_identifier(column) for column in dict.fromkeys(columns))
    conn.execute(sa.text(f"ANALYZE {preparer.format_table(table)} ({column_sql})"))


def _send_children(
    conn: sa.Connection, batch: _Batch, name: str, child: sa.Table, created_here: bool, keep: RowMask | None
) -> int:
    """PostgreSQL: COPY the kept parents' child rows straight into the child table; return how many.

    Into a table created by this load as they come (its key is built afterwards); into an
    existing one each part in key order, so its key's b-tree is walked rather than hit at random.
    """
    columns = batch.children[name]["columns"]
    sort_by = None if created_here else batch.child_key()
    return _send_parts(conn, child, batch.child_parts(name), columns, {}, keep, sort_by, created_here)


def _pick_changed(
    target: sa.Table,
    staging: sa.Table,
    columns: dict[str, str],
    pk: list[str],
    cursor_field: str,
    selected: list[str],
) -> sa.Select[Any]:
    """``selected`` staged columns of the rows to write, with ``NEW`` (a key not in the target):
    new keys, and keys whose staged row is at least as new as the stored one and differs from it
    in a business column (lineage alone does not count as a change)."""
    lineage = {c for c in columns if c.startswith("_")}
    business = [c for c in columns if c not in lineage and c not in pk]
    existing = target.alias("existing")
    is_new = sa.and_(*(existing.c[k].is_(None) for k in pk))
    newer = sa.or_(existing.c[cursor_field].is_(None), staging.c[cursor_field] >= existing.c[cursor_field])
    same = sa.and_(*(existing.c[c].is_not_distinct_from(staging.c[c]) for c in business if c in existing.c))
    return (
        sa.select(*(staging.c[c] for c in selected), is_new.label(NEW))
        .select_from(staging.outerjoin(existing, _key_match(staging, existing, [(k, k) for k in pk])))
        .where(sa.or_(is_new, sa.and_(newer, sa.not_(same))))
    )


def _changed_rows(
    conn: sa.Connection,
    target: sa.Table,
    staging: sa.Table,
    columns: dict[str, str],
    pk: list[str],
    cursor_field: str,
    selected: list[str],
    result: LoadResult,
) -> sa.Table:
    """A temporary table of the rows to write (see :func:`_pick_changed`); counts them into ``result``."""
    changed = _temp_table(
        f"_apisync_chg_{target.name}",
        *(sa.Column(c, staging.c[c].type, quote=True) for c in selected),
        sa.Column(NEW, sa.Boolean()),
    )
    _create_temp(conn, changed)
    pick = _pick_changed(target, staging, columns, pk, cursor_field, selected)
    conn.execute(changed.insert().from_select([*selected, NEW], pick))
    counts = conn.execute(
        sa.select(
            sa.func.count().filter(changed.c[NEW].is_(True)),
            sa.func.count().filter(changed.c[NEW].is_(False)),
        )
    ).one()
    result.inserted, result.updated = int(counts[0]), int(counts[1])
    return changed


def _merge(
    conn: sa.Connection,
    target: sa.Table,
    staging: sa.Table,
    columns: dict[str, str],
    pk: list[str],
    cursor_field: str,
    result: LoadResult,
) -> sa.Table:
    """PostgreSQL, target locked: insert new keys, update keys whose row is newer and different;
    count both. Returns the temporary table of the rows written.

    Those rows are copied once, whole and with their row number, into that table: the insert,
    the update and the children's lookup then read it alone instead of joining the whole staged
    batch again. New keys go in with a plain INSERT in key order and changed ones with UPDATE ...
    FROM: the table lock rules out a concurrent insert of the same key, so no ON CONFLICT
    arbitration (and its extra WAL record per row) is needed.
    """
    changed = _changed_rows(conn, target, staging, columns, pk, cursor_field, [*columns, SEQ], result)
    if not result.inserted and not result.updated:
        return changed  # a replay: nothing to write
    _analyze(conn, changed, pk)
    if result.inserted:
        new_rows = sa.select(*(changed.c[c] for c in columns)).where(changed.c[NEW].is_(True))
        conn.execute(
            target.insert().from_select(list(columns), new_rows.order_by(*(changed.c[k] for k in pk)))
        )
    if result.updated:
        conn.execute(
            sa.update(target)
            .values({c: changed.c[c] for c in columns if c not in pk})
            .where(_key_match(target, changed, [(k, k) for k in pk]), changed.c[NEW].is_(False))
        )
    return changed


def _load_sqlite(conn: sa.Connection, batch: _Batch, result: LoadResult) -> None:
    """Stage the batch with executemany, then write it in SQL (upsert, or insert for append)."""
    spec, mode = batch.spec, batch.mode
    primary_key, indexes = batch.target_keys()
    target, _ = _open_table(conn, batch, spec.destination.table, batch.columns, primary_key, indexes)
    staging = _staging_table(f"_apisync_stg_{target.name}", batch.columns, [SEQ])
    _create_temp(conn, staging)
    _send_parts(conn, staging, batch.parts, batch.columns, {ROW: SEQ}, batch.winners.mask(ROW))
    children = {
        name: _open_table(conn, batch, name, entry["columns"], batch.child_key())[0]
        for name, entry in batch.children.items()
    }
    if mode == "replace_window":
        bounds = _bounds(spec, batch.columns, batch.window)
        result.deleted = _delete_window(conn, spec, target, list(children.values()), bounds)

    if mode == "append":
        names = list(batch.columns)
        conn.execute(target.insert().from_select(names, sa.select(*(staging.c[c] for c in names))))
        result.inserted = batch.winners.kept
        changed = staging
    else:
        changed = _upsert(conn, target, staging, batch.columns, spec.primary_key, spec.cursor_field, result)

    kept = sa.select(staging.c[SEQ])  # row numbers of the parents written
    if changed is not staging:
        key_pairs = [(k, k) for k in spec.primary_key]
        kept = kept.select_from(staging.join(changed, _key_match(staging, changed, key_pairs)))
    for name, child in children.items():
        entry = batch.children[name]
        if mode != "append":
            _delete_children(conn, spec, child, changed)
        child_staging = _staging_table(f"_apisync_stg_{child.name}", entry["columns"], [PARENT_ROW])
        _create_temp(conn, child_staging)
        _send_parts(
            conn, child_staging, batch.child_parts(name), entry["columns"], {PARENT_ROW: PARENT_ROW}, None
        )
        source = sa.select(*(child_staging.c[c] for c in entry["columns"])).where(
            child_staging.c[PARENT_ROW].in_(kept)
        )
        result.child_rows += conn.execute(child.insert().from_select(list(entry["columns"]), source)).rowcount
        _drop_temp(conn, child_staging)
    for temp in (staging, changed):
        _drop_temp(conn, temp)


def _upsert(
    conn: sa.Connection,
    target: sa.Table,
    winners: sa.Table,
    columns: dict[str, str],
    pk: list[str],
    cursor_field: str,
    result: LoadResult,
) -> sa.Table:
    """SQLite: insert new keys, update keys whose row is newer and different; count both.

    Returns the temporary table of the keys written (``NEW``: inserted, not updated).
    """
    changed = _changed_rows(conn, target, winners, columns, pk, cursor_field, pk, result)
    if not result.inserted and not result.updated:
        return changed  # a replay: nothing to write

    names = list(columns)
    source = (
        sa.select(*(winners.c[c] for c in names))
        .select_from(winners.join(changed, _key_match(winners, changed, [(k, k) for k in pk])))
        .where(sa.true())
        .order_by(*(winners.c[k] for k in pk))
    )
    statement = sqlite_insert(target).from_select(names, source)
    statement = statement.on_conflict_do_update(
        index_elements=[target.c[k] for k in pk],
        set_={c: statement.excluded[c] for c in names if c not in pk},
    )
    conn.execute(statement)
    return changed
