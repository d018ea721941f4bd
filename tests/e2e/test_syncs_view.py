"""The Syncs view in a real browser: Debian's Chromium, driven by Playwright, logs into a real api-server.

One stack for the module (its own metadata DB and Airflow home): a six-hour orders DAG
(tests/e2e/syncs_view_dags/), two windows of it synced for real through a backfill (REST API,
scheduler, sandbox). Then the browser logs in on Airflow's login page, opens "Syncs" in the UI's
navigation and finds, inside the UI, the numbers of the warehouse's ``sync_runs`` rows, the
coverage (2 of 6 windows synced), the charts; "Backfill gaps" creates the backfill of the other
four windows, which ``GET /api/v2/backfills`` lists, and once it ran the view shows 6 of 6.

Screenshots are kept under ``$APISYNC_TEST_ARTIFACTS`` (default ``test-artifacts/`` in the
repository); the test prints where. Playwright's own browser download is never used: Chromium is
the system's (``make browser``).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from scripts.localstack import REPO_ROOT, admin_password
from tests.e2e.conftest import AirflowStack, running_airflow, throwaway_database, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "orders_syncs_view_e2e"
DAG_FILE = Path(__file__).resolve().parent / "syncs_view_dags" / f"{DAG_ID}.py"
CHROMIUM = Path(os.environ.get("APISYNC_CHROMIUM", "/usr/bin/chromium"))
WAIT_MS = 180_000  # a loaded 2-core CI box: the first overview parses the DAGs and walks the ledger


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("APISYNC_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "syncs-view"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nSyncs view screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def view_stack(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[AirflowStack]:
    """The browser tests' one stack: only the six-hour orders DAG, two of its windows synced."""
    home = tmp_path_factory.mktemp("syncs-view-home")
    with (
        throwaway_database(postgres_url) as metadata_url,
        running_airflow(home, metadata_url, dag_files=[DAG_FILE], scheduled_runs=False) as stack,
    ):
        stack.wait_for_dag(DAG_ID)
        assert stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
        backfill = stack.api(
            "POST",
            "/backfills",
            json={
                "dag_id": DAG_ID,
                "from_date": "2026-01-02T00:00:00Z",
                "to_date": "2026-01-02T01:00:00Z",
                "reprocess_behavior": "none",
                "max_active_runs": 2,
            },
        )
        assert backfill.status_code == 200, backfill.text
        stack.wait_for_backfill(backfill.json()["id"])
        yield stack


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


def sync_runs(stack: AirflowStack) -> list[sqlite3.Row]:
    """The warehouse's rows for the orders stream, newest first: the truth the page must show."""
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(
            "SELECT * FROM sync_runs WHERE stream = 'orders' ORDER BY recorded_at DESC, id DESC"
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
    page.get_by_role("link", name="Syncs").click(timeout=WAIT_MS)
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

    expected = {
        "records_pulled": f"{last['records_pulled']:,}",
        "records_loaded": f"{(last['records_inserted'] or 0) + (last['records_updated'] or 0):,}",
        "records_quarantined": f"{last['records_quarantined']:,}",
        "api_calls": f"{last['api_calls']:,}",
        "api_429s": f"{last['api_429s']:,}",
        "throttled_seconds": f"{last['throttled_seconds']:.1f}",
        "failed_runs": "0 / 2",
        "status": "success",
    }
    assert {field: cell(field) for field in expected} == expected
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


def test_without_a_login_the_view_answers_401_and_the_page_says_to_log_in(view_stack, browser) -> None:
    page = browser.new_page()
    response = page.goto(f"{view_stack.api_url}/apisync/", timeout=WAIT_MS)
    assert response is not None and response.status == 401
    assert "Not logged in to Airflow" in page.inner_text("body")
    overview = page.request.get(f"{view_stack.api_url}/apisync/api/overview")
    assert overview.status == 401
    page.close()
