"""The Trigger dialog in a real browser shows the window as two date-time fields (issue 11, case 2).

Playwright drives Debian's Chromium (``/usr/bin/chromium``, never a browser Playwright downloads)
against the e2e stack's api-server: log in through the login page, open a sync DAG, press
*Trigger*, and find **Window start** and **Window end** with their descriptions.
The screenshot is kept under ``.airflow-test/artifacts/`` (and one of the page when a step fails).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from scripts.localstack import REPO_ROOT, admin_password
from tests.e2e.conftest import AirflowStack

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
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "trigger_dialog_failure.png"), full_page=True)
        (ARTIFACTS / "trigger_dialog_failure.html").write_text(page.content())
        raise
    finally:
        context.close()

    # The dialog's fields are the DAG's params: what the UI lists is what the API serves.
    params = stack.api("GET", f"/dags/{DAG_ID}/details").json()["params"]
    assert params["window_start"]["schema"]["title"] == "Window start"
