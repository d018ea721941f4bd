"""Issue 10: the slices of a window are independent, and a failure no retry can fix fails at once.

Real DAG runs (``dag.test()``) of the customers stream in four mapped slices. The quality case is
the defect seen on the Celery stack, reproduced with the real DAG file, spec and suite: in the
sandbox's 10:00-11:00 window of 2026-01-03 the first slice holds 1 invalid email in 17 records
(5.88 %, over the 5 % threshold) and the other three none. The HTTP cases use a scripted server
that answers one slice with a 404 (never worth a retry) or a 503 (always worth one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from scripts.localstack import run_dag_once
from tests.alerts.conftest import alert_connections, slack_receiver, smtp_server
from tests.http.conftest import dag_in_a_folder
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server
from tests.load.datapath_fixtures import Target

__all__ = ["alert_connections", "slack_receiver", "smtp_server"]
pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
WINDOW = (datetime(2026, 1, 3, 10, tzinfo=UTC), datetime(2026, 1, 3, 11, tzinfo=UTC))
SLICE = timedelta(minutes=15)
SLICES = [(WINDOW[0] + SLICE * i, WINDOW[0] + SLICE * (i + 1)) for i in range(4)]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _task_instances(run: Any) -> dict[tuple[str, int], Any]:
    return {(ti.task_id, ti.map_index): ti for ti in run.get_task_instances()}


def _states(run: Any) -> dict[tuple[str, int], str]:
    return {key: str(ti.state) for key, ti in _task_instances(run).items()}


def _moment(value: Any) -> datetime:
    moment = (
        value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _slice_of(value: Any) -> int:
    """Which slice of WINDOW a moment (a record's stamp, a row's interval start) falls in."""
    moment = _moment(value)
    return next(index for index, (start, end) in enumerate(SLICES) if start <= moment < end)


def _audit_by_slice(target: Target) -> dict[int, list[tuple[Any, ...]]]:
    rows = target.rows(
        "SELECT interval_start, interval_end, status, records_pulled, records_quarantined,"
        f" records_inserted, error FROM {target.table('sync_runs')} ORDER BY id"
    )
    by_slice: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_slice.setdefault(_slice_of(row[0]), []).append(row[2:])
    return by_slice


def _warehouse_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, target: Target) -> None:
    url = target.engine.url.render_as_string(hide_password=False)
    extra = {"sqlalchemy_url": url, **({"schema": target.db_schema} if target.db_schema else {})}
    conn_type = "postgres" if target.db_schema else "sqlite"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": conn_type, "extra": extra})
    )


# ---------------------------------------------------------------- one slice over the threshold


def _invalid_emails(records: list[dict[str, Any]]) -> int:
    """What the customers suite quarantines in the sandbox's data: null or malformed emails."""
    suite = json.loads((REPO_ROOT / "include" / "expectations" / "customers.json").read_text())
    [pattern] = [
        e["kwargs"]["regex"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_match_regex"
    ]
    return sum(1 for r in records if not r["email"] or not re.match(pattern, r["email"]))


def _accounts_api_on(box: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``accounts_api`` as ``make run`` defines it, on the test's sandbox and rate-limit file."""
    extra = {
        "auth": {"type": "oauth2", "token_url": "/oauth/token"},
        "rate_limit": {"path": str(tmp_path / "ratelimit.sqlite")},
    }
    connection = {
        "conn_type": "http",
        "host": box.url,
        "login": box.client_id,
        "password": box.client_secret,
        "extra": extra,
    }
    monkeypatch.setenv("AIRFLOW_CONN_ACCOUNTS_API", json.dumps(connection))


TEST_DAG = """
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable

from apisync.defaults import sync_default_args
from apisync.pipeline import sync_stream

with DAG(
    "test_apisync_customers_{partitions}",
    schedule=CronDataIntervalTimetable("{cron}", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args=sync_default_args(retries=2, retry_delay=timedelta(0), retry_exponential_backoff=False),
) as dag:
    sync_stream(
        "customers", source_conn_id="accounts_api", warehouse_conn_id="{warehouse}", partitions={partitions}
    )
"""


def _test_dag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, cron: str, partitions: int, warehouse: str
) -> Any:
    """A customers DAG with quick retries (retries=2, no delay), in a DAGs folder of its own:
    dag.test() runs the DAG its bundle serialized."""
    source = TEST_DAG.format(cron=cron, partitions=partitions, warehouse=warehouse)
    return dag_in_a_folder(tmp_path, monkeypatch, f"apisync_test_customers_{partitions}.py", source)[0]


def test_a_slice_over_the_threshold_fails_alone_at_once_with_one_audit_row_and_alert(
    airflow_db: Path,
    sandbox: Callable[..., Any],
    warehouse: Target,
    alert_connections: tuple[Any, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smtp, _ = alert_connections
    box = sandbox(records=10_000)
    truth = [box.truth("customers", _stamp(start), _stamp(end)) for start, end in SLICES]
    # The premise, from the ground truth: slice 0 alone is over quarantine_threshold 0.05.
    assert [(len(records), _invalid_emails(records)) for records in truth] == [
        (17, 1),
        (11, 0),
        (20, 0),
        (13, 0),
    ]
    _accounts_api_on(box, tmp_path, monkeypatch)
    _warehouse_connection(monkeypatch, "warehouse_default", warehouse)
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "customers_to_warehouse.py")).dags[
        "customers_to_warehouse"
    ]
    assert all(task.retries == 3 for task in dag.tasks)  # the DAG's own retries, kept: none may be used
    run = run_dag_once(dag, WINDOW[1])

    assert str(run.state) == "failed"
    states = _states(run)
    assert states[("sync_customers.validate", 0)] == "failed"
    assert states[("sync_customers.load", 0)] == "upstream_failed"
    for index in (1, 2, 3):  # the other slices went on to load
        assert states[("sync_customers.load", index)] == "success", states
    assert _task_instances(run)[("sync_customers.validate", 0)].try_number == 1  # no retry

    loaded = {row[0] for row in warehouse.rows(f"SELECT id FROM {warehouse.table('customers')}")}
    assert loaded == {record["id"] for records in truth[1:] for record in records}
    audit = _audit_by_slice(warehouse)
    assert sorted(audit) == [0, 1, 2, 3]
    [(status, pulled, quarantined, inserted, error)] = audit[0]  # one row for the failed slice
    assert (status, pulled, quarantined, inserted) == ("quarantine_threshold_exceeded", 17, 1, None)
    assert error.startswith("sync_customers.validate: QuarantineThresholdError: stream customers:")
    assert "1 of 17 records quarantined (5.88%)" in error
    for index in (1, 2, 3):
        assert [row[:4] for row in audit[index]] == [("success", len(truth[index]), 0, len(truth[index]))]
    # The evidence stays: the slice's bad record is in the quarantine.
    quarantine = warehouse.rows(f"SELECT record_key, interval_start FROM {warehouse.table('quarantine')}")
    assert [_slice_of(start) for _, start in quarantine] == [0]

    # One alert, for the one final failure, naming the slice and its window.
    assert len(smtp.messages) == 1
    text = smtp.messages[0].subject + "\n" + smtp.messages[0].body
    assert "sync_customers.validate[0]" in text
    assert "2026-01-03T10:00:00Z → 2026-01-03T10:15:00Z" in text
    assert "QuarantineThresholdError" in text


def test_an_unsliced_window_over_the_threshold_fails_at_once_with_one_audit_row(
    airflow_db: Path,
    sandbox: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same 17 records as one unpartitioned window (a 15-minute schedule): the plain group."""
    box = sandbox(records=10_000)
    _accounts_api_on(box, tmp_path, monkeypatch)
    target = Target(sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}"), None)
    _warehouse_connection(monkeypatch, "warehouse_test", target)
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")
    dag = _test_dag(tmp_path, monkeypatch, cron="*/15 * * * *", partitions=1, warehouse="warehouse_test")
    run = run_dag_once(dag, SLICES[0][1])

    assert str(run.state) == "failed"
    tis = _task_instances(run)
    assert {key[1] for key in tis} == {-1}  # not mapped
    validate = tis[("sync_customers.validate", -1)]
    assert (str(validate.state), validate.try_number) == ("failed", 1)  # retries=2, none used
    assert str(tis[("sync_customers.load", -1)].state) == "upstream_failed"
    [(status, pulled, quarantined, inserted, error)] = _audit_by_slice(target)[0]
    assert (status, pulled, quarantined, inserted) == ("quarantine_threshold_exceeded", 17, 1, None)
    assert "1 of 17 records quarantined (5.88%)" in error
    target.engine.dispose()


# ---------------------------------------------------------------- one slice's source fails


def _customer(number: int, moment: datetime) -> dict[str, Any]:
    return {
        "id": str(number),
        "email": f"customer{number}@example.com",
        "firstname": "Ada",
        "lastname": "Lovelace",
        "phone": "+1-555-0100",
        "company": "Acme",
        "lifecyclestage": "lead",
        "address": {"city": "Lisbon", "country": "PT"},
        "tags": ["beta"],
        "createdAt": _stamp(moment),
        "updatedAt": _stamp(moment),
    }


RECORDS = [
    _customer(10 * i + k, start + timedelta(minutes=1 + 4 * k))
    for i, (start, _) in enumerate(SLICES)
    for k in range(3)
]


class SliceServer:
    """Offset-paged ``/api/customers``, filtered on the window; one slice answers ``status`` instead."""

    def __init__(self, failing_slice: int, status: int) -> None:
        self.failing_slice, self.status = failing_slice, status
        self.calls_by_slice: dict[int, int] = {}

    def answer(self, call: Call, _: ScriptedServer) -> Reply:
        start, end = _moment(call.query["updated_gte"]), _moment(call.query["updated_lt"])
        index = _slice_of(start)
        self.calls_by_slice[index] = self.calls_by_slice.get(index, 0) + 1
        if index == self.failing_slice:
            return Reply(json.dumps({"message": f"HTTP {self.status}"}).encode(), status=self.status)
        chosen = [r for r in RECORDS if start <= _moment(r["updatedAt"]) < end]
        offset, limit = int(call.query["offset"]), int(call.query["limit"])
        return Reply(json.dumps({"items": chosen[offset : offset + limit], "total": len(chosen)}).encode())


@pytest.fixture
def sliced_run(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[int, int], tuple[Any, SliceServer, Target]]]:
    """``sliced_run(failing_slice, status)``: the test DAG's run of WINDOW against a SliceServer."""
    stack = ExitStack()
    engines: list[sa.Engine] = []

    def run(failing_slice: int, status: int) -> tuple[Any, SliceServer, Target]:
        server = SliceServer(failing_slice, status)
        handle = stack.enter_context(scripted_server(server.answer))
        extra = {
            "auth": {"type": "none"},
            "max_attempts": 1,  # the hook does not retry: each Airflow try is one request per slice
            "rate_limit": {"path": str(tmp_path / "ratelimit.sqlite")},
        }
        monkeypatch.setenv(
            "AIRFLOW_CONN_ACCOUNTS_API", json.dumps({"conn_type": "http", "host": handle.url, "extra": extra})
        )
        database = tmp_path / "warehouse.db"
        monkeypatch.setenv(
            "AIRFLOW_CONN_WAREHOUSE_TEST", json.dumps({"conn_type": "sqlite", "host": str(database)})
        )
        monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")
        dag = _test_dag(tmp_path, monkeypatch, cron="@hourly", partitions=4, warehouse="warehouse_test")
        target = Target(sa.create_engine(f"sqlite:///{database}"), None)
        engines.append(target.engine)
        return run_dag_once(dag, WINDOW[1]), server, target

    with stack:
        yield run
    for engine in engines:
        engine.dispose()


def _assert_other_slices_loaded(run: Any, target: Target, failed: int) -> None:
    assert str(run.state) == "failed"
    states = _states(run)
    for task in ("normalize", "validate", "load"):
        assert states[(f"sync_customers.{task}", failed)] == "upstream_failed", states
    for index in set(range(4)) - {failed}:
        assert states[("sync_customers.load", index)] == "success", states
    loaded = {row[0] for row in target.rows("SELECT id FROM customers")}
    assert loaded == {r["id"] for r in RECORDS if _slice_of(r["updatedAt"]) != failed}


def test_a_404_from_the_source_fails_its_slice_without_retry(sliced_run: Callable[..., Any]) -> None:
    run, server, target = sliced_run(1, 404)
    _assert_other_slices_loaded(run, target, failed=1)
    extract = _task_instances(run)[("sync_customers.extract", 1)]
    assert (str(extract.state), extract.try_number) == ("failed", 1)  # retries=2, none used
    assert server.calls_by_slice[1] == 1
    audit = _audit_by_slice(target)
    [(status, _, _, _, error)] = audit[1]
    assert status == "failed" and "sync_customers.extract: ApiClientError" in error and "HTTP 404" in error
    # The failed extract's own API use reaches its row: the 404, as an API error.
    [(calls, statuses, api_errors)] = target.rows(
        f"SELECT api_calls, status_counts, api_errors FROM {target.table('sync_runs')}"
        " WHERE status = 'failed'"
    )
    assert (calls, json.loads(statuses), api_errors) == (1, {"404": 1}, 1)
    assert all([row[0] for row in audit[index]] == ["success"] for index in (0, 2, 3))


def test_a_503_from_the_source_is_retried_and_audited_once(sliced_run: Callable[..., Any]) -> None:
    run, server, target = sliced_run(2, 503)
    _assert_other_slices_loaded(run, target, failed=2)
    extract = _task_instances(run)[("sync_customers.extract", 2)]
    assert (str(extract.state), extract.try_number) == ("failed", 3)  # both retries used
    assert server.calls_by_slice[2] == 3
    audit = _audit_by_slice(target)
    [(status, _, _, _, error)] = audit[2]  # three tries, one row: the final outcome
    assert status == "failed" and "RetriesExhaustedError" in error and "503" in error
    assert all([row[0] for row in audit[index]] == ["success"] for index in (0, 1, 3))
