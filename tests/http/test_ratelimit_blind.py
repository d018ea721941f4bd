"""Issue 15: a rate learned from 429s alone, header signals that adjust the pace, rechecked slots.

The limiter tests run on a fake clock (``tests.http.fake_clock``) against a token bucket simulated
here, so every wait is exact; the real-HTTP test counts requests and 429s, never elapsed time.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from apisync.http import ApiHook
from apisync.http.headers import RateLimitSnapshot
from apisync.http.ratelimit import PROBE_TTL_S, RateLimiter, SQLiteBackend
from tests.http.fake_clock import FakeClock, FakeClockSQLiteBackend
from tests.http.test_shared_limit import _record_grants, refusals

SERVER_RATE = 20.0
SERVER_BURST = 5
LATENCY_S = 0.01


class Bucket:
    """The server's token bucket on the fake clock."""

    def __init__(self, clock: FakeClock, rate: float = SERVER_RATE, burst: int = SERVER_BURST) -> None:
        self.clock, self.rate, self.burst = clock, rate, burst
        self.tokens, self.stamp = float(burst), clock.now()

    def take(self) -> bool:
        now = self.clock.now()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _drive(limiters: list[RateLimiter], clock: FakeClock, seconds: float) -> tuple[int, int]:
    """Clients take turns: reserve, sleep to the slot, recheck, send; a 429 waits Retry-After: 1."""
    bucket = Bucket(clock)
    ready = [clock.now()] * len(limiters)
    end = clock.now() + seconds
    served = refused = 0
    while True:
        client = min(range(len(limiters)), key=lambda c: (ready[c], c))
        if ready[client] >= end:
            return served, refused
        clock.t = max(clock.t, ready[client])
        limiter = limiters[client]
        reservation = limiter.reserve()
        clock.t += reservation.wait_s
        if not limiter.recheck(reservation):
            ready[client] = clock.t
            continue
        clock.t += LATENCY_S
        if bucket.take():
            served += 1
            ready[client] = clock.t
        else:
            refused += 1
            limiter.throttled(reservation, 1.0)
            ready[client] = clock.t + 1.0


def test_blind_learning_converges_and_is_shared(tmp_path: Path) -> None:
    clock = FakeClock()
    limiters = [RateLimiter(FakeClockSQLiteBackend(tmp_path / "rl.sqlite", clock), "k") for _ in range(2)]
    served, refused = _drive(limiters, clock, 60.0)
    state = limiters[0].state()
    # One rate for both (one state row), just below the server's, learned from a few 429s.
    assert 0.8 * SERVER_RATE <= state.probe_rate <= 1.05 * SERVER_RATE, state
    assert limiters[1].state().probe_rate == state.probe_rate
    assert state.probe_fail >= state.probe_rate
    assert refused <= 0.02 * (served + refused), (served, refused)
    assert served >= 0.85 * SERVER_RATE * 60.0
    first, second = limiters[0].reserve(), limiters[1].reserve()
    assert first.interval == second.interval == pytest.approx(1.0 / state.probe_rate)


def test_learned_rate_is_remembered_by_the_next_run(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "rl.sqlite"
    _drive([RateLimiter(FakeClockSQLiteBackend(path, clock), "k")], clock, 30.0)
    learned = RateLimiter(FakeClockSQLiteBackend(path, clock), "k").state().probe_rate
    assert learned > 0
    clock.advance(6 * 3600)  # the next hourly run, hours later: a new process, a new limiter
    next_run = RateLimiter(FakeClockSQLiteBackend(path, clock), "k")
    reservation = next_run.reserve()
    assert reservation.interval == pytest.approx(1.0 / learned)
    clock.advance(PROBE_TTL_S)  # not confirmed for longer than the TTL: forgotten, unpaced again
    assert next_run.reserve().interval == 0.0


@pytest.mark.parametrize(
    ("declared", "snapshot"),
    [
        (10.0, RateLimitSnapshot(limit=10, remaining=0, reset_s=1)),  # declared, legacy headers
        (None, RateLimitSnapshot(limit=10, remaining=0, reset_s=1, window_s=1)),  # IETF, learned
        (None, RateLimitSnapshot(limit=10, remaining=0, reset_s=1.9)),  # GitHub epoch, rounded twice
    ],
)
def test_remaining_zero_with_a_one_second_reset_moves_one_slot_not_a_second(
    tmp_path: Path, declared: float | None, snapshot: RateLimitSnapshot
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(FakeClockSQLiteBackend(tmp_path / "rl.sqlite", clock), "k", requests=declared)
    limiter.observe(RateLimitSnapshot(limit=10, remaining=5, reset_s=1, window_s=snapshot.window_s))
    limiter.reserve()
    limiter.observe(snapshot)
    wait = limiter.reserve().wait_s
    assert wait <= 0.15, f"remaining=0, reset=1 blocked the known pace for {wait:.2f} s"
    assert limiter.state().blocked_until == 0.0


def test_retry_after_one_slows_the_pace_instead_of_blocking_everyone(tmp_path: Path) -> None:
    clock = FakeClock()
    limiter = RateLimiter(FakeClockSQLiteBackend(tmp_path / "rl.sqlite", clock), "k", requests=10)
    reservation = limiter.reserve()
    limiter.throttled(reservation, 1.0)
    wait = limiter.reserve().wait_s
    assert 0.1 <= wait <= 0.15  # one interval, a little slower, not the whole second
    long_one = limiter.reserve()
    limiter.throttled(long_one, 30.0)  # a long Retry-After still blocks everyone (but its last second)
    assert limiter.reserve().wait_s == pytest.approx(29.0, abs=0.01)


def test_a_slot_reserved_before_a_block_is_rechecked(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "rl.sqlite"
    task_a = RateLimiter(FakeClockSQLiteBackend(path, clock), "k", requests=1, burst=1)
    task_b = RateLimiter(FakeClockSQLiteBackend(path, clock), "k", requests=1, burst=1)
    task_a.reserve()
    slot = task_b.reserve()  # one second ahead: task B sleeps until it
    assert slot.wait_s == pytest.approx(1.0)
    clock.advance(0.5)
    task_a.pause(3.0)  # task A was answered 429 meanwhile: a block that began after B's reservation
    clock.advance(0.5)
    assert task_b.recheck(slot) is False
    again = task_b.reserve()
    assert again.wait_s == pytest.approx(2.5)  # after the block, not at the slot it held
    clock.advance(again.wait_s)
    assert task_b.recheck(again) is True


def test_hook_learns_a_rate_from_429s_alone(sandbox, api_conn, tmp_path: Path) -> None:
    """A server sending only 429 + Retry-After (10 r/s, burst 2): few 429s, and a rate learned."""
    sb = sandbox(records=20, rate=10, burst=2, ratelimit_headers="none")
    conn_id = api_conn(sb, rate_limit_headers="none")
    hook = ApiHook(conn_id)
    count = 60
    for _ in range(count):
        hook.request("GET", "/v1/orders", params={"limit": 1})
    stats = sb.stats()
    assert stats["by_status"]["200"] == count
    assert stats["r429"] < count / 4, stats  # before: a burst, a 429, a 1 s block, again
    key = f"{conn_id}|{urlsplit(sb.url).netloc}"
    state = RateLimiter(SQLiteBackend(tmp_path / "ratelimit.sqlite"), key).state()
    assert state.probe_rate > 0 and not math.isinf(state.probe_rate), state


def test_threads_with_a_hook_each_share_one_budget(sandbox, api_conn) -> None:
    """Two tasks in one worker process (a hook each, as Airflow builds them) on one budget."""
    sb = sandbox(records=20, rate=10, burst=2)
    conn_id = api_conn(sb, rate_limit={"requests": 10, "period_s": 1, "burst": 2})
    hooks = [ApiHook(conn_id) for _ in range(2)]
    granted = []
    for hook in hooks:
        hook.get_conn()
        assert hook.limiter is not None
        granted.append(_record_grants(hook.limiter))

    def load(hook: ApiHook) -> None:
        for _ in range(8):
            hook.request("GET", "/v1/orders", params={"limit": 1})

    threads = [threading.Thread(target=load, args=(hook,)) for hook in hooks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = sb.stats()
    assert stats["r429"] == 0 and stats["by_status"]["200"] == 16, stats
    slots = [slot for grants in granted for slot in grants]
    assert len(slots) == 16 and refusals(slots, rate=10, burst=2) == 0
