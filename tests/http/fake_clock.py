"""A clock that moves only when told, and limiter backends that read it.

The limiter computes every decision with ``backend.now()`` (see ``LimiterBackend``), so a backend
whose ``now`` is this clock makes waits exact: a busy machine cannot change what a test sees.
"""

from __future__ import annotations

import os

from apisync.http.ratelimit import RedisBackend, SQLiteBackend

START = 1_750_000_000.0  # any epoch second; far from 0 so "unset" timestamps stay distinguishable


class FakeClock:
    """``now()`` for the limiter; ``sleep(s)`` and ``advance(s)`` move it forward."""

    def __init__(self, start: float = START) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    advance = sleep


class FakeClockSQLiteBackend(SQLiteBackend):
    def __init__(self, path: str | os.PathLike[str], clock: FakeClock) -> None:
        super().__init__(path)
        self.clock = clock

    def now(self) -> float:
        return self.clock.now()


class FakeClockRedisBackend(RedisBackend):
    def __init__(self, url: str, prefix: str, clock: FakeClock) -> None:
        super().__init__(url, prefix=prefix)
        self.clock = clock

    def now(self) -> float:
        return self.clock.now()
