"""Parse the rate-limit signals servers send: Retry-After and the X-RateLimit-* family.

Every dialect is reduced to one :class:`RateLimitSnapshot` (limit, remaining, seconds until reset,
window length), so the limiter reasons about one shape whatever the server speaks:

- ``github``: ``x-ratelimit-limit/remaining/reset`` (reset = UTC epoch seconds);
- ``ietf``: structured fields ``RateLimit-Policy: "default";q=100;w=60`` and
  ``RateLimit: "default";r=42;t=17`` (draft-ietf-httpapi-ratelimit-headers, recent revisions);
- ``ietf-legacy``: ``RateLimit-Limit/Remaining/Reset`` (reset = delta seconds);
- ``hubspot``: ``X-HubSpot-RateLimit-Max/Remaining/Interval-Milliseconds``;
- a dict naming vendor headers: ``{"limit": "X-Foo-Limit", "remaining": "X-Foo-Remaining",
  "reset": "X-Foo-Reset", "reset_kind": "epoch"|"delta"|"epoch_ms"|"delta_ms",
  "window": "X-Foo-Window", "window_kind": "s"|"ms"}``;
- ``auto`` (default): the first of the above that the response carries.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from apisync.errors import ApiConfigError

DIALECTS = ("auto", "github", "ietf", "ietf-legacy", "hubspot", "none")


@dataclass(frozen=True)
class RateLimitSnapshot:
    """What one response says about the quota. Any field may be unknown (``None``)."""

    limit: float | None = None
    remaining: float | None = None
    reset_s: float | None = None  # seconds from now until the quota resets / refills
    window_s: float | None = None  # length of the quota window, when the server says

    @property
    def rate_per_s(self) -> float | None:
        """Sustainable requests per second, when both quota and window are known."""
        if self.limit and self.window_s:
            return self.limit / self.window_s
        return None

    def is_empty(self) -> bool:
        return self.limit is None and self.remaining is None and self.reset_s is None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); ``None`` if absent/bad.

    Never negative. ``0`` is returned as ``0.0``: the retry policy applies its own floor, so a server
    answering ``Retry-After: 0`` cannot make us spin.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)  # raises ValueError (never returns None) since 3.10
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, moment.timestamp() - now)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", value)
    return float(match.group(1)) if match else None


def _sf_items(value: str | None) -> list[tuple[str, dict[str, str]]]:
    """Loose parser for an RFC 8941 list of items with parameters: ``"name";k=v;k2=v2, ...``."""
    if not value:
        return []
    items = []
    for raw in value.split(","):
        parts = [p.strip() for p in raw.split(";")]
        if not parts or not parts[0]:
            continue
        name = parts[0].strip('"')
        params = {}
        for param in parts[1:]:
            key, _, val = param.partition("=")
            params[key.strip()] = val.strip().strip('"')
        items.append((name, params))
    return items


def _parse_github(headers: Mapping[str, str], now: float) -> RateLimitSnapshot:
    reset = _number(headers.get("x-ratelimit-reset"))
    return RateLimitSnapshot(
        limit=_number(headers.get("x-ratelimit-limit")),
        remaining=_number(headers.get("x-ratelimit-remaining")),
        reset_s=None if reset is None else max(0.0, reset - now),
    )


def _parse_ietf(headers: Mapping[str, str], now: float) -> RateLimitSnapshot:
    policies = _sf_items(headers.get("ratelimit-policy"))
    limits = _sf_items(headers.get("ratelimit"))
    if not policies and not limits:
        return RateLimitSnapshot()
    # With several policies, the most restrictive remaining one decides; pair them by name.
    limit = window = remaining = reset = None
    by_name = {name: params for name, params in policies}
    candidates = []
    for name, params in limits:
        r, t = _number(params.get("r")), _number(params.get("t"))
        policy = by_name.get(name, {})
        candidates.append((r if r is not None else float("inf"), r, t, policy))
    if candidates:
        _, remaining, reset, policy = min(candidates, key=lambda c: c[0])
        limit, window = _number(policy.get("q")), _number(policy.get("w"))
    elif policies:
        limit, window = _number(policies[0][1].get("q")), _number(policies[0][1].get("w"))
    return RateLimitSnapshot(limit=limit, remaining=remaining, reset_s=reset, window_s=window)


def _parse_ietf_legacy(headers: Mapping[str, str], now: float) -> RateLimitSnapshot:
    raw_limit = headers.get("ratelimit-limit")
    window = None
    if raw_limit and "w=" in raw_limit:  # draft-03 style "100, 100;w=60"
        window = _number(raw_limit.split("w=", 1)[1])
    return RateLimitSnapshot(
        limit=_number(raw_limit),
        remaining=_number(headers.get("ratelimit-remaining")),
        reset_s=_number(headers.get("ratelimit-reset")),
        window_s=window,
    )


def _parse_hubspot(headers: Mapping[str, str], now: float) -> RateLimitSnapshot:
    interval_ms = _number(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    return RateLimitSnapshot(
        limit=_number(headers.get("x-hubspot-ratelimit-max")),
        remaining=_number(headers.get("x-hubspot-ratelimit-remaining")),
        window_s=None if interval_ms is None else interval_ms / 1000.0,
    )


def _parse_custom(spec: Mapping[str, Any], headers: Mapping[str, str], now: float) -> RateLimitSnapshot:
    reset = _number(headers.get(spec["reset"])) if spec.get("reset") else None
    kind = spec.get("reset_kind", "delta")
    if reset is not None:
        if kind.endswith("_ms"):
            reset /= 1000.0
        if kind.startswith("epoch"):
            reset = max(0.0, reset - now)
    window = _number(headers.get(spec["window"])) if spec.get("window") else None
    if window is not None and spec.get("window_kind", "s") == "ms":
        window /= 1000.0
    return RateLimitSnapshot(
        limit=_number(headers.get(spec["limit"])) if spec.get("limit") else None,
        remaining=_number(headers.get(spec["remaining"])) if spec.get("remaining") else None,
        reset_s=reset,
        window_s=window,
    )


_PARSERS = {
    "github": _parse_github,
    "ietf": _parse_ietf,
    "ietf-legacy": _parse_ietf_legacy,
    "hubspot": _parse_hubspot,
}


def validate_dialect(dialect: str | Mapping[str, Any]) -> None:
    if isinstance(dialect, Mapping):
        if not dialect.get("remaining") and not dialect.get("limit"):
            raise ApiConfigError("rate_limit_headers dict needs at least 'limit' or 'remaining'")
        return
    if dialect not in DIALECTS:
        raise ApiConfigError(f"rate_limit_headers must be one of {DIALECTS} or a dict, got {dialect!r}")


def parse_rate_limit(
    headers: Mapping[str, str], dialect: str | Mapping[str, Any] = "auto", now: float | None = None
) -> RateLimitSnapshot:
    """Read the quota from response headers (``headers`` must be case-insensitive, as in requests)."""
    now = time.time() if now is None else now
    if isinstance(dialect, Mapping):
        return _parse_custom(dialect, headers, now)
    if dialect == "none":
        return RateLimitSnapshot()
    if dialect != "auto":
        return _PARSERS[dialect](headers, now)
    for parser in _PARSERS.values():
        snapshot = parser(headers, now)
        if not snapshot.is_empty():
            return snapshot
    return RateLimitSnapshot()
