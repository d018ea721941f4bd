"""The Trigger dialog in a real browser shows the window as two date-time fields (issue 11, case 2).

Playwright drives Debian's Chromium (``/usr/bin/chromium``, never a browser Playwright downloads)
against the e2e stack's api-server: log in through the login page, open a sync DAG, press
*Trigger*, and find **Window start** and **Window end** with their descriptions; pick a window
with their date and time inputs and trigger: the run gets the window (UTC, ``Z``) and syncs it.
The screenshot is kept under ``.airflow-test/artifacts/`` (and one of the page when a step fails).
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest

from scripts.localstack import REPO_ROOT, admin_password
from tests.e2e.conftest import AirflowStack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("APISYNC_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO_ROOT / ".airflow-test" / "artifacts"
DAG_ID = "products_to_warehouse"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), (
        f"no Chromium at {CHROMIUM}: install Debian's chromium (or set APISYNC_CHROMIUM)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_the_trigger_dialog_shows_the_window_fields(airflow_stack: AirflowStack, browser) -> None:
    from playwright.sync_api import expect

    stack = airflow_stack
    stack.wait_for_dag(DAG_ID)
    assert stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(f"{stack.api_url}/auth/login")
        page.get_by_label(re.compile("username", re.I)).fill("admin")
        page.get_by_label(re.compile("password", re.I)).fill(admin_password(stack.home))
        page.get_by_role("button", name=re.compile("sign in|log in|login", re.I)).click()
        page.wait_for_url(lambda url: "/auth/login" not in url)

        page.goto(f"{stack.api_url}/dags/{DAG_ID}")
        page.get_by_role("button", name=re.compile("^trigger", re.I)).first.click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text("Window start", exact=True)).to_be_visible()
        expect(dialog.get_by_text("Window end", exact=True)).to_be_visible()
        expect(dialog.get_by_text(re.compile("Sync records updated from this moment"))).to_be_visible()
        expect(dialog.get_by_text(re.compile("at most 31 days later"))).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "trigger_dialog_window_fields.png"), full_page=True)

        # Pick a window with the pickers (date and time inputs of each field's popover) and trigger.
        runs_before = {r["dag_run_id"] for r in _runs(stack)}
        for title, day, time in (
            ("Window start", "2026/01/05", "00:00"),
            ("Window end", "2026/01/05", "06:00"),
        ):
            field = dialog.get_by_role("group").filter(has=page.get_by_text(title, exact=True))
            field.locator("[data-testid=datetime-input]").click()
            popover = page.locator("[data-part=content][data-state=open]").last
            popover.get_by_placeholder("YYYY/MM/DD").fill(day)
            popover.get_by_placeholder("HH:mm").fill(time)
            dialog.get_by_role("heading").first.click()  # closes the popover
        expect(dialog.get_by_text("Jan 05, 2026 06:00")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "trigger_dialog_window_picked.png"), full_page=True)
        dialog.get_by_role("button", name=re.compile("^trigger$", re.I)).click()
        expect(page.get_by_role("dialog")).to_have_count(0)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "trigger_dialog_failure.png"), full_page=True)
        (ARTIFACTS / "trigger_dialog_failure.html").write_text(page.content())
        raise
    finally:
        context.close()

    # The pickers send UTC with a "Z" (the Param pattern accepts it), and the run syncs that window.
    [run] = wait_until(
        lambda: [r for r in _runs(stack) if r["dag_run_id"] not in runs_before], "the triggered run"
    )
    assert run["conf"] == {
        "window_start": "2026-01-05T00:00:00.000Z",
        "window_end": "2026-01-05T06:00:00.000Z",
    }
    finished = wait_until(
        lambda: (r := _run(stack, run["dag_run_id"]))["state"] in ("success", "failed") and r,
        f"run {run['dag_run_id']} to finish",
    )
    tasks = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances").json()
    assert finished["state"] == "success", (finished, tasks)
    assert {t["state"] for t in tasks["task_instances"]} == {"success"}, tasks
    with sqlite3.connect(stack.home / "warehouse.db") as conn:
        rows = conn.execute(
            "SELECT status, interval_start, interval_end FROM sync_runs WHERE run_id = ?",
            (run["dag_run_id"],),
        ).fetchall()
    assert [(status, str(start)[:19], str(end)[:19]) for status, start, end in rows] == [
        ("success", "2026-01-05 00:00:00", "2026-01-05 06:00:00")
    ]


def _runs(stack: AirflowStack) -> list[dict]:
    return stack.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]


def _run(stack: AirflowStack, run_id: str) -> dict:
    return stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}").json()
