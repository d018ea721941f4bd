"""The shared GCRA limiter: pacing, pauses, learning, and SQLite/Redis backends across processes.

Waits are computed on a fake clock (``backend.now()``), so a busy machine cannot move them; the
cross-process test checks the absolute slots handed out, not elapsed time.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import uuid
from pathlib import Path

import pytest

from apisync.http.headers import RateLimitSnapshot
from apisync.http.ratelimit import RateLimiter, SQLiteBackend
from tests.http.fake_clock import FakeClock, FakeClockRedisBackend, FakeClockSQLiteBackend


def test_gcra_spaces_requests_evenly_with_small_tolerance(tmp_path: Path) -> None:
    backend = FakeClockSQLiteBackend(tmp_path / "rl.sqlite", FakeClock())
    limiter = RateLimiter(backend, "k", requests=10, period_s=1, burst=5)
    waits = [limiter.reserve().wait_s for _ in range(6)]  # all asked at the same instant
    # Two back-to-back (PACING_BURST), then one slot every 100 ms, never a burst of 5.
    assert waits[0] == pytest.approx(0, abs=0.01)
    assert waits[1] == pytest.approx(0, abs=0.01)
    for index, wait in enumerate(waits[2:], start=1):
        assert wait == pytest.approx(0.1 * index, abs=0.02)


def test_reserve_beyond_max_wait_reserves_nothing(tmp_path: Path) -> None:
    backend = FakeClockSQLiteBackend(tmp_path / "rl.sqlite", FakeClock())
    limiter = RateLimiter(backend, "k", requests=1, period_s=10)
    limiter.pause(120)
    refused = limiter.reserve(max_wait=60)
    assert not refused.granted and refused.wait_s == pytest.approx(120, abs=1)
    assert limiter.state().tat == 0.0  # no slot was taken by the refused reservation


def test_learns_rate_from_headers_only_when_not_declared(tmp_path: Path) -> None:
    backend = FakeClockSQLiteBackend(tmp_path / "rl.sqlite", FakeClock())
    learner = RateLimiter(backend, "learn")
    learner.observe(RateLimitSnapshot(limit=20, remaining=4, reset_s=1, window_s=1))
    assert learner.state().learned_interval == pytest.approx(1 / (20 * 0.97))
    declared = RateLimiter(backend, "declared", requests=5)
    declared.observe(RateLimitSnapshot(limit=20, remaining=4, reset_s=1, window_s=1))
    assert declared.state().learned_interval == 0.0


def test_low_remaining_without_window_spreads_budget_until_reset(tmp_path: Path) -> None:
    limiter = RateLimiter(FakeClockSQLiteBackend(tmp_path / "rl.sqlite", FakeClock()), "gh")
    limiter.observe(RateLimitSnapshot(limit=5000, remaining=10, reset_s=100))
    assert limiter.state().throttle_interval == pytest.approx(10.0)
    limiter.observe(RateLimitSnapshot(limit=5000, remaining=0, reset_s=50))
    assert limiter.reserve(max_wait=1).wait_s == pytest.approx(50, abs=1)


class _ClockedSQLiteBackend(SQLiteBackend):
    """Remembers the clock reading each reservation was computed with, to recover its absolute slot."""

    last_now = 0.0

    def now(self) -> float:
        self.last_now = super().now()
        return self.last_now


def _hammer(path: str, key: str, count: int, out) -> None:
    backend = _ClockedSQLiteBackend(path)
    limiter = RateLimiter(backend, key, requests=50, period_s=1, burst=1)
    slots = []
    for _ in range(count):
        reservation = limiter.reserve()
        slots.append(backend.last_now + reservation.wait_s)
    out.put(slots)


def test_sqlite_reservations_are_atomic_across_processes(tmp_path: Path) -> None:
    """4 processes x 10 reservations at 50/s: 40 distinct slots, at least 20 ms apart, none shared.

    Checked on the absolute slot times the limiter handed out, not on elapsed time, so a loaded
    machine (late process starts) cannot make it pass or fail by chance.
    """
    path = str(tmp_path / "rl.sqlite")
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(path, "shared", 10, out)) for _ in range(4)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join()
    slots = sorted(slot for result in results for slot in result)
    assert len(slots) == 40
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) >= 0.02 - 1e-6, f"two reservations closer than one 20 ms slot: {min(gaps):.4f}s"


def test_redis_backend_paces_and_shares(redis_url: str) -> None:
    clock = FakeClock()  # two clients of one Redis key, asking at the same instant
    backend = FakeClockRedisBackend(redis_url, f"apisync:test:{uuid.uuid4().hex}:", clock)
    first = RateLimiter(backend, "k", requests=10, period_s=1, burst=1)
    second = RateLimiter(FakeClockRedisBackend(redis_url, backend.prefix, clock), "k", requests=10, burst=1)
    waits = [first.reserve().wait_s, second.reserve().wait_s, first.reserve().wait_s]
    assert waits[0] == pytest.approx(0, abs=0.02)
    assert waits[1] == pytest.approx(0.1, abs=0.03)
    assert waits[2] == pytest.approx(0.2, abs=0.03)
    second.pause(30)
    assert first.reserve(max_wait=5).granted is False
