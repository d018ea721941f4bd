"""Load validated parts into a warehouse table in one transaction.

Every part is bulk-copied into a temporary staging table (PostgreSQL: COPY via psycopg2
``copy_expert``; SQLite: executemany), deduplicated across parts on the primary key (latest cursor
wins), then written by mode:

- ``merge``: upsert on the key; a row older than the stored one, or identical to it, is left
  alone, so replaying a window leaves the table byte-for-byte the same.
- ``replace_window``: delete the interval's rows (by cursor), then merge.
- ``append``: insert the deduplicated rows.

The target, its child tables and the quarantine rows change in the same transaction, so a load
killed half-way leaves the target untouched and a retry neither duplicates nor loses rows.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import sqlalchemy as sa

from apisync.load.audit import ensure_bookkeeping
from apisync.load.schema import ensure_table, sql_type
from apisync.quality.validation import QUARANTINE_COLUMNS, read_validated_manifest
from apisync.spec import StreamSpec
from apisync.transform.normalize import PARENT_ROW, POSITION, ROW

__all__ = ["LoadResult", "load", "persist_quarantine", "write_quarantine"]

SEQ = "_apisync_seq"
SQLITE_BATCH = 5_000
COPY_READ_SIZE = 1 << 20  # bytes psycopg2 hands to each PQputCopyData (its default is 8 KiB)


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _arrow_type(kind: str) -> pa.DataType:
    if kind.startswith("decimal"):
        scale = int(kind.split(":", 1)[1]) if ":" in kind else 2
        return pa.decimal128(38, scale)
    return {
        "string": pa.string(),
        "integer": pa.int64(),
        "float": pa.float64(),
        "boolean": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "json": pa.string(),
    }[kind]


def _read_part(path: Any, columns: dict[str, str], extra: dict[str, str]) -> pa.Table:
    """Read a part as exactly ``columns`` (cast to their logical types) plus ``extra`` renames."""
    with path.open("rb") as handle:
        table = pq.read_table(handle)
    arrays: dict[str, pa.ChunkedArray] = {}
    for column, kind in columns.items():
        if column in table.column_names:
            array = table.column(column)
            target = _arrow_type(kind)
            if array.type != target:
                array = (
                    array.cast(target) if not pa.types.is_null(array.type) else pa.nulls(len(array), target)
                )
            arrays[column] = array
        else:
            arrays[column] = pa.chunked_array([pa.nulls(table.num_rows, _arrow_type(kind))])
    for source, target in extra.items():
        arrays[target] = table.column(source)
    return pa.table(arrays)


def _tune_session(conn: sa.Connection) -> None:
    """PostgreSQL: room for the staging tables in memory (only possible before a session's first
    temp table, hence the savepoint) and no commit flush wait for this bulk transaction."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
    # The merge joins and groups whole windows (1M staged rows and more): with the 4 MB default
    # those hash tables spill to disk in batches.
    conn.execute(sa.text("SET LOCAL work_mem TO '256MB'"))
    try:
        with conn.begin_nested():
            conn.execute(sa.text("SET LOCAL temp_buffers TO '1GB'"))
    except sa.exc.DBAPIError:
        pass


def _naive_utc(table: pa.Table) -> pa.Table:
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            table = table.set_column(
                index, field.name, table.column(index).cast(pa.timestamp(field.type.unit))
            )
    return table


def _staging_table(name: str, columns: dict[str, str], extra: list[str]) -> sa.Table:
    metadata = sa.MetaData()
    return sa.Table(
        name,
        metadata,
        *(sa.Column(column, sql_type(kind), quote=True) for column, kind in columns.items()),
        *(sa.Column(column, sa.BigInteger()) for column in extra),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _create_temp(conn: sa.Connection, table: sa.Table) -> None:
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {conn.dialect.identifier_preparer.format_table(table)}"))
    table.create(conn)


def _csv_parts(
    parts: list[Any],
    columns: dict[str, str],
    extra: dict[str, str],
    keep_parents: np.ndarray | None = None,
    sort_by: list[str] | None = None,
) -> Iterator[tuple[io.BytesIO, int]]:
    """CSV bodies for COPY, one per part; the next part is encoded in a worker thread while the
    current one streams to the server (pyarrow's reader and CSV writer release the GIL).

    ``keep_parents``: a mask indexed by parent row number; keep only rows whose ``PARENT_ROW`` is
    set in it, and drop that column.
    ``sort_by``: send rows in this order (the target's key: index inserts then walk the b-tree
    instead of hitting random pages).
    """

    def encode(path: Any) -> tuple[io.BytesIO, int]:
        table = _read_part(path, columns, extra)
        if keep_parents is not None:
            parents = table.column(PARENT_ROW).to_numpy()
            inside = parents < len(keep_parents)
            selected = np.zeros(len(parents), dtype=bool)
            selected[inside] = keep_parents[parents[inside]]
            table = table.filter(pa.array(selected)).drop_columns([PARENT_ROW])
        if sort_by:
            table = table.sort_by([(name, "ascending") for name in sort_by])
        # Naive UTC timestamps format ~10x faster in pyarrow's CSV writer than tz-aware ones;
        # the transaction reads them as UTC.
        table = _naive_utc(table)
        buffer = io.BytesIO()
        pa_csv.write_csv(table, buffer)
        buffer.seek(0)
        return buffer, table.num_rows

    if not parts:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="apisync-csv") as pool:
        pending = pool.submit(encode, parts[0])
        for path in parts[1:]:
            ready = pending.result()
            pending = pool.submit(encode, path)
            yield ready
        yield pending.result()


def _copy_csv(cursor: Any, table_sql: str, names: list[str], bodies: Iterator[tuple[io.BytesIO, int]]) -> int:
    """COPY every CSV body into ``table_sql`` (PostgreSQL); return the rows sent."""
    column_sql = ", ".join(names)
    copy_sql = f"COPY {table_sql} ({column_sql}) FROM STDIN WITH (FORMAT csv, HEADER true)"
    cursor.execute("SET LOCAL TIME ZONE 'UTC'")
    rows = 0
    for buffer, count in bodies:
        cursor.copy_expert(copy_sql, buffer, size=COPY_READ_SIZE)
        rows += count
    return rows


def _copy_parts(
    conn: sa.Connection, staging: sa.Table, parts: list[Any], columns: dict[str, str], extra: dict[str, str]
) -> int:
    rows = 0
    names = [*columns, *extra.values()]
    if conn.dialect.name == "postgresql":
        preparer = conn.dialect.identifier_preparer
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            rows = _copy_csv(
                cursor,
                preparer.format_table(staging),
                [preparer.quote_identifier(name) for name in names],
                _csv_parts(parts, columns, extra),
            )
            cursor.execute(f"ANALYZE {preparer.format_table(staging)}")  # temp tables get no autovacuum stats
        finally:
            cursor.close()
        return rows
    insert = staging.insert()
    for path in parts:
        table = _read_part(path, columns, extra)
        for batch in table.to_batches(max_chunksize=SQLITE_BATCH):
            records = batch.to_pylist()
            if records:
                conn.execute(insert, records)
        rows += table.num_rows
    return rows


def _key_match(
    left: sa.Table | sa.Subquery, right: sa.Table | sa.Subquery, pairs: list[tuple[str, str]]
) -> Any:
    return sa.and_(*(left.c[a] == right.c[b] for a, b in pairs))


def _bounds(spec: StreamSpec, columns: dict[str, str], window: tuple[datetime, datetime]) -> tuple[Any, Any]:
    if columns.get(spec.cursor_field) == "integer":
        return int(window[0].timestamp()), int(window[1].timestamp())
    return window


def _child_table_names(spec: StreamSpec) -> list[str]:
    return [a.table for a in spec.arrays.values() if a.mode == "child_table" and a.table]


def _load_empty_window(
    spec: StreamSpec,
    engine: sa.Engine,
    result: LoadResult,
    window: tuple[datetime, datetime],
    db_schema: str | None,
    started: float,
) -> LoadResult:
    """Nothing valid arrived (a quiet hour): no table to create, but replace_window still empties it."""
    if spec.destination.write_mode == "replace_window" and sa.inspect(engine).has_table(
        spec.destination.table, schema=db_schema
    ):
        target = sa.Table(spec.destination.table, sa.MetaData(schema=db_schema), autoload_with=engine)
        cursor = target.c[spec.cursor_field]
        kind = "integer" if isinstance(cursor.type, sa.Integer) else "timestamp"
        start, end = _bounds(spec, {spec.cursor_field: kind}, window)
        in_window = sa.and_(cursor >= start, cursor < end)
        parent_pairs = [(f"{spec.name}_{k}", k) for k in spec.primary_key]
        with engine.begin() as conn:
            for child_name in _child_table_names(spec):
                if not sa.inspect(conn).has_table(child_name, schema=db_schema):
                    continue
                child = sa.Table(child_name, sa.MetaData(schema=db_schema), autoload_with=conn)
                doomed = sa.select(sa.literal(1)).where(in_window, _key_match(child, target, parent_pairs))
                conn.execute(sa.delete(child).where(doomed.exists()))
            deleted = conn.execute(sa.delete(target).where(in_window)).rowcount
        result.deleted = max(deleted or 0, 0)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def load(
    spec: StreamSpec,
    engine: sa.Engine,
    validated_dir: Any,
    *,
    window: tuple[datetime, datetime],
    run_id: str,
    db_schema: str | None = None,
) -> LoadResult:
    """Load a validated window into ``spec.destination.table`` (and its child tables) atomically."""
    started = time.perf_counter()
    manifest = read_validated_manifest(validated_dir)
    bookkeeping_schema = db_schema  # quarantine (and sync_runs) live in the connection's schema
    db_schema = spec.destination.db_schema or db_schema
    table_name = spec.destination.table
    mode = spec.destination.write_mode
    columns: dict[str, str] = manifest["columns"]
    pk = spec.primary_key
    cursor_field = spec.cursor_field
    result = LoadResult(table=f"{db_schema}.{table_name}" if db_schema else table_name)
    max_columns = spec.max_columns + 16
    if not columns:
        return _load_empty_window(spec, engine, result, window, db_schema, started)

    with engine.begin() as conn:
        _tune_session(conn)
        target = ensure_table(
            conn,
            table_name,
            columns,
            primary_key=pk if mode != "append" else None,
            db_schema=db_schema,
            max_columns=max_columns,
            indexes=[cursor_field] if mode == "replace_window" else None,
        )
        staging = _staging_table(f"_apisync_stg_{table_name}", columns, [SEQ])
        _create_temp(conn, staging)
        parts = [validated_dir / name for name in manifest["parts"]]
        result.staged = _copy_parts(conn, staging, parts, columns, {ROW: SEQ})

        winner_count = _drop_superseded(conn, staging, pk, cursor_field, result.staged)
        result.deduped = result.staged - winner_count
        winners = staging

        children = manifest.get("children", {})
        child_tables: dict[str, sa.Table] = {}
        for child_name, entry in children.items():
            child_columns = {c: k for c, k in entry["columns"].items()}
            child_tables[child_name] = ensure_table(
                conn,
                child_name,
                child_columns,
                primary_key=[f"{spec.name}_{k}" for k in pk] + [POSITION] if mode != "append" else None,
                db_schema=db_schema,
                max_columns=max_columns,
            )

        parent_pairs = [(f"{spec.name}_{k}", k) for k in pk]
        if mode == "replace_window":
            start, end = _bounds(spec, columns, window)
            in_window = sa.and_(target.c[cursor_field] >= start, target.c[cursor_field] < end)
            for child in child_tables.values():
                doomed = sa.select(sa.literal(1)).where(in_window, _key_match(child, target, parent_pairs))
                conn.execute(sa.delete(child).where(sa.exists(doomed)))
            result.deleted = conn.execute(sa.delete(target).where(in_window)).rowcount

        if mode == "append":
            names = [c for c in columns]
            conn.execute(target.insert().from_select(names, sa.select(*(winners.c[c] for c in names))))
            result.inserted = winner_count
            changed: sa.Table | None = winners
        else:
            changed = _upsert(conn, target, winners, columns, pk, cursor_field, result)

        for child_name, entry in children.items():
            result.child_rows += _load_child(
                conn,
                child_tables[child_name],
                entry,
                validated_dir / child_name,
                winners,
                changed,
                pk,
                parent_pairs,
                mode,
            )
        result.unchanged = winner_count - result.inserted - result.updated
        result.quarantined = write_quarantine(conn, spec, validated_dir, manifest, window, bookkeeping_schema)
        for temp in (staging, changed):
            if temp is not None and temp.name.startswith("_apisync_"):
                conn.execute(
                    sa.text(f"DROP TABLE IF EXISTS {conn.dialect.identifier_preparer.format_table(temp)}")
                )
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _drop_superseded(
    conn: sa.Connection, staging: sa.Table, pk: list[str], cursor_field: str, staged: int
) -> int:
    """Keep the latest version per key across parts (ties: the later row); return rows left.

    Parts are deduplicated already, so duplicates across parts are rare: a cheap hash aggregate
    finds them and the ranking runs only when there are some.
    """
    keys = [staging.c[k] for k in pk]
    duplicated = sa.select(*keys).group_by(*keys).having(sa.func.count() > 1).subquery()
    if conn.execute(sa.select(sa.func.count()).select_from(duplicated)).scalar_one():
        rank = sa.func.row_number().over(
            partition_by=keys,
            order_by=[staging.c[cursor_field].desc().nulls_last(), staging.c[SEQ].desc()],
        )
        ranked = sa.select(staging.c[SEQ], rank.label("_apisync_rank")).subquery()
        losers = sa.select(ranked.c[SEQ]).where(ranked.c._apisync_rank > 1)
        conn.execute(sa.delete(staging).where(staging.c[SEQ].in_(losers)))
        return conn.execute(sa.select(sa.func.count()).select_from(staging)).scalar_one()
    return staged  # no key twice: every staged row is a winner


def _upsert(
    conn: sa.Connection,
    target: sa.Table,
    winners: sa.Table,
    columns: dict[str, str],
    pk: list[str],
    cursor_field: str,
    result: LoadResult,
) -> sa.Table:
    """Insert new keys, update keys whose row is newer and different; count both."""
    lineage = {c for c in columns if c.startswith("_")}
    business = [c for c in columns if c not in lineage and c not in pk]
    key_pairs = [(k, k) for k in pk]
    existing = target.alias("existing")
    is_new = sa.and_(*(existing.c[k].is_(None) for k in pk))
    newer = sa.or_(existing.c[cursor_field].is_(None), winners.c[cursor_field] >= existing.c[cursor_field])
    same = sa.and_(*(existing.c[c].is_not_distinct_from(winners.c[c]) for c in business if c in existing.c))
    changed = sa.Table(
        f"_apisync_chg_{target.name}",
        sa.MetaData(),
        *(sa.Column(k, target.c[k].type, quote=True) for k in pk),
        sa.Column("_apisync_new", sa.Boolean()),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    _create_temp(conn, changed)
    pick = (
        sa.select(*(winners.c[k] for k in pk), is_new.label("_apisync_new"))
        .select_from(winners.outerjoin(existing, _key_match(winners, existing, key_pairs)))
        .where(sa.or_(is_new, sa.and_(newer, sa.not_(same))))
    )
    conn.execute(changed.insert().from_select([*pk, "_apisync_new"], pick))
    counts = conn.execute(
        sa.select(
            sa.func.count().filter(changed.c._apisync_new.is_(True)),
            sa.func.count().filter(changed.c._apisync_new.is_(False)),
        )
    ).one()
    result.inserted, result.updated = int(counts[0]), int(counts[1])

    names = list(columns)
    source = (
        sa.select(*(winners.c[c] for c in names))
        .select_from(winners.join(changed, _key_match(winners, changed, key_pairs)))
        .where(sa.true())
        .order_by(*(winners.c[k] for k in pk))  # key order: the primary-key index fills page by page
    )
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(target).from_select(names, source)
    statement = statement.on_conflict_do_update(
        index_elements=[target.c[k] for k in pk],
        set_={c: statement.excluded[c] for c in names if c not in pk},
    )
    conn.execute(statement)
    return changed


def _load_child(
    conn: sa.Connection,
    child: sa.Table,
    entry: dict[str, Any],
    child_dir: Any,
    winners: sa.Table,
    changed: sa.Table,
    pk: list[str],
    parent_pairs: list[tuple[str, str]],
    mode: str,
) -> int:
    """Replace the children of every parent row that was inserted or updated."""
    columns: dict[str, str] = entry["columns"]
    parts = [child_dir / name for name in entry["parts"]]
    if mode != "append":
        stale = sa.select(sa.literal(1)).where(_key_match(child, changed, parent_pairs))
        conn.execute(sa.delete(child).where(sa.exists(stale)))
    kept = sa.select(winners.c[SEQ])
    if changed is not winners:
        kept = kept.select_from(winners.join(changed, _key_match(winners, changed, [(k, k) for k in pk])))
    if conn.dialect.name == "postgresql":
        return _copy_children(conn, child, parts, columns, kept, [a for a, _ in parent_pairs] + [POSITION])
    staging = _staging_table(f"_apisync_stg_{child.name}", columns, [PARENT_ROW])
    _create_temp(conn, staging)
    _copy_parts(conn, staging, parts, columns, {PARENT_ROW: PARENT_ROW})
    source = sa.select(*(staging.c[c] for c in columns)).where(staging.c[PARENT_ROW].in_(kept))
    inserted = conn.execute(child.insert().from_select(list(columns), source)).rowcount
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {conn.dialect.identifier_preparer.format_table(staging)}"))
    return inserted


def _copy_children(
    conn: sa.Connection,
    child: sa.Table,
    parts: list[Any],
    columns: dict[str, str],
    kept: sa.Select,
    key: list[str],
) -> int:
    """PostgreSQL: COPY the children of the kept parent rows straight into the child table.

    The parent rows to keep (deduplication winners that were inserted or updated) are read back
    as row numbers, and each child part is filtered on them before its COPY: the children are
    written once, not staged and then copied again. Their old rows were deleted just before, in
    the same transaction, so nothing is visible until commit.
    """
    preparer = conn.dialect.identifier_preparer
    query = str(kept.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        buffer = io.BytesIO()
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", buffer)
        if not buffer.tell():
            return 0  # no parent row changed: no child row to write
        buffer.seek(0)
        rows = pa_csv.read_csv(
            buffer,
            read_options=pa_csv.ReadOptions(column_names=[SEQ], use_threads=False),
            convert_options=pa_csv.ConvertOptions(column_types={SEQ: pa.int64()}),
        )
        del buffer
        numbers = rows.column(SEQ).to_numpy()
        del rows
        # A bit per parent row number (1 MB per million rows), not a hash set rebuilt per part.
        keep = np.zeros(int(numbers.max()) + 1, dtype=bool)
        keep[numbers] = True
        del numbers
        return _copy_csv(
            cursor,
            preparer.format_table(child),
            [preparer.quote_identifier(name) for name in columns],
            _csv_parts(parts, columns, {PARENT_ROW: PARENT_ROW}, keep_parents=keep, sort_by=key),
        )
    finally:
        cursor.close()


def write_quarantine(
    conn: sa.Connection,
    spec: StreamSpec,
    validated_dir: Any,
    manifest: dict[str, Any],
    window: tuple[datetime, datetime],
    db_schema: str | None,
) -> int:
    """Replace this window's quarantine rows for the stream (idempotent across retries and replays)."""
    _, table = ensure_bookkeeping(conn, db_schema)
    conn.execute(
        sa.delete(table).where(
            table.c.stream == spec.name,
            table.c.interval_start == window[0],
            table.c.interval_end == window[1],
        )
    )
    count = 0
    for name in manifest["quarantine_parts"]:
        frame = _read_part(validated_dir / "quarantine" / name, QUARANTINE_COLUMNS, {})
        records = frame.to_pylist()
        for record in records:
            record["interval_start"], record["interval_end"] = window
        if records:
            conn.execute(table.insert(), records)
        count += len(records)
    return count


def persist_quarantine(
    engine: sa.Engine,
    spec: StreamSpec,
    validated_dir: Any,
    *,
    window: tuple[datetime, datetime],
    db_schema: str | None = None,
) -> int:
    """Store the quarantine rows on their own, when the batch itself is rejected and not loaded."""
    manifest = read_validated_manifest(validated_dir)
    with engine.begin() as conn:
        return write_quarantine(conn, spec, validated_dir, manifest, window, db_schema)
