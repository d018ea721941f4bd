"""The quarantine: rows that failed coercion or a row-level expectation, kept with their raw record.

One place for the quarantine in every form it takes: the Arrow part validate writes next to the
good parts (:func:`quarantine_rows`, columns :data:`QUARANTINE_COLUMNS`), the warehouse table
(:func:`quarantine_table`) and its writers. :func:`write_quarantine` runs inside the load's
transaction (the pipeline hands it to :func:`apisync.load.load`, which knows nothing of quality),
so the target and the window's quarantine rows change together; :func:`persist_quarantine` stores
them on their own when the batch is rejected and not loaded, so the evidence survives the failure.

Each row names the page it came from: ``raw_page``/``raw_line`` in the staged raw files and
``page_url``, the page's request URL (redacted at extract time). ``raw_record`` is the record's
text as the server sent it; bytes that are not UTF-8 are escaped (:func:`raw_record_text`) and
:func:`raw_record_bytes` gives back the exact bytes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pyarrow as pa
import sqlalchemy as sa

from apisync.spec import StreamSpec
from apisync.staging.columns import ERRORS, LINE, PAGE, ROW
from apisync.staging.logical_types import NULLABLE_PANDAS_TYPES, ROW_ID_TYPE, TIMESTAMP_TYPE, sql_type
from apisync.staging.manifests import read_validated_manifest
from apisync.staging.parts import read_part
from apisync.staging.raw_pages import page_urls, read_manifest, read_page
from apisync.staging.tables import ensure_table_columns

__all__ = [
    "QUARANTINE_COLUMNS",
    "QUARANTINE_TABLE",
    "persist_quarantine",
    "quarantine_rows",
    "quarantine_table",
    "quarantine_writer",
    "raw_record_bytes",
    "raw_record_text",
    "write_quarantine",
]

QUARANTINE_TABLE = "quarantine"
# Columns of a quarantine part (logical types), as written by validate and read back by the writers.
QUARANTINE_COLUMNS = {
    "stream": "string",
    "run_id": "string",
    "interval_start": "timestamp",
    "interval_end": "timestamp",
    "record_key": "string",
    "raw_page": "integer",
    "raw_line": "integer",
    "page_url": "string",
    "raw_record": "string",
    "failures": "json",
    "quarantined_at": "timestamp",
}
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def quarantine_table(db_schema: str | None = None) -> sa.Table:
    """The warehouse table of quarantined rows (in the connection's schema, next to ``sync_runs``)."""
    return sa.Table(
        QUARANTINE_TABLE,
        sa.MetaData(schema=db_schema),
        sa.Column("id", ROW_ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_key", sa.Text()),
        sa.Column("raw_page", sa.BigInteger()),
        sa.Column("raw_line", sa.BigInteger()),
        sa.Column("page_url", sa.Text()),
        sa.Column("raw_record", sa.Text(), nullable=False),
        sa.Column("failures", sql_type("json"), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_quarantine_stream_interval", "stream", "interval_start", "interval_end"),
    )


# ---------------------------------------------------------------- the quarantine part


def raw_record_text(raw: bytes) -> str:
    """A raw record as text for the ``raw_record`` column, exactly recoverable by
    :func:`raw_record_bytes`: valid UTF-8 as it is; otherwise each byte that is not (and NUL, which
    PostgreSQL text cannot hold) becomes ``\\xNN``.

    Escaped text rather than base64: the record stays readable and searchable in SQL (its key,
    the field that failed), which is what the quarantine is read for. It is unambiguous because
    in JSON text a backslash always starts a two-character escape and ``\\x`` is none.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="backslashreplace")
    return text.replace("\x00", "\\x00")


_ESCAPE = re.compile(rb"\\(?:x([0-9a-f]{2})|.)", re.DOTALL)


def raw_record_bytes(text: str) -> bytes:
    """The bytes a ``raw_record`` value stands for (the inverse of :func:`raw_record_text`)."""
    return _ESCAPE.sub(
        lambda match: bytes([int(match.group(1), 16)]) if match.group(1) else match.group(), text.encode()
    )


class _RawLines:
    """Raw records by (page, line), reading each page file at most once per part."""

    def __init__(self, raw_dir: Any) -> None:
        self.raw_dir = raw_dir
        self.cache: dict[int, list[bytes]] = {}
        self.urls = page_urls(read_manifest(raw_dir))

    def get(self, page: int, line: int) -> str:
        if page not in self.cache:
            self.cache[page] = read_page(self.raw_dir, page).lines()
        return raw_record_text(self.cache[page][line])


def _record_key(keys: pa.Table) -> list[str]:
    # Through pandas' nullable dtypes, as the key columns were always rendered (ints, timestamps).
    frame = keys.to_pandas(types_mapper=NULLABLE_PANDAS_TYPES.get)
    values = frame.astype("object").where(frame.notna(), None)
    return [
        _encoder.encode(
            dict(zip(keys.column_names, [str(v) if v is not None else None for v in row], strict=True))
        ).decode()
        for row in values.itertuples(index=False, name=None)
    ]


def _source_reason(part: str) -> dict[str, Any]:
    """A message of the errors column: a coercion failure, or a GraphQL error that hit the record
    (``partial_results: quarantine``, prefixed ``graphql: `` by normalize)."""
    if part.startswith("graphql: "):
        return {"check": "graphql", "message": part.removeprefix("graphql: ")}
    return {"check": "coercion", "message": part}


def quarantine_rows(
    spec: StreamSpec, bad: pa.Table, row_failures: dict[int, list[dict[str, Any]]], raw_dir: Any
) -> pa.Table:
    """The quarantine part of a normalized part's ``bad`` rows: raw record (re-read from its page
    file), record key and every failing check (coercion messages and expectations)."""
    raw = _RawLines(raw_dir)
    failures: list[str] = []
    records: list[str] = []
    for row, page, line, message in zip(
        bad.column(ROW).to_pylist(),
        bad.column(PAGE).to_pylist(),
        bad.column(LINE).to_pylist(),
        bad.column(ERRORS).to_pylist(),
        strict=True,
    ):
        reasons: list[dict[str, Any]] = []
        if isinstance(message, str):
            reasons.extend(_source_reason(part) for part in message.split("; "))
        reasons.extend({"check": "expectation", **failure} for failure in row_failures.get(int(row), []))
        failures.append(_encoder.encode(reasons).decode())
        records.append(raw.get(int(page), int(line)))
    count = bad.num_rows
    return pa.table(
        {
            "stream": pa.array([spec.name] * count, pa.string()),
            "run_id": bad.column("_run_id").cast(pa.string()),
            "interval_start": bad.column("_interval_start").cast(TIMESTAMP_TYPE),
            "interval_end": bad.column("_interval_end").cast(TIMESTAMP_TYPE),
            "record_key": pa.array(_record_key(bad.select(spec.primary_key)), pa.string()),
            "raw_page": bad.column(PAGE),
            "raw_line": bad.column(LINE),
            "page_url": pa.array([raw.urls.get(page) for page in bad.column(PAGE).to_pylist()], pa.string()),
            "raw_record": pa.array(records, pa.string()),
            "failures": pa.array(failures, pa.string()),
            "quarantined_at": pa.array([datetime.now(UTC)] * count, TIMESTAMP_TYPE),
        }
    )


# ---------------------------------------------------------------- the warehouse table


def write_quarantine(
    conn: sa.Connection,
    spec: StreamSpec,
    validated_dir: Any,
    *,
    window: tuple[datetime, datetime],
    db_schema: str | None,
) -> int:
    """Replace this window's quarantine rows for the stream (idempotent across retries and replays);
    return how many there are. Runs in the caller's transaction.

    ``failures`` is stored as a JSON array: JSONB on PostgreSQL (``failures->0->>'check'``), its
    JSON text on SQLite."""
    manifest = read_validated_manifest(validated_dir)
    table = quarantine_table(db_schema)
    ensure_table_columns(conn, table)
    as_json = conn.dialect.name == "postgresql"  # the JSONB type encodes what it gets: a list
    conn.execute(
        sa.delete(table).where(
            table.c.stream == spec.name,
            table.c.interval_start == window[0],
            table.c.interval_end == window[1],
        )
    )
    count = 0
    for name in manifest["quarantine_parts"]:
        frame = read_part(validated_dir / "quarantine" / name, QUARANTINE_COLUMNS, {})
        records = frame.to_pylist()
        for record in records:
            record["interval_start"], record["interval_end"] = window
            if as_json:
                record["failures"] = _decoder.decode(record["failures"])
        if records:
            conn.execute(table.insert(), records)
        count += len(records)
    return count


def quarantine_writer(
    spec: StreamSpec, validated_dir: Any, *, window: tuple[datetime, datetime], db_schema: str | None
) -> Callable[[sa.Connection], int]:
    """:func:`write_quarantine` for one window, as the work :func:`apisync.load.load` runs in its
    transaction."""
    return functools.partial(
        write_quarantine, spec=spec, validated_dir=validated_dir, window=window, db_schema=db_schema
    )


def persist_quarantine(
    engine: sa.Engine,
    spec: StreamSpec,
    validated_dir: Any,
    *,
    window: tuple[datetime, datetime],
    db_schema: str | None = None,
) -> int:
    """Store the quarantine rows on their own, when the batch itself is rejected and not loaded."""
    with engine.begin() as conn:
        return write_quarantine(conn, spec, validated_dir, window=window, db_schema=db_schema)
