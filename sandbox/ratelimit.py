"""Per-credential token buckets and the rate-limit header dialects that describe them.

A bucket holds at most `burst` tokens and refills at `rate` tokens/s on the monotonic clock; a
request takes one token or is refused with the wait until the next token. Buckets are guarded by a
lock so the accounting stays exact if handlers ever run in threads.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from sandbox.timestamps import http_date

RATELIMIT_RESOURCE = "core"
POLICY_NAME = "default"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    # Seconds until one token is available (0 when allowed with tokens left).
    wait_s: float
    # Seconds until the bucket is full again.
    full_s: float
    served: int


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._served = 0
        self._lock = threading.Lock()

    def take(self) -> Decision:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            allowed = self._tokens >= 1.0
            if allowed:
                self._tokens -= 1.0
                self._served += 1
            tokens = self._tokens
            served = self._served
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
        return Decision(allowed, int(tokens), wait, (self.burst - tokens) / self.rate, served)

    def peek(self) -> Decision:
        """State without taking a token (for headers on refused or storm responses)."""
        with self._lock:
            tokens = min(float(self.burst), self._tokens + (time.monotonic() - self._stamp) * self.rate)
            served = self._served
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
        return Decision(tokens >= 1.0, int(tokens), wait, (self.burst - tokens) / self.rate, served)


class RateLimiter:
    """One bucket per credential; `rate=None` means unlimited."""

    def __init__(self, rate: float | None, burst: int, header_mode: str) -> None:
        self.rate = rate
        self.burst = burst
        self.header_mode = header_mode
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate is not None

    def _bucket(self, credential: str) -> TokenBucket:
        bucket = self._buckets.get(credential)
        if bucket is None:
            with self._lock:
                bucket = self._buckets.setdefault(credential, TokenBucket(self.rate or 1.0, self.burst))
        return bucket

    def take(self, credential: str) -> Decision | None:
        return self._bucket(credential).take() if self.enabled else None

    def peek(self, credential: str) -> Decision | None:
        return self._bucket(credential).peek() if self.enabled else None

    def policy(self) -> tuple[int, int]:
        """(quota, window seconds) advertised for the bucket: the refill rate over >= 1 s."""
        rate = self.rate or 1.0
        window = max(1, math.ceil(1.0 / rate))
        return max(1, round(rate * window)), window

    def headers(self, decision: Decision | None) -> list[tuple[bytes, bytes]]:
        if decision is None or self.header_mode == "none":
            return []
        quota, window = self.policy()
        remaining = decision.remaining
        reset_s = math.ceil(decision.wait_s if remaining == 0 else decision.full_s)
        mode = self.header_mode
        if mode == "github":
            values = {
                "x-ratelimit-limit": quota,
                "x-ratelimit-remaining": remaining,
                "x-ratelimit-used": max(0, quota - remaining),
                "x-ratelimit-reset": math.ceil(time.time() + reset_s),
                "x-ratelimit-resource": RATELIMIT_RESOURCE,
            }
        elif mode == "ietf":
            values = {
                "ratelimit-policy": f'"{POLICY_NAME}";q={quota};w={window}',
                "ratelimit": f'"{POLICY_NAME}";r={remaining};t={reset_s}',
            }
        elif mode == "ietf-legacy":
            values = {"ratelimit-limit": quota, "ratelimit-remaining": remaining, "ratelimit-reset": reset_s}
        else:  # hubspot
            daily = quota * (86400 // window)
            values = {
                "x-hubspot-ratelimit-max": quota,
                "x-hubspot-ratelimit-remaining": remaining,
                "x-hubspot-ratelimit-interval-milliseconds": window * 1000,
                "x-hubspot-ratelimit-daily": daily,
                "x-hubspot-ratelimit-daily-remaining": max(0, daily - decision.served),
            }
        return [(name.encode(), str(value).encode()) for name, value in values.items()]

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


def retry_after_header(mode: str, wait_s: float) -> list[tuple[bytes, bytes]]:
    """Retry-After in the configured form: delta seconds (>= 1), HTTP-date, "0", or absent."""
    if mode == "none":
        return []
    if mode == "zero":
        return [(b"retry-after", b"0")]
    if mode == "date":
        # Rounded up to the next whole second, so the date is never earlier than the real wait.
        return [(b"retry-after", http_date(math.ceil(time.time() + max(wait_s, 0.001))).encode())]
    return [(b"retry-after", str(max(1, math.ceil(wait_s))).encode())]
