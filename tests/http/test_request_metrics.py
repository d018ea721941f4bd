"""Per-request metrics in the hook's stats (latency histogram, status counts, api errors) and the
progress lines of a long read: the total and an ETA when the API says the total (issue 11)."""

from __future__ import annotations

import json
import logging
import random
import re
import socket
from typing import Any

import pytest

from apisync.errors import ApiClientError, RetriesExhaustedError
from apisync.http import ApiHook, add_stats
from apisync.http.latency import latency_bucket, latency_percentile, merge_histograms
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server

PROGRESS = re.compile(
    r"(?P<label>\S+): page (?P<page>\d+), (?P<records>[\d,]+)(?: of (?P<total>[\d,]+))? records"
    r"(?: \((?P<percent>\d+)%\))?, [\d.]+ pages/s(?:, ETA (?P<eta>\d+) s)?"
)


def _log_text(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return caplog.text + captured.out + captured.err  # Airflow's structlog may print instead of propagate


def _progress(text: str) -> list[dict[str, Any]]:
    return [match.groupdict() for match in PROGRESS.finditer(text)]


def test_latency_histogram_merges_exactly_and_its_percentiles_are_within_half_a_bucket() -> None:
    rng = random.Random(11)
    latencies = [rng.lognormvariate(3.5, 0.8) for _ in range(2000)]
    whole: dict[str, int] = {}
    parts: list[dict[str, int]] = [{}, {}, {}]
    for index, ms in enumerate(latencies):
        for histogram in (whole, parts[index % 3]):
            histogram[latency_bucket(ms)] = histogram.get(latency_bucket(ms), 0) + 1
    assert merge_histograms(*parts) == whole
    merged = add_stats(
        add_stats({"latency_ms": parts[0]}, {"latency_ms": parts[1]}), {"latency_ms": parts[2]}
    )
    assert merged["latency_ms"] == whole
    ordered = sorted(latencies)
    for fraction in (0.5, 0.95, 0.99):
        exact = ordered[-(-int(fraction * 1000) * len(ordered) // 1000) - 1]  # nearest rank
        estimate = latency_percentile(whole, fraction)
        assert estimate is not None and abs(estimate - exact) / exact <= 0.045, (fraction, estimate, exact)
    # through JSON (deferral kwargs, XCom) and back: the same histogram
    assert json.loads(json.dumps(whole)) == whole
    assert latency_percentile({}, 0.5) is None


def test_hook_records_latency_status_counts_and_bytes_per_request(sandbox, api_conn) -> None:
    sb = sandbox(records=60, latency_ms=40)
    hook = ApiHook(api_conn(sb))
    pages = list(hook.paginate("/api/orders", pagination={"type": "offset", "page_size": 10}))
    stats = hook.stats()
    served = sb.stats()
    assert stats["status_counts"] == served["by_status"] == {"200": served["requests"]}
    assert sum(stats["latency_ms"].values()) == stats["requests"] == served["requests"] == len(pages)
    p50, p95 = latency_percentile(stats["latency_ms"], 0.5), latency_percentile(stats["latency_ms"], 0.95)
    assert p50 is not None and p95 is not None and 40 * 0.955 <= p50 <= p95  # the server's 40 ms at least
    assert stats["api_errors"] == 0 and stats["bytes"] == sum(len(p.raw) for p in pages)


def test_429s_and_4xx_are_counted_by_status_and_only_non_429_failures_are_api_errors(
    sandbox, api_conn
) -> None:
    sb = sandbox(records=10, rate=0.5, burst=1)
    hook = ApiHook(api_conn(sb, rate_limit_headers="none"))
    for _ in range(2):  # the second comes before the server's bucket refills: 429, then a retry
        hook.request("GET", "/api/orders", params={"limit": 1})
    with pytest.raises(ApiClientError, match="404"):
        hook.request("GET", "/api/no_such_resource")
    stats, served = hook.stats(), sb.stats()["by_status"]
    assert stats["status_counts"] == served and served.get("429", 0) >= 1, served
    assert stats["api_errors"] == served["404"] == 1


def test_network_errors_count_under_error_once_per_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = {
        "conn_type": "http",
        "host": f"http://127.0.0.1:{port}",
        "extra": {"auth": {"type": "none"}, "max_attempts": 2},
    }
    monkeypatch.setenv("AIRFLOW_CONN_REFUSED_METRICS", json.dumps(conn))
    hook = ApiHook("refused_metrics")
    with pytest.raises(RetriesExhaustedError) as failure:
        hook.request("GET", "/v1/orders")
    stats = hook.stats()
    attempts = failure.value.attempts
    assert stats["status_counts"] == {"error": attempts} and stats["api_errors"] == attempts >= 1
    assert stats["latency_ms"] == {}  # no response, no latency


def test_progress_lines_give_the_total_and_an_eta_when_the_body_says_the_total(
    sandbox, api_conn, caplog, capsys
) -> None:
    sb = sandbox(records=60)
    hook = ApiHook(api_conn(sb, progress_every_pages=2))
    caplog.set_level(logging.INFO)
    list(hook.paginate("/api/orders", pagination={"type": "offset", "page_size": 10}, label="orders"))
    lines = _progress(_log_text(caplog, capsys))
    assert [(line["label"], line["page"], line["records"], line["total"]) for line in lines] == [
        ("orders", "2", "20", "60"),
        ("orders", "4", "40", "60"),
        ("orders", "6", "60", "60"),
    ]
    assert [line["percent"] for line in lines] == ["33", "66", "100"]
    assert all(line["eta"] is not None for line in lines) and lines[-1]["eta"] == "0"


def test_progress_lines_take_the_total_of_page_number_and_graphql_dialects(
    sandbox, api_conn, caplog, capsys
) -> None:
    sb = sandbox(records=30)
    hook = ApiHook(api_conn(sb, progress_every_pages=1))
    caplog.set_level(logging.INFO)
    list(
        hook.paginate("/api/v2/orders", pagination={"type": "page_number", "page_size": 10}, label="tickets")
    )
    query = (
        "query($first: Int, $after: String) { orders(first: $first, after: $after) "
        "{ totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }"
    )
    list(
        hook.paginate(
            "/graphql",
            method="POST",
            json={"query": query, "variables": {}},
            pagination={"type": "graphql_relay", "connection_path": "data.orders", "page_size": 10},
            label="products",
        )
    )
    lines = {(line["label"], line["page"]): line for line in _progress(_log_text(caplog, capsys))}
    assert lines[("tickets", "3")]["total"] == "30" and lines[("tickets", "3")]["percent"] == "100"
    assert lines[("products", "1")]["total"] == "30" and lines[("products", "1")]["eta"] is not None


def test_progress_lines_take_x_total_count_and_without_a_total_say_pages_and_rate(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def pages(call: Call, server: ScriptedServer) -> Reply:
        page = int(call.query.get("page", "1"))
        body = json.dumps({"results": [{"id": page * 10 + i} for i in range(10 if page < 3 else 5)]})
        headers = {"X-Total-Count": "25"} if call.path == "/with_header" else {}
        return Reply(body.encode(), headers=headers)

    caplog.set_level(logging.INFO)
    with scripted_server(pages) as server:
        extra = {"auth": {"type": "none"}, "progress_every_pages": 1}
        monkeypatch.setenv(
            "AIRFLOW_CONN_SCRIPTED_TOTAL",
            json.dumps({"conn_type": "http", "host": server.url, "extra": extra}),
        )
        pagination = {"type": "page_number", "page_size": 10, "total_path": None}
        for path in ("/with_header", "/without"):
            list(ApiHook("scripted_total").paginate(path, pagination=pagination, label=path.strip("/")))
    lines = _progress(_log_text(caplog, capsys))
    with_header = [
        (line["records"], line["total"], line["percent"]) for line in lines if line["label"] == "with_header"
    ]
    assert with_header == [("10", "25", "40"), ("20", "25", "80"), ("25", "25", "100")]
    without = [line for line in lines if line["label"] == "without"]
    assert [line["records"] for line in without] == ["10", "20", "25"]
    assert all(line["total"] is None and line["eta"] is None for line in without)


def test_progress_lines_count_pages_against_github_s_last_link(
    sandbox, api_conn, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    sb = sandbox(records=45)
    hook = ApiHook(api_conn(sb, progress_every_pages=1))
    caplog.set_level(logging.INFO)
    list(hook.paginate("/repos/acme/widgets/issues", pagination={"type": "link_header", "page_size": 10}))
    text = _log_text(caplog, capsys)
    lines = re.findall(
        r"issues: page (\d+) of (\d+) \((\d+)%\), ([\d,]+) records, [\d.]+ pages/s, ETA \d+ s", text
    )
    assert [(page, of, percent) for page, of, percent, _ in lines] == [
        ("1", "5", "20"),
        ("2", "5", "40"),
        ("3", "5", "60"),
        ("4", "5", "80"),
        ("5", "5", "100"),  # the last page has no rel="last": the count seen before holds
    ]
    assert lines[-1][3] == "45"
