"""Client-side rate limiting whose budget is shared by every process using one connection.

How it paces: GCRA (the "virtual scheduling" form of a leaky bucket). Each request atomically
reserves the next slot ``T = period_s / requests`` after the previous one, in a state row shared
through a backend; the caller then sleeps until its slot. Requests leave evenly spaced instead of in
bursts, so network jitter that bunches a few of them is absorbed by the server's own burst
allowance. We allow at most ``PACING_BURST`` (2) back-to-back requests and always fewer than the
server's burst where it is declared: a GCRA(T, tau) schedule is exactly a token bucket (rate 1/T,
burst 1 + tau/T), so it can never drain a server bucket with the same rate and a bigger burst.

The same row carries what the server told us, so parallel processes agree: ``blocked_until`` (a
long Retry-After, or an exhausted quota with a long reset), a temporary slower spacing (after a
429 at a known rate, or when remaining gets low in a long fixed window), a learned spacing when
the connection declares no limit (quota / window from the headers), and, when neither a limit nor
a rate in the headers exists, a rate learned blind from the 429s (slow start, then additive
increase / multiplicative decrease just below the lowest rate answered 429, see
:meth:`RateLimiter.throttled`), remembered for ``PROBE_TTL_S`` so the next run starts at it.
Short signals (``Retry-After: 1``, ``remaining: 0`` with a 1 s reset: whole seconds, rounded up)
move the pace, not a whole-second block for everyone; a slot taken before a block or slow-down is
rechecked before sending (:meth:`RateLimiter.recheck`).

Backends (atomic read-modify-write of one small JSON state per key):

- ``sqlite`` (default): a file under ``$AIRFLOW_HOME`` (or ``rate_limit.path``); ``BEGIN IMMEDIATE``
  serializes processes on one machine, no server needed.
- ``redis``: ``WATCH``/``MULTI`` optimistic transaction with the Redis server clock (``TIME``), for
  workers on several machines.

Why not pyrate-limiter 4.5.1 (evaluated, not a dependency): its ``SQLiteBucket.put`` counts then inserts in a
DEFERRED transaction, which is atomic across processes only with the optional ``filelock`` package
(``use_file_lock=True``; not installed), and then all four processes serialize on a file lock. Its
sliding-window log admits a whole quota back-to-back (20 requests at once against a server burst of 5)
unless the rate is rewritten as 1 per 50 ms; its blocking mode sleeps and re-tries ``put`` (polling)
instead of handing out a slot; and its rates are fixed when the bucket is built, so limits learned
from headers or Retry-After pauses cannot be shared through it. ``limits`` (not installed) has
moving/fixed windows and no pacing either. The GCRA reservation needs one atomic update per request
and returns the exact wait, which is why it is written here (about 100 lines) on top of SQLite/Redis.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from apisync.errors import ApiConfigError
from apisync.http.headers import RateLimitSnapshot

if TYPE_CHECKING:
    import redis

    from apisync.http.settings import RateLimitSettings

T = TypeVar("T")

PACING_BURST = 2  # back-to-back requests the client allows itself, and always fewer than the server's
LOW_REMAINING_SHARE = 0.2  # below this share of the quota left, spread the rest until reset
LEARNED_TTL_S = 3600.0  # forget a learned limit after an hour without confirmation
LEARNED_SAFETY = 0.97  # pace learned limits slightly below what the server advertises
STATE_TTL_S = 8 * 86400  # Redis key expiry (refreshed by every update; outlives PROBE_TTL_S)
WHOLE_SECOND_S = 1.0  # Retry-After and resets come in whole seconds, rounded up: this much may be slack
SHORT_WINDOW_S = 10.0  # a quota whose reset is at most this long (and no window said) is paced
# A 429 answered while pacing at a known rate (declared or from headers): pace this much slower
# for THROTTLE_AFTER_429_S, then back to the known rate.
THROTTLE_AFTER_429_S = 10.0
# Blind discovery (no declared limit, no rate in the headers): see RateLimiter.throttled().
PROBE_DECREASE = 0.9  # after a 429 at rate R, pace at 0.9 R
PROBE_COLD_DECREASE = 0.5  # ... or halve it while no rate has yet held a step without a 429
PROBE_START_RATE = 10.0  # the first 429 (unpaced until then): at most 10 requests/s, doubling
PROBE_START_GROWTH = 1.0  # every step (slow start) until the next 429
PROBE_STEP_S = 1.0  # every second of pacing (the pace binding) without a 429, raise the rate:
PROBE_GROWTH = 0.5  # close this share of the gap to the ceiling (PROBE_CEILING x lowest 429 rate)
PROBE_FREE_GROWTH = 0.1  # or grow 10 % when no 429 rate is remembered
PROBE_CEILING = 0.97
PROBE_TTL_S = 7 * 86400  # a learned rate is remembered for a week (the next run starts at it)
FAIL_TTL_S = 3600.0  # the lowest rate answered 429 caps the growth for an hour, then is probed again
SCOUT_S = 2.0  # a budget nothing is known about: the first limiter asking scouts alone this long
MIN_PROBE_RATE = 0.05  # requests/s: the pace never drops below one request in 20 s
BURST_LEFT_SHARE = 0.5  # after a slow-down the server's bucket holds about half its burst
MIN_COUNTED_S = 0.05  # the send rate (slots granted / time) is measured over at least this long


@dataclass
class LimiterState:
    """Shared state of one connection's budget (all times are epoch seconds, rates requests/s)."""

    tat: float = 0.0  # theoretical arrival time of the next request (GCRA)
    blocked_until: float = 0.0
    changed_at: float = 0.0  # last block or slower pace: reservations taken before it are rechecked
    learned_interval: float = 0.0
    learned_until: float = 0.0
    window_s: float = 0.0  # longest short reset seen in headers that name no window
    window_until: float = 0.0
    throttle_interval: float = 0.0
    throttle_until: float = 0.0
    # blind discovery: the learned pace, the highest rate that held, the lowest answered 429
    probe_rate: float = 0.0
    probe_ok: float = 0.0
    probe_fail: float = 0.0
    probe_until: float = 0.0
    fail_until: float = 0.0
    decreased_at: float = 0.0
    stepped_at: float = 0.0
    paced_since: float = 0.0  # since when the pace has bound (callers waiting for slots); 0: not
    scout: float = 0.0  # the limiter whose answers teach a new budget (the others start slower)
    scout_until: float = 0.0
    probe_burst: float = 0.0  # slots the server let through unpaced before its first 429
    counted: float = 0.0  # slots granted since counted_since (the first slot, or the last slow-down)
    counted_since: float = 0.0

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> LimiterState:
        if not raw:
            return cls()
        data = json.loads(raw)
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in data.items() if k in names})

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def learned_rate(self, now: float) -> float:
        """The rate blind discovery paces at (0: no 429 yet, or forgotten: unpaced)."""
        return self.probe_rate if now < self.probe_until else 0.0


@dataclass(frozen=True)
class Reservation:
    granted: bool  # False: the wait exceeded max_wait and nothing was reserved
    wait_s: float
    taken_at: float = 0.0  # the clock reading it was computed with
    interval: float = 0.0  # the spacing it was paced at (0: unpaced)


class LimiterBackend:
    """Atomic read-modify-write of a :class:`LimiterState`; ``fn(state, now)`` mutates and returns.

    ``now()`` is the one clock every decision is computed with (``update`` passes it to ``fn``):
    a subclass with a fake ``now`` drives the limiter deterministically (the tests do).
    """

    def update(self, key: str, fn: Callable[[LimiterState, float], T]) -> T:
        raise NotImplementedError

    def read(self, key: str) -> tuple[LimiterState, float]:
        """The state as it is now, and ``now()``; a subclass may read without a write lock."""
        return self.update(key, lambda state, now: (LimiterState(**asdict(state)), now))

    def now(self) -> float:
        return time.time()

    def close(self) -> None:
        """Release connections (optional)."""


class SQLiteBackend(LimiterBackend):
    """One SQLite file shared by processes on one machine. Reconnects after fork."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            for attempt in range(50):  # WAL switch and schema may race other processes starting now
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS ratelimit_state (key TEXT PRIMARY KEY, state TEXT)"
                    )
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    time.sleep(0.05 + 0.01 * attempt)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def update(self, key: str, fn: Callable[[LimiterState, float], T]) -> T:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT state FROM ratelimit_state WHERE key = ?", (key,)).fetchone()
                state = LimiterState.from_json(row[0] if row else None)
                before = state.to_json()
                result = fn(state, self.now())
                if state.to_json() != before:
                    conn.execute(
                        "INSERT INTO ratelimit_state (key, state) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET state = excluded.state",
                        (key, state.to_json()),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return result

    def read(self, key: str) -> tuple[LimiterState, float]:
        with self._lock:  # WAL: a plain SELECT sees the last commit and waits for no writer
            row = (
                self._connection()
                .execute("SELECT state FROM ratelimit_state WHERE key = ?", (key,))
                .fetchone()
            )
            return LimiterState.from_json(row[0] if row else None), self.now()

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None


class RedisBackend(LimiterBackend):
    """State in a Redis string per key; WATCH/MULTI retries on contention; Redis clock for ``now``."""

    def __init__(self, url: str, prefix: str = "apisync:ratelimit:") -> None:
        self.url = url
        self.prefix = prefix
        self._client: redis.Redis | None = None
        self._pid = -1

    def _redis(self) -> redis.Redis:
        if self._client is None or self._pid != os.getpid():
            import redis

            self._client = redis.Redis.from_url(self.url, socket_timeout=10)
            self._pid = os.getpid()
        return self._client

    def update(self, key: str, fn: Callable[[LimiterState, float], T]) -> T:
        import redis

        client = self._redis()
        full_key = self.prefix + key
        with client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(full_key)
                    raw = pipe.get(full_key)
                    state = LimiterState.from_json(raw)
                    result = fn(state, self.now())
                    pipe.multi()
                    pipe.set(full_key, state.to_json(), ex=STATE_TTL_S)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def read(self, key: str) -> tuple[LimiterState, float]:
        return LimiterState.from_json(self._redis().get(self.prefix + key)), self.now()

    def now(self) -> float:
        seconds, micros = self._redis().time()
        return seconds + micros / 1e6

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None


def default_sqlite_path() -> Path:
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home) / "apisync_ratelimit.sqlite"


class RateLimiter:
    """Paces requests for one budget key. ``requests=None``: learn the limit (headers, or blind).

    ``burst`` is the server's burst where known (the declared ``rate_limit.burst``): the client
    allows itself fewer back-to-back requests than that (at most ``PACING_BURST``), so a little
    jitter that bunches two requests still finds a token.
    """

    def __init__(
        self,
        backend: LimiterBackend,
        key: str,
        *,
        requests: float | None = None,
        period_s: float = 1.0,
        burst: int = PACING_BURST,
    ) -> None:
        if requests is not None and (requests <= 0 or period_s <= 0):
            raise ApiConfigError("rate_limit.requests and rate_limit.period_s must be > 0")
        self.backend = backend
        self.key = key
        self.declared_interval = period_s / requests if requests else 0.0
        self.pacing_slots = max(1, min(int(burst) - 1, PACING_BURST))
        self.identity = float(uuid.uuid4().int % 2**52)  # exact in the JSON state

    @property
    def declared(self) -> bool:
        return self.declared_interval > 0

    def _known_interval(self, state: LimiterState, now: float) -> float:
        """The spacing of a rate someone stated: declared, or from the headers (0: none)."""
        if self.declared_interval:
            return self.declared_interval
        return state.learned_interval if now < state.learned_until else 0.0

    def _interval(self, state: LimiterState, now: float) -> float:
        interval = self._known_interval(state, now)
        if not interval and state.learned_rate(now):
            interval = 1.0 / state.learned_rate(now)
        if now < state.throttle_until:
            interval = max(interval, state.throttle_interval)
        return interval

    def reserve(self, max_wait: float = math.inf) -> Reservation:
        """Reserve the next slot; the caller sleeps ``wait_s``. Nothing is reserved past ``max_wait``."""

        def reserve_slot(state: LimiterState, now: float) -> Reservation:
            interval = self._interval(state, now) or self._scouting_interval(state, now)
            tolerance = (self.pacing_slots - 1) * interval
            start = max(now, state.blocked_until, state.tat - tolerance)
            wait = start - now
            if wait > max_wait:
                return Reservation(False, wait, now, interval)
            if not self._known_interval(state, now):
                self._probe_step(state, now, paced=state.tat - tolerance > now)
            state.tat = max(state.tat, start) + interval
            if wait > 0 and not self._known_interval(state, now) and not state.learned_rate(now):
                state.counted_since = 0.0  # before the first 429 only a burst is counted
            if not state.counted_since:
                state.counted, state.counted_since = 0.0, start
            state.counted += 1
            return Reservation(True, wait, now, interval)

        return self.backend.update(self.key, reserve_slot)

    def _scouting_interval(self, state: LimiterState, now: float) -> float:
        """Nothing known about the budget yet (a first run, several tasks starting at once): the
        first limiter to ask sends unpaced and its first answers teach the rate (headers, or a
        429); the others start at ``PROBE_START_RATE`` for ``SCOUT_S``, not in one burst that
        the server refuses. Then, still nothing known, everyone unpaced, as for a server that
        never limits."""
        if not state.scout_until:
            state.scout, state.scout_until = self.identity, now + SCOUT_S
        if state.scout == self.identity or now >= state.scout_until:
            return 0.0
        return 1.0 / PROBE_START_RATE

    def _probe_step(self, state: LimiterState, now: float, *, paced: bool) -> None:
        """Blind discovery, additive part: a step of pacing without a 429 raises the learned rate.

        Only while the pace binds (the callers wait for slots): a rate nobody reaches proves nothing.
        The rate climbs towards ``PROBE_CEILING`` x the lowest rate answered 429 (closing a share of
        the gap per step, so it slows down near it), or by ``PROBE_FREE_GROWTH`` when none is known.
        """
        _forget_expired_probe(state, now)
        rate = state.learned_rate(now)
        if not paced:
            state.paced_since = 0.0
            return
        state.paced_since = state.paced_since or now
        held_since = max(state.paced_since, state.stepped_at, state.decreased_at)
        if not rate or now - held_since < PROBE_STEP_S:
            return
        state.probe_ok = max(state.probe_ok, rate)
        if state.probe_fail and now < state.fail_until:
            ceiling = PROBE_CEILING * state.probe_fail
            if ceiling > rate:
                state.probe_rate = rate + PROBE_GROWTH * (ceiling - rate)
        elif state.probe_fail:
            state.probe_rate = rate * (1.0 + PROBE_FREE_GROWTH)
        else:
            state.probe_rate = rate * (1.0 + PROBE_START_GROWTH)
        state.stepped_at = now
        state.probe_until = now + PROBE_TTL_S

    def recheck(self, reservation: Reservation) -> bool:
        """Before sending on a slot that was waited for: still good (True), or did a block or a
        slower pace begin after it was taken (False: reserve again, the new slot honours it)."""
        if reservation.wait_s <= 0:
            return True
        state, _ = self.backend.read(self.key)
        return state.changed_at <= reservation.taken_at

    def pause(self, seconds: float) -> None:
        """Nobody sends before ``now + seconds``."""

        def block(state: LimiterState, now: float) -> None:
            if now + seconds > state.blocked_until:
                state.blocked_until = now + seconds
                state.changed_at = now

        self.backend.update(self.key, block)

    def throttled(self, reservation: Reservation, retry_after: float | None) -> None:
        """The request sent on ``reservation`` was answered 429: fold that into the shared pace.

        - ``Retry-After`` longer than a whole second blocks everyone for all but its last second
          (what a rounded-up value guarantees); the request itself waits all of it (the retry
          policy). A block says when, not how fast: nothing is learned from it.
        - A shorter one is a pace signal, answered once per overload (a 429 on a slot taken before
          the last slow-down is the same overload): with a known rate (declared or from headers),
          pace ``1 / PROBE_DECREASE`` slower for ``THROTTLE_AFTER_429_S``; blind, the server's rate
          is estimated from what it let through since the last slow-down (the bucket went from
          about half its burst to empty), remembered as the lowest limit seen (the climb's
          ceiling), and the pace goes back to the highest rate that held a step, between
          ``PROBE_COLD_DECREASE`` and ``PROBE_DECREASE`` x the rate of the 429 and below
          ``PROBE_CEILING`` x that estimate. The first 429, unpaced, only starts the slow start.
        Either way the slots already handed out are dropped (their holders recheck and reserve
        again) and the next one is one new interval away, so the server's bucket refills a token.
        """
        block = max(0.0, (retry_after or 0.0) - WHOLE_SECOND_S)

        def fold(state: LimiterState, now: float) -> None:
            if block > 0:
                if now + block > state.blocked_until:
                    state.blocked_until = now + block
                    state.changed_at = now
                return
            if reservation.taken_at < state.decreased_at:
                return
            known = self._known_interval(state, now)
            if known:
                current = max(known, state.throttle_interval if now < state.throttle_until else 0.0)
                state.throttle_interval = current / PROBE_DECREASE
                state.throttle_until = now + THROTTLE_AFTER_429_S
            else:
                self._probe_decrease(state, now, reservation)
            state.decreased_at = state.changed_at = now
            state.tat = now + self._interval(state, now)

        self.backend.update(self.key, fold)

    def _probe_decrease(self, state: LimiterState, now: float, reservation: Reservation) -> None:
        """Blind discovery, multiplicative part (see :meth:`throttled`)."""
        _forget_expired_probe(state, now)
        counted_s = now - state.counted_since if state.counted_since else 0.0
        sent = state.counted / max(counted_s, MIN_COUNTED_S)
        if not reservation.interval:  # unpaced: the rate says how fast we send; the count, the burst
            state.probe_burst = state.probe_burst or state.counted
            state.probe_rate = max(MIN_PROBE_RATE, min(PROBE_COLD_DECREASE * sent, PROBE_START_RATE))
        else:
            at = 1.0 / reservation.interval
            limit = at  # the server refused this rate: its own is lower
            if counted_s >= PROBE_STEP_S:
                # Since the last slow-down the server's bucket went from about half its burst
                # to empty: what it let through, less that, over the time is its rate.
                drained = (state.counted - BURST_LEFT_SHARE * state.probe_burst) / counted_s
                limit = min(at, max(PROBE_COLD_DECREASE * at, drained))
            if state.probe_fail and now < state.fail_until:
                state.probe_fail = min(state.probe_fail, limit)
            else:
                state.probe_fail = limit
            state.fail_until = now + FAIL_TTL_S
            # Back to the highest rate that held a step, but between 0.5 and 0.9 x the rate of
            # the 429, and below the limit it revealed.
            held = min(state.probe_ok, PROBE_DECREASE * at, PROBE_CEILING * limit)
            state.probe_rate = max(MIN_PROBE_RATE, PROBE_COLD_DECREASE * at, held)
        state.counted, state.counted_since = 0.0, 0.0  # counting again from the next slot
        state.probe_ok = min(state.probe_ok, state.probe_rate)
        state.probe_until = now + PROBE_TTL_S
        state.stepped_at = now

    def observe(self, snapshot: RateLimitSnapshot) -> None:
        """Fold the server's quota headers into the shared state (learn, slow down, or block).

        - quota and window known (IETF policy, HubSpot interval) and no declared limit: pace at
          ``LEARNED_SAFETY`` x quota/window, shared with every process; a quota with only a short
          reset (GitHub-style and legacy ``RateLimit-*`` headers on a per-second limit) is taken
          as quota per window, the window being the longest reset seen (whole seconds, at most
          ``SHORT_WINDOW_S``);
        - ``remaining == 0`` with a reset: with a known pace and a short reset (at most
          ``SHORT_WINDOW_S``: whole seconds, rounded up, a GitHub epoch once more) only the next slot
          moves one interval away, since the pace refills it; otherwise nobody sends before the
          reset's last whole second;
        - remaining low (<= 20 % of the quota) while the rate is unknown (GitHub-style fixed windows
          say limit/remaining/reset but no window, and reset in minutes): spread what is left
          evenly until the reset. With a known rate the pacing already spreads the budget, and
          servers that refill continuously (token buckets) report a low ``remaining`` that says
          nothing about overrun.
        """
        if snapshot.is_empty():
            return
        remaining, reset_s, limit = snapshot.remaining, snapshot.reset_s, snapshot.limit
        rate = snapshot.rate_per_s
        window = 0.0
        if not rate and limit and reset_s:
            window = max(WHOLE_SECOND_S, float(math.floor(reset_s)))
            window = window if window <= SHORT_WINDOW_S else 0.0
        exhausted = remaining is not None and remaining <= 0 and bool(reset_s)
        maybe_low = (
            not self.declared
            and not rate
            and not window
            and remaining is not None
            and bool(reset_s)
            and remaining <= max(1.0, LOW_REMAINING_SHARE * (limit or 0))
        )
        learn = not self.declared and bool(rate or window)
        if not (learn or exhausted or maybe_low):
            return

        def fold(state: LimiterState, now: float) -> None:
            if learn:
                per_s = rate
                if window:
                    if now >= state.window_until or window > state.window_s:
                        state.window_s = window
                    state.window_until = now + LEARNED_TTL_S
                    per_s = (limit or 0.0) / state.window_s
                if per_s:
                    state.learned_interval = 1.0 / (per_s * LEARNED_SAFETY)
                    state.learned_until = now + LEARNED_TTL_S
            if reset_s is None:  # exhausted and low both come with a reset; learning alone does not
                return
            if exhausted:
                interval = self._known_interval(state, now)
                block = reset_s - WHOLE_SECOND_S
                if interval and reset_s <= SHORT_WINDOW_S:
                    block = 0.0  # the pace refills it: the next slot moves one interval away
                if block > 0 and now + block > state.blocked_until:
                    state.blocked_until = now + block
                    state.changed_at = now
                interval = self._interval(state, now)
                if interval:
                    state.tat = max(state.tat, now + interval)
            elif maybe_low and remaining:
                state.throttle_interval = reset_s / remaining
                state.throttle_until = now + reset_s

        self.backend.update(self.key, fold)

    def state(self) -> LimiterState:
        return self.backend.update(self.key, lambda state, now: LimiterState(**asdict(state)))

    def reset(self) -> None:
        """Forget everything about this key, the learned rate too (tests, or after the server's
        limit changed: see the README)."""

        def clear(state: LimiterState, now: float) -> None:
            for f in fields(state):
                setattr(state, f.name, 0.0)

        self.backend.update(self.key, clear)


def _forget_expired_probe(state: LimiterState, now: float) -> None:
    if state.probe_rate and now >= state.probe_until:
        state.probe_rate = state.probe_ok = state.probe_fail = 0.0


def make_backend(config: RateLimitSettings) -> LimiterBackend:
    """Backend from the validated ``rate_limit`` extras (``backend``, ``path``, ``redis_url``,
    ``key_prefix``)."""
    if config.backend == "redis":
        url = config.redis_url or "redis://127.0.0.1:6379/0"
        return RedisBackend(
            url, prefix="apisync:ratelimit:" if config.key_prefix is None else config.key_prefix
        )
    return SQLiteBackend(config.path or default_sqlite_path())
