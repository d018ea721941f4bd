"""The Syncs view's app inside Airflow's own api-server app, over real HTTP, with real Airflow JWTs.

``airflow.api_fastapi.app.create_app`` builds the api-server exactly as ``airflow api-server``
does (the plugin loaded from the plugins folder, SimpleAuthManager); uvicorn serves it on a free
port, so the view's calls to the REST API as the user are real calls too. Tokens are minted by
the auth manager for an admin and a viewer: no token is 401, a viewer is refused backfills and
replays (403), an admin reads the numbers of the warehouse's ``sync_runs``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from apisync.load.audit import RunRecord, record_run

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def view_server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import sqlalchemy as sa
    import uvicorn

    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("view-warehouse")
    warehouse_file = folder / "warehouse.db"  # the setting's: streams no DAG of the folder syncs
    port = _free_port()
    mp.setenv("AIRFLOW_CONN_VIEW_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(warehouse_file)}))
    # The project DAGs' own warehouse, empty: their streams are listed with no runs yet.
    mp.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps({"conn_type": "sqlite", "host": str(folder / "dags.db")})
    )
    mp.setenv("AIRFLOW__APISYNC__WAREHOUSE_CONN_ID", "view_warehouse")
    mp.setenv("AIRFLOW__API__BASE_URL", f"http://127.0.0.1:{port}")
    mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "view-test-" + "s3cret" * 12)  # >= 64 bytes for HS512
    mp.setenv(
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
        str(tmp_path_factory.mktemp("view-auth") / "passwords.json"),
    )
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer:viewer")
    engine = sa.create_engine(f"sqlite:///{warehouse_file}")
    record_run(
        engine,
        RunRecord(
            "contacts_to_crm",
            T0,
            T0 + timedelta(hours=1),
            "manual__1",
            "success",
            records_pulled=12,
            records_inserted=7,
            records_updated=3,
            records_quarantined=2,
            api_calls=4,
            api_429s=1,
            throttled_seconds=0.5,
        ),
    )
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    purge_cached_app()
    app = create_app("core")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.2)
    assert server.started, "the api-server app did not start"
    from airflow.api_fastapi.app import get_auth_manager

    manager = get_auth_manager()
    tokens = {
        role: manager.generate_jwt(SimpleAuthManagerUser(username=role, role=role))
        for role in ("admin", "viewer")
    }
    try:
        yield {"url": f"http://127.0.0.1:{port}", "tokens": tokens}
    finally:
        server.should_exit = True
        thread.join(30)
        purge_cached_app()
        engine.dispose()
        mp.undo()


def _get(server: dict[str, Any], path: str, role: str | None = None, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {server['tokens'][role]}"} if role else {}
    return requests.get(f"{server['url']}/apisync{path}", headers=headers, timeout=120, **kwargs)


def test_the_plugin_registers_the_app_and_the_syncs_nav_entry(view_server) -> None:
    plugins = requests.get(
        f"{view_server['url']}/api/v2/plugins",
        headers={"Authorization": f"Bearer {view_server['tokens']['admin']}"},
        timeout=60,
    ).json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "apisync_syncs_view")
    assert [a["url_prefix"] for a in ours["fastapi_apps"]] == ["/apisync"]
    assert [(v["name"], v["href"], v["url_route"]) for v in ours["external_views"]] == [
        ("Syncs", "/apisync/", "syncs")
    ]


def test_no_token_is_401_and_a_forged_one_is_refused(view_server) -> None:
    assert _get(view_server, "/api/overview").status_code == 401
    assert _get(view_server, "/").status_code == 401
    assert _get(view_server, "/api/streams/orders/quarantine").status_code == 401
    forged = requests.get(
        f"{view_server['url']}/apisync/api/overview",
        headers={"Authorization": "Bearer eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJhZG1pbiJ9.bm90LXNpZ25lZA"},
        timeout=60,
    )
    assert forged.status_code in (401, 403), forged.text
    post = requests.post(f"{view_server['url']}/apisync/api/streams/orders/backfill", timeout=60)
    assert post.status_code == 401


def test_the_login_cookie_is_accepted_like_the_bearer_header(view_server) -> None:
    response = requests.get(
        f"{view_server['url']}/apisync/api/overview",
        cookies={"_token": view_server["tokens"]["viewer"]},
        timeout=120,
    )
    assert response.status_code == 200, response.text


def test_a_viewer_may_look_but_not_backfill_or_replay(view_server) -> None:
    headers = {"Authorization": f"Bearer {view_server['tokens']['viewer']}"}
    overview = _get(view_server, "/api/overview", "viewer").json()
    assert overview["streams"] and not any(s["can_backfill"] or s["can_replay"] for s in overview["streams"])
    backfill = requests.post(
        f"{view_server['url']}/apisync/api/streams/orders/backfill", headers=headers, timeout=60
    )
    assert (
        backfill.status_code == 403
        and "may not create runs of orders_to_warehouse" in backfill.json()["detail"]
    )
    replay = requests.post(
        f"{view_server['url']}/apisync/api/streams/orders/replay",
        headers=headers,
        json={"window_start": "2026-01-05T10:00:00Z", "window_end": "2026-01-05T11:00:00Z"},
        timeout=60,
    )
    assert (
        replay.status_code == 403 and "may not clear tasks of orders_to_warehouse" in replay.json()["detail"]
    )


def test_a_replay_of_a_quarantined_rows_run_asks_airflow_for_that_run_as_the_user(view_server) -> None:
    """With ``run_id`` (the quarantine browser sends the row's run) the view looks the run up in
    Airflow's REST API with the user's token: a run Airflow does not have is its 404, named."""
    headers = {"Authorization": f"Bearer {view_server['tokens']['admin']}"}
    replay = requests.post(
        f"{view_server['url']}/apisync/api/streams/orders/replay",
        headers=headers,
        json={
            "window_start": "2026-01-05T10:00:00Z",
            "window_end": "2026-01-05T10:15:00Z",
            "run_id": "manual__no-such-run",
        },
        timeout=120,
    )
    assert replay.status_code == 404, replay.text
    detail = replay.json()["detail"]
    assert "GET " in detail and "/dags/orders_to_warehouse/dagRuns/manual__no-such-run" in detail, detail


def test_an_admin_gets_the_numbers_of_sync_runs(view_server) -> None:
    response = _get(view_server, "/api/overview", "admin")
    assert response.status_code == 200, response.text
    body = response.json()
    by_name = {s["stream"]: s for s in body["streams"]}
    # The DAG folder's streams are listed even before their first run, with their coverage.
    assert {"orders", "customers", "issues", "products"} <= set(by_name)
    assert by_name["orders"]["dag_id"] == "orders_to_warehouse" and by_name["orders"]["runs"] == []
    assert by_name["orders"]["extract_task_id"] == "sync_orders.extract"
    assert by_name["orders"]["can_backfill"] and by_name["orders"]["coverage"]["expected"] > 0
    # A stream only sync_runs knows (no DAG of the folder reads this warehouse for it).
    crm = by_name["contacts_to_crm"]
    assert crm["dag_id"] is None and crm["coverage"] is None
    (run,) = crm["runs"]
    assert (run["records_pulled"], run["records_loaded"], run["records_quarantined"]) == (12, 10, 2)
    assert (run["api_calls"], run["api_429s"], run["throttled_seconds"]) == (4, 1, 0.5)
    assert run["latency_p95_ms"] is None and run["error_rate"] is None  # columns not in this warehouse
    page = _get(view_server, "/api/streams/contacts_to_crm/quarantine", "admin")
    assert page.status_code == 200 and page.json()["total"] == 0
    assert _get(view_server, "/api/streams/orders/quarantine?limit=0", "admin").status_code == 422
    html = _get(view_server, "/", "admin")
    assert html.status_code == 200 and "static/chart.umd.min.js" in html.text
    assert _get(view_server, "/static/chart.umd.min.js").text.startswith("/*!\n * Chart.js v4.6.1")


def test_a_warehouse_that_cannot_be_read_is_named_and_the_other_streams_still_shown(
    view_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__APISYNC__WAREHOUSE_CONN_ID", "no_such_warehouse")
    body = _get(view_server, "/api/overview", "admin").json()
    assert any(p.startswith("warehouse no_such_warehouse: ") for p in body["problems"]), body["problems"]
    streams = {s["stream"] for s in body["streams"]}
    assert "orders" in streams and "contacts_to_crm" not in streams
