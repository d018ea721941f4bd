"""Token bucket per credential: 429 past the burst, with the configured header dialect and Retry-After."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import pytest
import requests

from sandbox.testing import SandboxHandle

RATE = 2
BURST = 3
KEY = {"X-API-Key": "sandbox-key"}


@pytest.fixture(scope="module")
def sb(module_sandbox: Callable[..., SandboxHandle]) -> SandboxHandle:
    return module_sandbox(records=20, rate=RATE, burst=BURST)


def _burst(sb: SandboxHandle, n: int, headers: dict[str, str] = KEY) -> list[requests.Response]:
    with requests.Session() as session:
        return [
            session.get(f"{sb.url}/api/orders", params={"limit": 1}, headers=headers, timeout=10)
            for _ in range(n)
        ]


def _exhaust(sb: SandboxHandle, **config: str) -> list[requests.Response]:
    sb.configure(**config)
    sb.reset()
    responses = _burst(sb, BURST + 1)
    assert [r.status_code for r in responses] == [200] * BURST + [429]
    assert responses[-1].json() == {"message": "rate limit exceeded"}
    return responses


def test_github_headers(sb: SandboxHandle) -> None:
    responses = _exhaust(sb, ratelimit_headers="github", retry_after="delta")
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
    last = responses[-1].headers
    assert last["x-ratelimit-limit"] == str(RATE)
    assert last["x-ratelimit-resource"] == "core"
    assert int(last["x-ratelimit-used"]) == RATE
    assert time.time() - 1 <= int(last["x-ratelimit-reset"]) <= time.time() + 3


def test_ietf_headers(sb: SandboxHandle) -> None:
    responses = _exhaust(sb, ratelimit_headers="ietf")
    assert responses[0].headers["RateLimit-Policy"] == f'"default";q={RATE};w=1'
    assert re.fullmatch(r'"default";r=2;t=\d+', responses[0].headers["RateLimit"])
    assert re.fullmatch(r'"default";r=0;t=[1-9]\d*', responses[-1].headers["RateLimit"])


def test_ietf_legacy_headers(sb: SandboxHandle) -> None:
    last = _exhaust(sb, ratelimit_headers="ietf-legacy")[-1].headers
    assert last["RateLimit-Limit"] == str(RATE)
    assert last["RateLimit-Remaining"] == "0"
    assert 1 <= int(last["RateLimit-Reset"]) <= 2


def test_hubspot_headers(sb: SandboxHandle) -> None:
    responses = _exhaust(sb, ratelimit_headers="hubspot")
    last = responses[-1].headers
    assert last["X-HubSpot-RateLimit-Max"] == str(RATE)
    assert last["X-HubSpot-RateLimit-Remaining"] == "0"
    assert last["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
    daily = int(last["X-HubSpot-RateLimit-Daily"])
    assert int(last["X-HubSpot-RateLimit-Daily-Remaining"]) == daily - BURST


def test_no_headers_mode(sb: SandboxHandle) -> None:
    responses = _exhaust(sb, ratelimit_headers="none")
    for response in responses:
        assert not [h for h in response.headers if "ratelimit" in h.lower()]
    assert responses[-1].headers["Retry-After"] == "1"


@pytest.mark.parametrize("form", ["delta", "date", "zero", "none"])
def test_retry_after_forms(sb: SandboxHandle, form: str) -> None:
    before = time.time()
    refused = _exhaust(sb, ratelimit_headers="github", retry_after=form)[-1]
    value = refused.headers.get("Retry-After")
    if form == "delta":
        assert value == "1"  # 1 token at 2/s: 0.5 s, rounded up to whole seconds
    elif form == "date":
        retry_at = parsedate_to_datetime(value).timestamp()
        assert before <= retry_at <= time.time() + 2
    elif form == "zero":
        assert value == "0"
    else:
        assert value is None


def test_buckets_are_per_credential_and_refill(sb: SandboxHandle) -> None:
    _exhaust(sb, ratelimit_headers="github", retry_after="delta")
    assert _burst(sb, 1, headers={"Authorization": "Basic c2FuZGJveDpzYW5kYm94"})[0].status_code == 200
    time.sleep(1.0 / RATE + 0.05)
    assert _burst(sb, 1)[0].status_code == 200
    stats = sb.stats()
    assert stats["r429"] == 1
    assert stats["by_credential"]["key:sandbox-key"]["r429"] == 1


def test_bucket_admits_burst_plus_rate_times_elapsed(sb: SandboxHandle) -> None:
    """Hammering as fast as possible: exactly burst + rate * elapsed requests get through."""
    rate, burst = 20, 5
    sb.configure(rate=rate, burst=burst)
    sb.reset()
    with requests.Session() as session:
        start = time.monotonic()
        statuses = []
        while time.monotonic() - start < 1.5:
            statuses.append(session.get(f"{sb.url}/api/orders", params={"limit": 1}, headers=KEY).status_code)
        elapsed = time.monotonic() - start
    admitted = statuses.count(200)
    assert statuses.count(429) == len(statuses) - admitted > 0
    assert burst + rate * elapsed - 3 <= admitted <= burst + rate * elapsed + 1
    assert sb.stats()["r429"] == statuses.count(429)
    sb.configure(rate=RATE, burst=BURST)


def test_storm_refuses_everything_for_a_while(sb: SandboxHandle) -> None:
    sb.configure(ratelimit_headers="github", retry_after="delta")
    sb.reset()
    sb.storm(0.6)
    refused = _burst(sb, 1)[0]
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    time.sleep(0.7)
    assert _burst(sb, 1)[0].status_code == 200
    assert sb.stats()["faults"]["storm"] == 1


def test_storm_every_nth_request_opens_a_storm(sb: SandboxHandle) -> None:
    sb.configure(ratelimit_headers="github", retry_after="delta", storm_every=3, storm_s=0.5)
    try:
        sb.reset()
        first = [r.status_code for r in _burst(sb, 4)]
        time.sleep(0.6)
        second = [r.status_code for r in _burst(sb, 2)]
    finally:
        sb.configure(storm_every=0)
    assert first == [200, 200, 429, 429]  # the 3rd opens the storm, the 4th falls inside it
    assert second == [200, 429]  # storm over; the 6th opens the next one
    assert sb.stats()["faults"]["storm"] == 3


def test_ground_truth_is_never_limited(sb: SandboxHandle) -> None:
    sb.reset()
    sb.storm(5)
    for _ in range(BURST + 3):
        assert len(sb.truth("orders")) == 20
    assert sb.stats()["requests"] == 0
    sb.reset()
