"""Header parsing: Retry-After forms and every rate-limit dialect reduced to one snapshot."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from requests.structures import CaseInsensitiveDict

from apisync.errors import ApiConfigError
from apisync.http.headers import parse_rate_limit, parse_retry_after, validate_dialect

NOW = 1_800_000_000.0


def headers(**values: str) -> CaseInsensitiveDict[str]:
    return CaseInsensitiveDict({k.replace("_", "-"): v for k, v in values.items()})


def test_retry_after_delta_date_zero_and_garbage() -> None:
    assert parse_retry_after("30", NOW) == 30.0
    assert parse_retry_after(formatdate(NOW + 12, usegmt=True), NOW) == pytest.approx(12.0)
    assert parse_retry_after(formatdate(NOW - 100, usegmt=True), NOW) == 0.0
    assert parse_retry_after("0", NOW) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_github_epoch_reset() -> None:
    snap = parse_rate_limit(
        headers(x_ratelimit_limit="5000", x_ratelimit_remaining="12", x_ratelimit_reset=str(int(NOW + 90))),
        "auto",
        now=NOW,
    )
    assert (snap.limit, snap.remaining, snap.reset_s, snap.window_s) == (5000, 12, 90, None)
    assert snap.rate_per_s is None


def test_ietf_structured_fields_pick_most_restrictive_policy() -> None:
    snap = parse_rate_limit(
        headers(
            ratelimit_policy='"burst";q=100;w=60, "daily";q=1000;w=86400',
            ratelimit='"burst";r=50;t=30, "daily";r=3;t=4000',
        ),
        "ietf",
        now=NOW,
    )
    assert (snap.limit, snap.remaining, snap.reset_s, snap.window_s) == (1000, 3, 4000, 86400)


def test_ietf_policy_gives_rate() -> None:
    snap = parse_rate_limit(headers(ratelimit_policy='"default";q=20;w=1', ratelimit='"default";r=4;t=1'))
    assert snap.rate_per_s == 20


def test_ietf_legacy_delta_reset() -> None:
    snap = parse_rate_limit(
        headers(ratelimit_limit="100", ratelimit_remaining="7", ratelimit_reset="15"), "auto", now=NOW
    )
    assert (snap.limit, snap.remaining, snap.reset_s) == (100, 7, 15)


def test_hubspot_interval_milliseconds() -> None:
    snap = parse_rate_limit(
        headers(
            x_hubspot_ratelimit_max="190",
            x_hubspot_ratelimit_remaining="189",
            x_hubspot_ratelimit_interval_milliseconds="10000",
        )
    )
    assert (snap.limit, snap.remaining, snap.window_s) == (190, 189, 10.0)
    assert snap.rate_per_s == pytest.approx(19.0)


def test_vendor_headers_named_in_connection() -> None:
    spec = {
        "limit": "X-Quota",
        "remaining": "X-Quota-Left",
        "reset": "X-Quota-Reset",
        "reset_kind": "epoch_ms",
    }
    snap = parse_rate_limit(
        headers(X_Quota="60", X_Quota_Left="0", X_Quota_Reset=str(int((NOW + 5) * 1000))), spec, now=NOW
    )
    assert (snap.limit, snap.remaining, snap.reset_s) == (60, 0, pytest.approx(5.0))


def test_no_headers_and_bad_dialect() -> None:
    assert parse_rate_limit(headers(content_type="application/json")).is_empty()
    with pytest.raises(ApiConfigError):
        validate_dialect("twitter")
