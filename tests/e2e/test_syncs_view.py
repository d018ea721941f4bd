"""The Syncs view in a real browser: Debian's Chromium, driven by Playwright, logs into a real api-server.

One stack for the module (its own metadata DB and Airflow home): a six-hour orders DAG
(tests/e2e/syncs_view_dags/), two windows of it synced for real through a backfill (REST API,
scheduler, sandbox), with a copy of ``include/`` whose orders suite also refuses one order of the
second window (:data:`QUARANTINED_ORDER`), so the quarantine has a row (1 of 32: under the 5 %
threshold, the run succeeds). Then the browser logs in on Airflow's login page, opens "Syncs" in the UI's
navigation and finds, inside the UI, the numbers of the warehouse's ``sync_runs`` rows, the
coverage (2 of 6 windows synced), the charts; "Backfill gaps" creates the backfill of the other
four windows, which ``GET /api/v2/backfills`` lists, and once it ran the view shows 6 of 6.
The quarantine browser's "Replay" re-runs the quarantined row's window: the run succeeds again,
the sandbox serves no request for it, the warehouse has no duplicate.

Screenshots are kept under ``$APISYNC_TEST_ARTIFACTS`` (default ``test-artifacts/`` in the
repository); the test prints where. Playwright's own browser download is never used: Chromium is
the system's (``make browser``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from scripts.localstack import REPO_ROOT, admin_password
from tests.e2e.conftest import AirflowStack, running_airflow, throwaway_database, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "orders_syncs_view_e2e"
DAG_FILE = Path(__file__).resolve().parent / "syncs_view_dags" / f"{DAG_ID}.py"
CUSTOMERS_DAG_ID = "customers_syncs_view_e2e"
CUSTOMERS_DAG_FILE = DAG_FILE.with_name(f"{CUSTOMERS_DAG_ID}.py")
CHROMIUM = Path(os.environ.get("APISYNC_CHROMIUM", "/usr/bin/chromium"))
# In the window 2026-01-02 01:00 → 02:00 (32 orders); no other window has it.
QUARANTINED_ORDER = "ord_002063"
# Its invalid email is the one of the first slice (00:00 → 00:15, 6 customers) of the customers window.
QUARANTINED_CUSTOMER = "3306"
WAIT_MS = 180_000  # a loaded 2-core CI box: the first overview parses the DAGs and walks the ledger


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("APISYNC_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "syncs-view"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nSyncs view screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def view_stack(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[AirflowStack]:
    """The browser tests' one stack: the six-hour orders DAG, two of its windows synced, and the
    one-hour sliced customers DAG, synced."""
    home = tmp_path_factory.mktemp("syncs-view-home")
    include = tmp_path_factory.mktemp("syncs-view-include") / "include"
    shutil.copytree(REPO_ROOT / "include", include)
    suite_file = include / "expectations" / "orders.json"
    suite = json.loads(suite_file.read_text())
    suite["expectations"].append(
        {
            "type": "expect_column_values_to_not_be_in_set",
            "kwargs": {"column": "id", "value_set": [QUARANTINED_ORDER]},
        }
    )
    suite_file.write_text(json.dumps(suite))
    # 1 customer of the 6 in its slice is quarantined: the run must not fail on the 5 % threshold.
    customers_spec = include / "streams" / "customers.yaml"
    customers_spec.write_text(
        customers_spec.read_text().replace("quarantine_threshold: 0.05", "quarantine_threshold: 0.5")
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APISYNC_INCLUDE_DIR", str(include))  # before the stack copies the environment
        with (
            throwaway_database(postgres_url) as metadata_url,
            running_airflow(
                home, metadata_url, dag_files=[DAG_FILE, CUSTOMERS_DAG_FILE], scheduled_runs=False
            ) as stack,
        ):
            yield _with_two_windows_synced(stack)


def _with_two_windows_synced(stack: AirflowStack) -> AirflowStack:
    """Sync the orders DAG's first two windows and the customers DAG's one, through backfills."""
    assert stack.api("POST", "/pools", json={"name": "accounts_api", "slots": 2}).status_code in (200, 201)
    backfills = []
    for dag_id, to_date in ((DAG_ID, "2026-01-02T01:00:00Z"), (CUSTOMERS_DAG_ID, "2026-01-02T00:00:00Z")):
        stack.wait_for_dag(dag_id)
        assert stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).status_code == 200
        backfill = stack.api(
            "POST",
            "/backfills",
            json={
                "dag_id": dag_id,
                "from_date": "2026-01-02T00:00:00Z",
                "to_date": to_date,
                "reprocess_behavior": "none",
                "max_active_runs": 2,
            },
        )
        assert backfill.status_code == 200, backfill.text
        backfills.append(backfill.json()["id"])
    for backfill_id in backfills:
        stack.wait_for_backfill(backfill_id)
    return stack


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: `make browser` installs Debian's Chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def sync_runs(stack: AirflowStack, stream: str = "orders") -> list[sqlite3.Row]:
    """The warehouse's rows for the stream, newest first: the truth the page must show."""
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(
            "SELECT * FROM sync_runs WHERE stream = ? ORDER BY recorded_at DESC, id DESC", (stream,)
        ).fetchall()


def minute(stored: str) -> str:
    """A stored moment (SQLite keeps UTC as text) as the page writes it: ``2026-01-02 01:00Z``."""
    return datetime.fromisoformat(stored).strftime("%Y-%m-%d %H:%MZ")


def log_in_and_open_syncs(page, stack: AirflowStack):  # type: ignore[no-untyped-def]
    """Airflow's own login form, then the "Syncs" entry of the UI's navigation; the view's frame."""
    page.goto(f"{stack.api_url}/", wait_until="domcontentloaded", timeout=WAIT_MS)
    page.locator("input[name=username]").fill("admin", timeout=WAIT_MS)
    page.locator("input[name=password]").fill(admin_password(stack.home))
    page.get_by_role("button", name="Sign in").click()
    # The nav entry itself: the home page also links DAGs and runs whose names contain "syncs".
    page.get_by_test_id("nav-sidebar").get_by_role("link", name="Syncs", exact=True).click(timeout=WAIT_MS)
    page.wait_for_url("**/plugin/syncs**", timeout=WAIT_MS)
    frame = page.frame_locator("iframe")
    frame.locator("body[data-loaded=true]").wait_for(timeout=WAIT_MS)
    return frame


@pytest.mark.timeout(1800)
def test_the_syncs_view_shows_sync_runs_and_backfills_the_gaps(view_stack, browser, artifacts) -> None:
    stack = view_stack
    rows = sync_runs(stack)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"success"}, [dict(r) for r in rows]
    last = rows[0]

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    frame = log_in_and_open_syncs(page, stack)
    row = frame.locator("#streams tr[data-stream=orders]")

    def cell(field: str) -> str:
        return row.locator(f"[data-field={field}]").inner_text().strip()

    merged = sum(last[key] or 0 for key in ("records_inserted", "records_updated", "records_unchanged"))
    expected = {
        "records_pulled": f"{last['records_pulled']:,}",
        "records_loaded": f"{merged:,}",
        "records_quarantined": f"{last['records_quarantined']:,}",
        "api_calls": f"{last['api_calls']:,}",
        "api_429s": f"{last['api_429s']:,}",
        "throttled_seconds": f"{last['throttled_seconds']:.1f}",
        "error_rate": f"{100 * last['api_errors'] / last['api_calls']:.1f}%",
        "bytes_received": f"{last['bytes_received']:,}",
        "failed_runs": "0 / 2",
        "status": "success",
    }
    assert {field: cell(field) for field in expected} == expected
    # The metrics columns are there and filled: the page shows their numbers, not "—".
    assert last["api_calls"] > 0 and last["bytes_received"] > 0, dict(last)
    for field in ("latency_p50_ms", "latency_p95_ms"):
        assert last[field] is not None and last[field] > 0, dict(last)
        shown = cell(field)
        assert shown != "—" and abs(float(shown.replace(",", "")) - last[field]) <= 0.5, (field, shown)
    assert cell("window") == f"{minute(last['interval_start'])} → {minute(last['interval_end'])}"
    run_link = row.get_by_test_id("run-link")
    assert run_link.get_attribute("href") == f"/dags/{DAG_ID}/runs/{quote(last['run_id'], safe='')}"
    log_link = row.get_by_test_id("log-link").get_attribute("href")
    assert log_link.endswith("/tasks/sync_orders.extract"), log_link

    coverage = frame.locator("#coverage [data-stream=orders]")
    assert (
        coverage.get_by_test_id("coverage-counts")
        .inner_text()
        .startswith("2/6 synced · 0 failed · 4 never ran · 0 in progress")
    )
    assert coverage.locator("[data-state='synced']").count() == 1
    assert coverage.locator("[data-state='never ran']").count() == 1
    assert frame.locator("#charts [data-stream=orders] canvas").count() == 3
    page.screenshot(path=str(artifacts / "1-synced-two-windows.png"))

    coverage.get_by_test_id("backfill-gaps").click()
    result = coverage.get_by_test_id("backfill-result")
    result.filter(has_text="created").wait_for(timeout=WAIT_MS)
    message = result.inner_text()
    match = re.fullmatch(
        r"backfill (\d+) created for 4 windows 2026-01-02T02:00Z → 2026-01-02T06:00Z \(reprocess none\)",
        message,
    )
    assert match, message
    backfill_id = int(match.group(1))
    listed = stack.api("GET", "/backfills", params={"dag_id": DAG_ID}).json()["backfills"]
    created = next(b for b in listed if b["id"] == backfill_id)
    assert created["from_date"].startswith("2026-01-02T02:00") and created["to_date"].startswith(
        "2026-01-02T05:00"
    )
    page.screenshot(path=str(artifacts / "2-backfill-created.png"))

    stack.wait_for_backfill(backfill_id)
    frame.locator("#refresh").click()

    def all_synced() -> bool:
        counts = (
            frame.locator("#coverage [data-stream=orders]").get_by_test_id("coverage-counts").inner_text()
        )
        return counts.startswith("6/6 synced")

    wait_until(all_synced, "the view to show 6/6 windows synced", timeout_s=300)
    assert len(sync_runs(stack)) == 6
    assert cell("failed_runs") == "0 / 6"
    page.screenshot(path=str(artifacts / "3-all-synced.png"))

    run_link.click()
    page.wait_for_url(f"**/dags/{DAG_ID}/runs/**", timeout=WAIT_MS)
    page.close()


def sandbox_requests(stack: AirflowStack, sandbox: str) -> int:
    """Requests the sandbox has served (its own count)."""
    stats = requests.get(f"{stack.sandbox_urls[sandbox]}/_sandbox/stats", timeout=30)
    return int(stats.json()["requests"])


def warehouse_rows(stack: AirflowStack, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        return conn.execute(sql, params).fetchall()


def business_rows(stack: AirflowStack, table: str) -> list[tuple]:
    """Every row without the lineage columns (``_run_id``, ``_loaded_at``... move to the replay)."""
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        info = conn.execute(f"PRAGMA table_info({table})").fetchall()
        columns = [row[1] for row in info if not row[1].startswith("_")]
        return sorted(conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)


def key(record_id: str) -> str:
    """A quarantine row's ``record_key``: the primary key as compact JSON."""
    return json.dumps({"id": record_id}, separators=(",", ":"))


def replay_from_the_quarantine_browser(  # type: ignore[no-untyped-def]
    stack: AirflowStack, browser, artifacts: Path, *, stream: str, dag_id: str, record_id: str, sandbox: str
) -> str:
    """Click Replay on the quarantined row of the record ``record_id``; the view's message names the run
    and the window it replays. Then the run must end success with no request to ``sandbox``, the
    stream's table and the quarantine as they were, and a new ``sync_runs`` row per slice.
    Returns the view's message."""
    (quarantined,) = warehouse_rows(
        stack, "SELECT id, run_id FROM quarantine WHERE stream = ? AND record_key = ?", stream, key(record_id)
    )
    quarantine_id, run_id = quarantined
    requests_before = sandbox_requests(stack, sandbox)
    table_before = business_rows(stack, stream)
    quarantine_before = warehouse_rows(stack, "SELECT count(*) FROM quarantine")
    runs_before = sync_runs(stack, stream)
    slices = sum(1 for r in runs_before if r["run_id"] == run_id)
    assert table_before and slices, [dict(r) for r in runs_before]

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    frame = log_in_and_open_syncs(page, stack)
    frame.locator("#quarantine-stream").select_option(stream)
    row = frame.locator(f"#quarantine tbody tr[data-quarantine-id='{quarantine_id}']")
    row.wait_for(timeout=WAIT_MS)
    assert record_id in row.locator("[data-field=raw_record]").inner_text()
    row.get_by_test_id("replay").click()
    result = frame.locator("#replay-result")
    result.filter(has_text=re.compile(r"^(replaying \S+ run|HTTP )")).wait_for(timeout=WAIT_MS)
    message = result.inner_text()
    page.screenshot(path=str(artifacts / f"4-replay-{stream}-asked.png"))
    assert "error" not in (result.get_attribute("class") or ""), message
    assert message.startswith(f"replaying {dag_id} run {run_id} ("), message
    assert f"sync_{stream}.normalize" in message and f"sync_{stream}.extract" not in message, message

    def finished() -> dict | None:
        run = stack.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}").json()
        return run if run["state"] in ("success", "failed") else None

    assert wait_until(finished, f"replayed run {run_id} to finish")["state"] == "success"
    assert sandbox_requests(stack, sandbox) == requests_before, "the replay called the source API"
    assert warehouse_rows(stack, f"SELECT count(*) - count(DISTINCT id) FROM {stream}") == [(0,)]
    assert business_rows(stack, stream) == table_before
    # The window's quarantine rows are replaced by the replay's (the same rows again), not added to.
    assert warehouse_rows(stack, "SELECT count(*) FROM quarantine") == quarantine_before
    runs_after = sync_runs(stack, stream)
    assert len(runs_after) == len(runs_before) + slices
    assert [(r["run_id"], r["status"]) for r in runs_after[:slices]] == [(run_id, "success")] * slices

    frame.locator("#refresh").click()
    run_link = frame.locator(f"#streams tr[data-stream={stream}]").get_by_test_id("run-link")
    wait_until(
        lambda: run_link.get_attribute("href") == f"/dags/{dag_id}/runs/{quote(run_id, safe='')}",
        "the view to show the replayed run as the last",
        timeout_s=300,
    )
    page.screenshot(path=str(artifacts / f"5-replayed-{stream}.png"))
    page.close()
    return message


@pytest.mark.timeout(1800)
def test_replay_in_the_quarantine_browser_reruns_the_window_without_calling_the_api(
    view_stack, browser, artifacts
) -> None:
    message = replay_from_the_quarantine_browser(
        view_stack,
        browser,
        artifacts,
        stream="orders",
        dag_id=DAG_ID,
        record_id=QUARANTINED_ORDER,
        sandbox="shop",
    )
    assert "(2026-01-02T01:00Z → 2026-01-02T02:00Z, was success): cleared 3 task instances" in message


@pytest.mark.timeout(1800)
def test_replay_of_a_sliced_streams_quarantined_row_reruns_its_runs_whole_window(
    view_stack, browser, artifacts
) -> None:
    """A quarantined row of a sliced run carries its slice's window (00:00 → 00:15); Replay re-runs
    the run it came from: its whole window, every slice."""
    (window,) = warehouse_rows(
        view_stack,
        "SELECT interval_start, interval_end FROM quarantine WHERE record_key = ?",
        key(QUARANTINED_CUSTOMER),
    )
    assert [datetime.fromisoformat(w).strftime("%H:%M") for w in window] == ["00:00", "00:15"], window
    message = replay_from_the_quarantine_browser(
        view_stack,
        browser,
        artifacts,
        stream="customers",
        dag_id=CUSTOMERS_DAG_ID,
        record_id=QUARANTINED_CUSTOMER,
        sandbox="accounts",
    )
    assert "(2026-01-02T00:00Z → 2026-01-02T01:00Z, was success): cleared 12 task instances" in message
    assert "from 4 staged raw extractions" in message


def test_without_a_login_the_view_answers_401_and_the_page_says_to_log_in(view_stack, browser) -> None:
    page = browser.new_page()
    response = page.goto(f"{view_stack.api_url}/apisync/", timeout=WAIT_MS)
    assert response is not None and response.status == 401
    assert "Not logged in to Airflow" in page.inner_text("body")
    overview = page.request.get(f"{view_stack.api_url}/apisync/api/overview")
    assert overview.status == 401
    page.close()
