"""The repair's choices, and its REST client's failures against a local HTTP server.

The happy path against a real Airflow (token, DAG runs, backfill creation) is in
tests/e2e/test_coverage.py; here the client meets an expired token and a refused backfill.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apisync.coverage.ledger import Ledger, LedgerWindow, WindowState
from apisync.coverage.repair import AirflowApi, DagRunWindow, repair_missing, reprocess_behavior
from apisync.errors import AirflowApiError

HOUR = timedelta(hours=1)
DAY = datetime(2026, 1, 7, tzinfo=UTC)
PASSWORD = "api-Pa55-s3cret"


def _run(state: str) -> DagRunWindow:
    return DagRunWindow("r", DAY, DAY + HOUR, state)


def test_reprocess_escalates_only_as_far_as_the_runs_on_the_range_need() -> None:
    assert reprocess_behavior([]) == "none"
    assert reprocess_behavior([_run("failed")]) == "failed"
    assert reprocess_behavior([_run("failed"), _run("success")]) == "completed"  # marked success by hand


class FakeAirflow:
    """Answers like Airflow's API: tokens expire after one use, a backfill is refused with 409."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []
        self.authenticated: list[tuple[str, str]] = []
        self.paused = False
        self.tokens_issued = 0
        self.valid_token = ""

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        self.requests.append((method, handler.path, handler.headers.get("Authorization", "")))
        if handler.path == "/auth/token":
            self.tokens_issued += 1
            self.valid_token = f"token-{self.tokens_issued}"
            return self._send(handler, 201, {"access_token": self.valid_token})
        if handler.headers.get("Authorization") != f"Bearer {self.valid_token}":
            return self._send(handler, 401, {"detail": "expired"})
        self.valid_token = ""  # every token is good for one call: the client must refresh
        self.authenticated.append((method, handler.path))
        if handler.path == "/api/v2/dags/orders_to_warehouse":
            return self._send(handler, 200, {"dag_id": "orders_to_warehouse", "is_paused": self.paused})
        if handler.path.startswith("/api/v2/backfills?"):
            return self._send(handler, 200, {"backfills": [], "total_entries": 0})
        if "/dagRuns" in handler.path:
            return self._send(handler, 200, {"dag_runs": [], "total_entries": 0})
        if handler.path == "/api/v2/backfills" and method == "POST":
            assert json.loads(body)["reprocess_behavior"] == "none"
            return self._send(handler, 409, {"detail": "There is already a running backfill for dag orders"})
        return self._send(handler, 404, {"detail": "not found"})

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def fake_airflow() -> Iterator[tuple[FakeAirflow, str]]:
    fake = FakeAirflow()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.handle(self, "GET")

        def do_POST(self) -> None:
            fake.handle(self, "POST")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_expired_token_is_refreshed_and_a_refused_backfill_names_url_and_status(fake_airflow) -> None:
    fake, url = fake_airflow
    api = AirflowApi(url, username="admin", password=PASSWORD)
    ledger = Ledger(
        "orders",
        tuple(LedgerWindow(DAY + h * HOUR, DAY + (h + 1) * HOUR, WindowState.NEVER_RAN) for h in range(3)),
    )
    with pytest.raises(
        AirflowApiError, match=r"POST http://127\.0\.0\.1:\d+/api/v2/backfills: HTTP 409"
    ) as caught:
        repair_missing(api, "orders_to_warehouse", ledger, max_windows=2)
    assert caught.value.status == 409
    assert PASSWORD not in str(caught.value)
    assert fake.tokens_issued >= 3  # one per call after the first: each 401 got exactly one refresh
    # The refused backfill reached Airflow once: a 409 is not retried into a double.
    assert fake.authenticated.count(("POST", "/api/v2/backfills")) == 1


def test_a_paused_dag_is_named_in_the_alert_and_not_repaired(fake_airflow, tmp_path) -> None:
    import sqlalchemy as sa
    from airflow.sdk import CronDataIntervalTimetable

    from apisync.coverage import StreamTarget, assess_stream, coverage_alert

    fake, url = fake_airflow
    fake.paused = True
    target = StreamTarget(
        dag_id="orders_to_warehouse",
        stream="orders",
        timetable=CronDataIntervalTimetable("@hourly", timezone="UTC"),
        start=DAY,
        end=DAY + 2 * HOUR,
        grace=timedelta(0),
        warehouse_conn_id="warehouse_default",
        repair="backfill",
    )
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    coverage = assess_stream(
        target,
        engine=engine,
        now=DAY + timedelta(days=1),
        api=AirflowApi(url, username="a", password=PASSWORD),
    )
    assert coverage.paused and coverage.repair is not None and coverage.repair.backfill_id is None
    assert not any(path.startswith("/api/v2/backfills") for _, path in fake.authenticated)
    alert = coverage_alert([coverage])
    assert alert is not None
    assert alert.fields == (
        (
            "orders_to_warehouse",
            "orders: 3 windows never ran, 2026-01-07T00:00Z → 2026-01-07T03:00Z | DAG is paused"
            " | repair: no backfill: the DAG is paused (unpause it to repair)",
        ),
    )


def test_with_token_calls_as_the_token_holder_and_a_refused_token_never_logs_in(fake_airflow) -> None:
    fake, url = fake_airflow
    fake.valid_token = "user-jwt"
    api = AirflowApi.with_token(url, "user-jwt")
    assert api.is_paused("orders_to_warehouse") is False
    assert fake.requests[-1] == ("GET", "/api/v2/dags/orders_to_warehouse", "Bearer user-jwt")
    # The fake takes each token once: the second call is refused, and the client must not try
    # /auth/token (it has no password; the user has to log in again).
    with pytest.raises(AirflowApiError, match="refused the user's token") as caught:
        api.is_paused("orders_to_warehouse")
    assert caught.value.status == 401
    assert fake.tokens_issued == 0
    assert not any(path == "/auth/token" for _, path, _ in fake.requests)
    with pytest.raises(AirflowApiError, match="no Airflow token"):
        AirflowApi.with_token(url, "")
