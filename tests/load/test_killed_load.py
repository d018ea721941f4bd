"""A load SIGKILLed half-way leaves the target untouched; the retry neither duplicates nor loses rows.

Three PostgreSQL paths send rows differently, each is killed once its parent rows are in the
database but before commit: a merge into a filled table (rows COPYed into a staging table), the
first load (rows COPYed straight into a table created in the same transaction, keys not yet
built) and the refill of an emptied table (rows COPYed straight into it).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from apisync.load import load
from apisync.quality import validate
from apisync.spec import load_spec
from apisync.staging.raw_pages import extract_to_files
from apisync.transform import Lineage, normalize_files
from tests.load.datapath_fixtures import WINDOW, Target, sync_records
from tests.load.killed_child import kill_at_marker
from tests.transform.order_records import make_order, make_orders, pages_of

# The child runs the real load; the only change is a pause after the parent rows are sent (to the
# staging table or straight to the target), before the rest and the commit, announced through a
# marker file so the parent can kill it at that point.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from datetime import datetime
    import sqlalchemy as sa
    from apisync.load import warehouse
    from apisync.spec import load_spec

    real_send = warehouse._send_parts
    def send_then_stall(*args, **kwargs):
        rows = real_send(*args, **kwargs)
        Path(os.environ["MARKER"] + ".tmp").write_text(str(rows))
        os.replace(os.environ["MARKER"] + ".tmp", os.environ["MARKER"])
        time.sleep(120)
        return rows
    warehouse._send_parts = send_then_stall
    window = (datetime.fromisoformat(os.environ["START"]), datetime.fromisoformat(os.environ["END"]))
    warehouse.load(load_spec("orders"), sa.create_engine(os.environ["URL"]), Path(os.environ["VALIDATED"]),
                   window=window, run_id="killed", db_schema=os.environ["SCHEMA"])
    """
)


def _stage(records: list[dict], root: Path) -> Path:
    """Extract, normalize and validate ``records`` as the pipeline would; return the validated dir."""
    spec = load_spec("orders")
    extract_to_files(pages_of(records, 250), root / "raw")
    lineage = Lineage("test", "run-2", *WINDOW, datetime.now(UTC))
    normalize_files(spec, root / "raw", root / "normalized", lineage)
    validate(spec, root / "normalized", root / "raw", root / "validated")
    return root / "validated"


def _kill_mid_load(
    postgres_url: str, pg_schema: str, validated: Path, marker: Path, while_stalled: Callable[[], None]
) -> int:
    """Run the load in a child, call ``while_stalled()`` once its parent rows are sent, SIGKILL it;
    return how many parent rows it had sent."""
    env = {
        "URL": postgres_url,
        "SCHEMA": pg_schema,
        "VALIDATED": str(validated),
        "START": WINDOW[0].isoformat(),
        "END": WINDOW[1].isoformat(),
    }
    return int(kill_at_marker(CHILD, env, marker, reached="sent its rows", while_stalled=while_stalled))


def _retry_and_replay(
    target: Target, validated: Path, records: list[dict], counts: tuple[int, int, int]
) -> None:
    spec = load_spec("orders")
    result = load(spec, target.engine, validated, window=WINDOW, run_id="retry", db_schema=target.db_schema)
    assert (result.inserted, result.updated, result.unchanged) == counts
    assert target.scalar(f"SELECT count(*) FROM {target.table('orders')}") == len(records)
    assert target.scalar(f"SELECT count(DISTINCT id) FROM {target.table('orders')}") == len(records)
    expected_items = sum(len(r["items"]) for r in records)
    assert target.scalar(f"SELECT count(*) FROM {target.table('order_items')}") == expected_items
    again = load(spec, target.engine, validated, window=WINDOW, run_id="retry-2", db_schema=target.db_schema)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(records))


def test_sigkill_during_merge_then_retry(postgres_url: str, pg_schema: str, tmp_path: Path) -> None:
    target = Target(sa.create_engine(postgres_url), pg_schema)
    sync_records(load_spec("orders"), make_orders(2000), target, tmp_path / "first")
    before = target.checksum("orders")
    items_before = target.checksum("order_items", order_by="orders_id, _position")

    # Window replay with 500 updated and 1000 new orders, staged as the pipeline would.
    records = [make_order(i, revision=500) if i < 500 else make_order(i) for i in range(3000)]
    validated = _stage(records, tmp_path / "second")

    def mid_transaction() -> None:
        # The staging rows exist only inside the child's transaction; readers go on, but another
        # writer waits for the load's lock (here: gives up after 200 ms).
        assert target.checksum("orders") == before
        with target.engine.connect() as conn:
            conn.execute(sa.text("SET lock_timeout = '200ms'"))
            with pytest.raises(sa.exc.OperationalError) as refused:
                conn.execute(
                    sa.text(f"UPDATE {target.table('orders')} SET status = 'x' WHERE id = 'ord_000001'")
                )
            assert isinstance(refused.value.orig, psycopg2.errors.LockNotAvailable)

    sent = _kill_mid_load(postgres_url, pg_schema, validated, tmp_path / "sent", mid_transaction)
    assert sent == 3000

    # PostgreSQL rolled the killed transaction back: nothing of the second window is visible.
    assert target.checksum("orders") == before
    assert target.checksum("order_items", order_by="orders_id, _position") == items_before
    _retry_and_replay(target, validated, records, (1000, 500, 1500))
    target.engine.dispose()


def test_sigkill_during_first_load_then_retry(postgres_url: str, pg_schema: str, tmp_path: Path) -> None:
    """The table is created, filled and keyed in one transaction: killed, it never existed."""
    target = Target(sa.create_engine(postgres_url), pg_schema)
    records = make_orders(3000)
    validated = _stage(records, tmp_path / "stage")

    def mid_transaction() -> None:
        assert not target.has_table("orders")

    sent = _kill_mid_load(postgres_url, pg_schema, validated, tmp_path / "sent", mid_transaction)
    assert sent == 3000
    assert not target.has_table("orders")
    assert not target.has_table("order_items")
    _retry_and_replay(target, validated, records, (3000, 0, 0))
    # the key built after the rows is a real constraint
    with target.engine.connect() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.text(f"INSERT INTO {target.table('orders')} (id) VALUES ('ord_000001')"))
    target.engine.dispose()


def test_sigkill_while_refilling_an_emptied_table_then_retry(
    postgres_url: str, pg_schema: str, tmp_path: Path
) -> None:
    target = Target(sa.create_engine(postgres_url), pg_schema)
    sync_records(load_spec("orders"), make_orders(100), target, tmp_path / "first")
    with target.engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {target.table('orders')}"))
        conn.execute(sa.text(f"DELETE FROM {target.table('order_items')}"))
    records = make_orders(3000)
    validated = _stage(records, tmp_path / "second")

    def mid_transaction() -> None:
        assert target.scalar(f"SELECT count(*) FROM {target.table('orders')}") == 0

    sent = _kill_mid_load(postgres_url, pg_schema, validated, tmp_path / "sent", mid_transaction)
    assert sent == 3000
    assert target.scalar(f"SELECT count(*) FROM {target.table('orders')}") == 0
    assert target.scalar(f"SELECT count(*) FROM {target.table('order_items')}") == 0
    _retry_and_replay(target, validated, records, (3000, 0, 0))
    target.engine.dispose()
