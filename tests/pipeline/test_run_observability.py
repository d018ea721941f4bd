"""What one real DAG run (dag.test) tells an operator (issue 11): progress lines with the total and
an ETA in the extract log, one line each saying what validate and load did, the run's request
metrics in ``sync_runs``, and the metrics Airflow's StatsD client sends to a real UDP listener."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from apisync.http.latency import latency_percentile
from tests.http.conftest import dag_in_a_folder
from tests.statsd_listener import StatsdListener

pytestmark = pytest.mark.slow

DAG_ID = "test_apisync_observed_customers"
DAG_FILE = f"""
from datetime import UTC, datetime

from airflow.sdk import DAG, CronDataIntervalTimetable

from apisync.pipeline import sync_stream

with DAG(
    "{DAG_ID}",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 12, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    sync_stream("customers", source_conn_id="accounts_test", warehouse_conn_id="warehouse_test")
"""
WINDOW = ("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z")


@contextlib.contextmanager
def _statsd_on(monkeypatch: pytest.MonkeyPatch, **settings: str) -> Iterator[StatsdListener]:
    """``[metrics] statsd_on = True`` (plus ``settings``) pointing at a listener; the Stats backend
    chosen from that config as every task process does at start (task_runner.main: ``initialize``)."""
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk.observability.metrics import stats_utils

    listener = StatsdListener()
    config = {
        "STATSD_ON": "True",
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(listener.port),
        "STATSD_PREFIX": "airflow",
        **settings,
    }
    with monkeypatch.context() as patch:
        for key, value in config.items():
            patch.setenv(f"AIRFLOW__METRICS__{key}", value)
        stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=True)
        try:
            yield listener
        finally:
            client = getattr(stats._get_backend(), "statsd", None)  # the StatsClient and its socket
            if client is not None:
                client.close()
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=True)
    listener.close()


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatsdListener]:
    with _statsd_on(monkeypatch) as listener:
        yield listener


def _wait_for_lines(listener: StatsdListener, count: int) -> list[str]:
    """The listener's lines once ``count`` arrived (UDP on loopback: at once, but in another thread)."""
    deadline = time.monotonic() + 30
    while len(listener.lines) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted(listener.lines)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (  # plain StatsD drops tags: the dag and stream travel in a second name
            {},
            [
                "airflow.apisync.http_status.200.my__dag.orders:2|c",
                "airflow.apisync.http_status.200:2|c",
                "airflow.apisync.requests.my__dag.orders:2|c",
                "airflow.apisync.requests:2|c",
            ],
        ),
        (  # InfluxDB-style StatsD keeps tags: one name each
            {"STATSD_INFLUXDB_ENABLED": "True"},
            [
                "airflow.apisync.http_status.200,dag_id=my.dag,stream=orders:2|c",
                "airflow.apisync.requests,dag_id=my.dag,stream=orders:2|c",
            ],
        ),
    ],
)
def test_metric_names_carry_dag_and_stream_where_tags_are_dropped(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], expected: list[str]
) -> None:
    from apisync.pipeline.metrics import StreamMetrics

    with _statsd_on(monkeypatch, **settings) as listener:
        StreamMetrics("my.dag", "orders").api({"requests": 2, "status_counts": {"200": 2}})
        assert _wait_for_lines(listener, len(expected)) == expected


def _dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return dag_in_a_folder(tmp_path, monkeypatch, "apisync_test_observed.py", DAG_FILE)[0]


def _connect(box: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    source = {
        "conn_type": "http",
        "host": box.url,
        "password": "sandbox-key",
        "extra": {"auth": {"type": "api_key"}, "progress_every_pages": 1},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ACCOUNTS_TEST", json.dumps(source))
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_TEST", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    monkeypatch.setenv("APISYNC_STAGING_URL", f"file://{tmp_path}/staging")
    return database


def test_a_run_logs_progress_validate_and_load_lines_records_request_metrics_and_emits_them(
    airflow_db: Path,
    sandbox: Callable[..., Any],
    statsd: StatsdListener,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    box = sandbox(records=3000, max_page_size=100)
    database = _connect(box, tmp_path, monkeypatch)
    run = _dag(tmp_path, monkeypatch).test(logical_date=datetime(2026, 1, 3, tzinfo=UTC))
    assert run.state == "success", [(ti.task_id, ti.state) for ti in run.get_task_instances()]
    captured = capfd.readouterr()
    log = captured.out + captured.err + caplog.text  # structlog prints; stdlib loggers propagate
    served = box.stats()
    truth = box.truth("customers", updated_gte=WINDOW[0], updated_lt=WINDOW[1])
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM sync_runs")).mappings().one()
        loaded = conn.execute(sa.text("SELECT count(*) FROM customers")).scalar_one()
    engine.dispose()
    quarantined = row["records_quarantined"]
    assert len(truth) > 300 and quarantined > 0 and loaded == len(truth) - quarantined

    # Extract: a progress line per page, with the API's total, percent and ETA.
    progress = re.findall(
        r"customers: page (\d+), ([\d,]+) of ([\d,]+) records \((\d+)%\), [\d.]+ pages/s, ETA (\d+) s", log
    )
    pages = served["requests"]
    assert [int(page) for page, *_ in progress] == list(range(1, pages + 1)), log[-3000:]
    assert {int(total.replace(",", "")) for _, _, total, _, _ in progress} == {len(truth)}
    assert progress[-1][1:4] == (f"{len(truth):,}", f"{len(truth):,}", "100") and progress[-1][4] == "0"

    # Validate and load: one line each saying what they did.
    validate = re.search(
        r"validate customers 2026-01-02T00:00Z→2026-01-03T00:00Z: (\d+) rows checked, (\d+) passed, "
        r"(\d+) quarantined \((.+?)\)",
        log,
    )
    assert validate, log[-3000:]
    checked, passed, failed = (int(validate.group(n)) for n in (1, 2, 3))
    assert (checked, passed, failed) == (len(truth), loaded, quarantined)
    assert re.fullmatch(
        r"expect_[a-z_]+: email \d+ rows?(; expect_[a-z_]+: \w+ \d+ rows?)*", validate.group(4)
    )
    load = re.search(
        r"load customers: (\d+) rows → customers \((\d+) inserted, (\d+) updated, 0 unchanged\) in [\d.]+ s",
        log,
    )
    assert load, log[-3000:]
    assert tuple(int(load.group(n)) for n in (1, 2, 3)) == (loaded, loaded, 0)

    # sync_runs: the run's request metrics.
    assert json.loads(row["status_counts"]) == {"200": pages}
    assert row["api_calls"] == pages and row["api_errors"] == 0 and row["backoff_seconds"] == 0
    assert row["bytes_received"] > 0
    assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"]
    histogram = json.loads(row["latency_histogram"])
    assert sum(histogram.values()) == pages
    assert latency_percentile(histogram, 0.5) == row["latency_p50_ms"]

    # StatsD: what Airflow's Stats client sent, tagged names and the names with dag and stream in them.
    counters, timings = statsd.counters(), statsd.timings()
    for name in ("airflow.apisync.requests", f"airflow.apisync.requests.{DAG_ID}.customers"):
        assert counters.get(name) == pages, sorted(counters)
    assert counters["airflow.apisync.http_status.200"] == pages
    assert counters["airflow.apisync.bytes"] == row["bytes_received"]
    assert len(timings["airflow.apisync.request_latency_ms"]) == pages
    assert counters["airflow.apisync.records_pulled"] == len(truth)
    assert counters["airflow.apisync.records_quarantined"] == quarantined
    assert counters["airflow.apisync.records_loaded"] == loaded
    assert counters.get("airflow.apisync.api_errors", 0) == 0
