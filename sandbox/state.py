"""The mutable runtime state of one sandbox server, shared by the guard and the routers."""

from __future__ import annotations

import time
from typing import Any

from sandbox.auth import TokenStore
from sandbox.config import DATA_KEYS, SandboxConfig
from sandbox.crm import ContactStore
from sandbox.data import Dataset
from sandbox.faults import FaultInjector
from sandbox.ratelimit import RateLimiter
from sandbox.stats import Stats


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.dataset = _dataset(config)
        self.tokens = TokenStore()
        self.stats = Stats()
        self.contacts = ContactStore()
        self.faults = FaultInjector(config.seed)
        self.storm_until = 0.0
        self.api_requests = 0  # counts toward storm_every
        # Traversal -> records "inserted" so far by the repeat fault (positional dialects).
        self.repeat_shifts: dict[tuple[Any, ...], int] = {}
        self._build_limiters()

    def _build_limiters(self) -> None:
        config = self.config
        self.source_limiter = RateLimiter(config.rate, config.burst, config.ratelimit_headers)
        self.crm_limiter = RateLimiter(config.crm_rate, config.crm_burst, config.crm_ratelimit_headers)

    def configure(self, changes: dict[str, Any]) -> SandboxConfig:
        """Apply a partial config live; data is rebuilt only when a data key changes."""
        new = self.config.updated(changes)
        old = self.config
        self.config = new
        if any(getattr(old, key) != getattr(new, key) for key in DATA_KEYS):
            self.dataset = _dataset(new)
        if new.seed != old.seed:
            self.faults = FaultInjector(new.seed)
        limiter_keys = (
            "rate",
            "burst",
            "ratelimit_headers",
            "crm_rate",
            "crm_burst",
            "crm_ratelimit_headers",
        )
        if any(getattr(old, key) != getattr(new, key) for key in limiter_keys):
            self._build_limiters()
        return new

    def reset(self, data: bool = False) -> None:
        self.stats.reset()
        self.contacts.clear()
        self.source_limiter.reset()
        self.crm_limiter.reset()
        self.storm_until = 0.0
        self.api_requests = 0
        self.repeat_shifts.clear()
        self.faults = FaultInjector(self.config.seed)
        if data:
            self.dataset.revert()

    def storm(self, seconds: float) -> None:
        self.storm_until = time.monotonic() + seconds

    def storm_left(self) -> float:
        """Seconds of storm left for this API request, counted toward storm_every (every Nth request
        opens a storm unless one is already on)."""
        every = self.config.storm_every
        if every:
            self.api_requests += 1
            if self.api_requests % every == 0 and time.monotonic() >= self.storm_until:
                self.storm(self.config.storm_s)
        return max(0.0, self.storm_until - time.monotonic())


def _dataset(config: SandboxConfig) -> Dataset:
    return Dataset(config.seed, config.records, config.window_start, config.window_end)
