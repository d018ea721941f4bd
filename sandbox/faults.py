"""Fault injection drawn from one seeded RNG per server run, so a faulty run is reproducible."""

from __future__ import annotations

import random
import threading

SERVER_ERROR_STATUSES = (500, 502, 503)
# Share of injected 503s that carry a Retry-After.
RETRY_AFTER_503_SHARE = 0.5
RETRY_AFTER_503_S = 1
# Share of the body kept when a malformed (truncated) body is served.
MALFORMED_KEEP_SHARE = 0.5


class FaultInjector:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def draw(
        self, fault_5xx: float, fault_timeout: float, fault_disconnect: float, fault_malformed: float
    ) -> str | None:
        """One of "5xx", "timeout", "disconnect", "malformed", or None, by the configured shares."""
        with self._lock:
            roll = self._rng.random()
        for kind, share in (
            ("5xx", fault_5xx),
            ("timeout", fault_timeout),
            ("disconnect", fault_disconnect),
            ("malformed", fault_malformed),
        ):
            if roll < share:
                return kind
            roll -= share
        return None

    def server_error(self) -> tuple[int, bool]:
        """(status, send Retry-After) for an injected 5xx."""
        with self._lock:
            status = self._rng.choice(SERVER_ERROR_STATUSES)
            retry_after = status == 503 and self._rng.random() < RETRY_AFTER_503_SHARE
        return status, retry_after

    def chance(self, share: float) -> bool:
        if share <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < share
