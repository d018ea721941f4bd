"""A load SIGKILLed half-way leaves the target untouched; the retry neither duplicates nor loses rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from apisync.load import load
from apisync.quality import validate
from apisync.spec import load_spec
from apisync.transform import Lineage, extract_to_files, normalize_files
from tests.load.datapath_fixtures import WINDOW, Target, sync_records
from tests.transform.order_records import make_order, make_orders, pages_of

REPO = Path(__file__).resolve().parents[2]

# The child runs the real load; the only change is a pause after the staging COPY, before the
# merge and commit, announced through a marker file so the parent can kill it at that point.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from datetime import datetime
    import sqlalchemy as sa
    from apisync.load import warehouse
    from apisync.spec import load_spec

    real_copy = warehouse._copy_parts
    def copy_then_stall(*args, **kwargs):
        rows = real_copy(*args, **kwargs)
        Path(os.environ["MARKER"]).write_text(str(rows))
        time.sleep(120)
        return rows
    warehouse._copy_parts = copy_then_stall
    window = (datetime.fromisoformat(os.environ["START"]), datetime.fromisoformat(os.environ["END"]))
    warehouse.load(load_spec("orders"), sa.create_engine(os.environ["URL"]), Path(os.environ["VALIDATED"]),
                   window=window, run_id="killed", db_schema=os.environ["SCHEMA"])
    """
)


def test_sigkill_during_load_then_retry(postgres_url: str, pg_schema: str, tmp_path: Path) -> None:
    target = Target(sa.create_engine(postgres_url), pg_schema)
    spec = load_spec("orders")
    sync_records(spec, make_orders(2000), target, tmp_path / "first")
    before = target.checksum("orders")
    items_before = target.checksum("order_items", order_by="orders_id, _position")

    # Window replay with 500 updated and 1000 new orders, staged as the pipeline would.
    records = [make_order(i, revision=500) if i < 500 else make_order(i) for i in range(3000)]
    stage = tmp_path / "second"
    extract_to_files(pages_of(records, 250), stage / "raw")
    lineage = Lineage("test", "run-2", *WINDOW, datetime.now(UTC))
    normalize_files(spec, stage / "raw", stage / "normalized", lineage)
    validate(spec, stage / "normalized", stage / "raw", stage / "validated")

    marker = tmp_path / "copied"
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'plugins'}{os.pathsep}{REPO}",
        "MARKER": str(marker),
        "URL": postgres_url,
        "SCHEMA": pg_schema,
        "VALIDATED": str(stage / "validated"),
        "START": WINDOW[0].isoformat(),
        "END": WINDOW[1].isoformat(),
    }
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else "child exited"
            assert time.monotonic() < deadline, "child never reached the staging COPY"
            time.sleep(0.1)
        assert int(marker.read_text()) == 3000
        # Mid-transaction: the staging rows exist only inside the child's transaction.
        assert target.checksum("orders") == before
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    # PostgreSQL rolled the killed transaction back: nothing of the second window is visible.
    assert target.checksum("orders") == before
    assert target.checksum("order_items", order_by="orders_id, _position") == items_before

    result = load(
        spec, target.engine, stage / "validated", window=WINDOW, run_id="retry", db_schema=pg_schema
    )
    assert (result.inserted, result.updated, result.unchanged) == (1000, 500, 1500)
    assert target.scalar(f"SELECT count(*) FROM {target.table('orders')}") == 3000
    assert target.scalar(f"SELECT count(DISTINCT id) FROM {target.table('orders')}") == 3000
    expected_items = sum(len(r["items"]) for r in records)
    assert target.scalar(f"SELECT count(*) FROM {target.table('order_items')}") == expected_items
    again = load(
        spec, target.engine, stage / "validated", window=WINDOW, run_id="retry-2", db_schema=pg_schema
    )
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3000)
    target.engine.dispose()
