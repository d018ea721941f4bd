"""ApiHook as a whole: counters and log lines, CRM writes, connection checks and config errors."""

from __future__ import annotations

import logging

import pytest

from apisync.http import ApiConfigError, ApiHook

UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def test_stats_summary_and_progress_lines(sandbox, api_conn, caplog, capsys) -> None:
    sb = sandbox(records=60)
    hook = ApiHook(api_conn(sb, progress_every_pages=2))
    caplog.set_level(logging.INFO)
    pages = list(hook.paginate("/api/orders", pagination={"type": "offset", "page_size": 10}))
    stats = hook.stats()
    assert stats["pages"] == len(pages) == 6 and stats["records"] == 60
    assert stats["requests"] == 6 and stats["bytes"] == sum(len(p.raw) for p in pages)
    assert {"retries", "r429", "throttled_s"} <= stats.keys()
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err  # Airflow's structlog may print instead of propagate
    assert text.count("/api/orders: page ") == 3  # every 2nd page of 6, with the total and an ETA
    assert "/api/orders: page 6, 60 of 60 records (100%)" in text
    assert "summary: 6 requests, 0 retries, 0 x 429" in text and "60 records" in text


def test_crm_upsert_is_retried_through_429_and_stays_idempotent(sandbox, api_conn) -> None:
    sb = sandbox(records=10, crm_rate=2, crm_burst=1)
    hook = ApiHook(api_conn(sb, idempotent_post_paths=[UPSERT]))
    inputs = [
        {"idProperty": "email", "id": f"user{i}@example.com", "properties": {"firstname": f"U{i}"}}
        for i in range(3)
    ]
    for _ in range(3):  # back-to-back batches trip the CRM limiter; the same inputs upsert in place
        response = hook.request("POST", UPSERT, json={"inputs": inputs})
        assert response.status_code == 200
    assert len(sb.crm_contacts()) == 3
    assert hook.stats()["r429"] >= 1


def test_absolute_urls_to_other_hosts_are_refused(sandbox, api_conn) -> None:
    hook = ApiHook(api_conn(sandbox(records=5)))
    with pytest.raises(ApiConfigError, match="refusing to send credentials"):
        hook.request("GET", "https://evil.example.com/steal")


def test_bad_extras_fail_clearly(sandbox, api_conn) -> None:
    sb = sandbox(records=5)
    with pytest.raises(ApiConfigError, match="rate_limit_headers"):
        ApiHook(api_conn(sb, rate_limit_headers="twitter")).get_conn()
    with pytest.raises(ApiConfigError, match=r"auth\.type"):
        ApiHook(api_conn(sb, auth={"type": "kerberos"})).get_conn()
    with pytest.raises(ApiConfigError, match="pagination type"):
        next(ApiHook(api_conn(sb)).paginate("/v1/orders", pagination="scroll"))


def test_tls_verification_and_timeouts_default_on(sandbox, api_conn) -> None:
    hook = ApiHook(api_conn(sandbox(records=5)))
    session = hook.get_conn()
    assert session.verify is True
    assert hook.settings is not None and hook.settings.timeout == (10.0, 60.0)
