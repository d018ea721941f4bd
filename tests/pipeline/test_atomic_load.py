"""The load, its accounting check and its ``sync_runs`` row commit together, or not at all."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from apisync.errors import AccountingError
from apisync.pipeline import steps
from apisync.pipeline.runner import run_window
from apisync.spec import load_spec
from apisync.staging.layout import RunPaths
from apisync.staging.raw_pages import extract_to_files
from tests.load.datapath_fixtures import WINDOW, Target, sync_records
from tests.load.killed_child import kill_at_marker
from tests.transform.order_records import make_order, make_orders, pages_of


def _sync_runs(target: Target) -> list[tuple[object, ...]]:
    if not target.has_table("sync_runs"):
        return []
    return target.rows(f"SELECT run_id, status, records_updated FROM {target.table('sync_runs')} ORDER BY id")


def test_case9_accounting_mismatch_rolls_the_load_back(warehouse: Target, tmp_path: Path) -> None:
    spec = load_spec("orders")
    sync_records(spec, make_orders(300), warehouse, tmp_path / "first")
    before = warehouse.checksum("orders")
    items_before = warehouse.checksum("order_items", order_by="orders_id, _position")

    # A second run of the window: 200 orders changed. Its counts disagree with what the load did
    # (as when a run read files another run staged): the check must fail and nothing be committed.
    records = [make_order(i, revision=700) if i < 200 else make_order(i) for i in range(300)]
    root = tmp_path / "second"
    paths = RunPaths(root)
    extract_to_files(pages_of(records, 100), paths.raw)
    normalized = steps.normalize_step(spec, paths, window=WINDOW, run_id="run-2", source="test")
    validated = steps.validate_step(spec, paths)
    with pytest.raises(AccountingError, match=r"accounting mismatch for (\w+\.)?orders: pulled 350"):
        steps.load_step(
            spec,
            warehouse.engine,
            paths,
            window=WINDOW,
            run_id="run-2",
            db_schema=warehouse.db_schema,
            pulled=normalized.pulled + 50,
            deduped=normalized.deduped,
            quarantined=validated.quarantined,
        )
    assert warehouse.checksum("orders") == before, "the load committed although its accounting failed"
    assert warehouse.checksum("order_items", order_by="orders_id, _position") == items_before

    # Through run_window: the failed attempt is audited (in its own transaction), the rows are not in.
    def miscount(spec_: object, paths_: RunPaths, **kwargs: object) -> object:
        result = real_normalize(spec_, paths_, **kwargs)
        result.pulled += 50
        return result

    real_normalize = steps.normalize_step
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(steps, "normalize_step", miscount)
        with pytest.raises(AccountingError):
            run_window(
                spec,
                None,
                paths,
                warehouse.engine,
                window=WINDOW,
                run_id="run-3",
                db_schema=warehouse.db_schema,
            )
    assert warehouse.checksum("orders") == before
    assert _sync_runs(warehouse) == [("run-1", "success", 0), ("run-3", "failed", None)]


# The child runs the real run_window over staged raw pages; the only change is a pause at the
# point where it builds the sync_runs row (after every statement of the load), announced through
# a marker file so the parent can SIGKILL it right there.
CHILD = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    from datetime import datetime
    import sqlalchemy as sa
    from apisync.load import audit
    from apisync.pipeline.runner import run_window
    from apisync.spec import load_spec
    from apisync.staging.layout import RunPaths

    real_table = audit.sync_runs_table
    def table_then_stall(*args, **kwargs):
        Path(os.environ["MARKER"]).touch()
        time.sleep(120)
        return real_table(*args, **kwargs)
    audit.sync_runs_table = table_then_stall
    window = (datetime.fromisoformat(os.environ["START"]), datetime.fromisoformat(os.environ["END"]))
    engine = sa.create_engine(os.environ["URL"])
    run_window(load_spec("orders"), None, RunPaths(Path(os.environ["ROOT"])), engine,
               window=window, run_id="killed", db_schema=os.environ.get("SCHEMA") or None)
    """
)


def test_case10_a_kill_between_the_load_and_its_audit_row_leaves_both_or_neither(
    warehouse: Target, tmp_path: Path
) -> None:
    records = make_orders(500)
    root = tmp_path / "stage"
    extract_to_files(pages_of(records, 100), RunPaths(root).raw)
    marker = tmp_path / "at-sync-runs"
    env = {
        "URL": str(warehouse.engine.url.render_as_string(hide_password=False)),
        "SCHEMA": warehouse.db_schema or "",
        "ROOT": str(root),
        "START": WINDOW[0].isoformat(),
        "END": WINDOW[1].isoformat(),
    }
    kill_at_marker(CHILD, env, marker, reached="reached the sync_runs row")

    loaded = (
        warehouse.scalar(f"SELECT count(*) FROM {warehouse.table('orders')}")
        if warehouse.has_table("orders")
        else 0
    )
    audited = _sync_runs(warehouse)
    assert (loaded, audited) in ((0, []), (500, [("killed", "success", 0)])), (
        f"committed {loaded} rows with sync_runs {audited}: changes nobody audited"
    )
