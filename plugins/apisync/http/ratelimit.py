"""Client-side rate limiting whose budget is shared by every process using one connection.

How it paces: GCRA (the "virtual scheduling" form of a leaky bucket). Each request atomically
reserves the next slot ``T = period_s / requests`` after the previous one, in a state row shared
through a backend; the caller then sleeps until its slot. Requests leave evenly spaced instead of in
bursts, so network jitter that bunches a few of them is absorbed by the server's own burst
allowance. We allow at most ``PACING_BURST`` (2) back-to-back requests, well inside any server burst
of 2 or more: a GCRA(T, tau) schedule is exactly a token bucket (rate 1/T, burst 1 + tau/T), so it
can never drain a server bucket with the same rate and a bigger burst.

The same row carries what the server told us, so parallel processes agree:
``blocked_until`` (Retry-After on a 429, or remaining=0 until reset), a temporary slower spacing when
remaining gets low (the remaining budget is spread until reset: slow down before the 429), and a
learned spacing when the connection declares no limit (quota / window from the headers).

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

PACING_BURST = 2  # back-to-back requests the client allows itself (server burst must be >= this)
LOW_REMAINING_SHARE = 0.2  # below this share of the quota left, spread the rest until reset
LEARNED_TTL_S = 3600.0  # forget a learned limit after an hour without confirmation
LEARNED_SAFETY = 0.97  # pace learned limits slightly below what the server advertises
STATE_TTL_S = 86400  # Redis key expiry


@dataclass
class LimiterState:
    """Shared state of one connection's budget (all times are epoch seconds)."""

    tat: float = 0.0  # theoretical arrival time of the next request (GCRA)
    blocked_until: float = 0.0
    learned_interval: float = 0.0
    learned_until: float = 0.0
    throttle_interval: float = 0.0
    throttle_until: float = 0.0

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> LimiterState:
        if not raw:
            return cls()
        data = json.loads(raw)
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in data.items() if k in names})

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class Reservation:
    granted: bool  # False: the wait exceeded max_wait and nothing was reserved
    wait_s: float


class LimiterBackend:
    """Atomic read-modify-write of a :class:`LimiterState`; ``fn(state, now)`` mutates and returns.

    ``now()`` is the one clock every decision is computed with (``update`` passes it to ``fn``):
    a subclass with a fake ``now`` drives the limiter deterministically (the tests do).
    """

    def update(self, key: str, fn: Callable[[LimiterState, float], T]) -> T:
        raise NotImplementedError

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
    """Paces requests for one budget key. ``requests=None`` means: learn the limit from headers."""

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
        self.pacing_slots = max(1, min(int(burst), PACING_BURST))

    @property
    def declared(self) -> bool:
        return self.declared_interval > 0

    def _interval(self, state: LimiterState, now: float) -> float:
        interval = self.declared_interval
        if not interval and now < state.learned_until:
            interval = state.learned_interval
        if now < state.throttle_until:
            interval = max(interval, state.throttle_interval)
        return interval

    def reserve(self, max_wait: float = math.inf) -> Reservation:
        """Reserve the next slot; the caller sleeps ``wait_s``. Nothing is reserved past ``max_wait``."""

        def reserve_slot(state: LimiterState, now: float) -> Reservation:
            interval = self._interval(state, now)
            tolerance = (self.pacing_slots - 1) * interval
            start = max(now, state.blocked_until, state.tat - tolerance)
            wait = start - now
            if wait > max_wait:
                return Reservation(False, wait)
            state.tat = max(state.tat, start) + interval
            return Reservation(True, wait)

        return self.backend.update(self.key, reserve_slot)

    def pause(self, seconds: float) -> None:
        """Nobody sends before ``now + seconds`` (a 429's Retry-After)."""

        def block(state: LimiterState, now: float) -> None:
            state.blocked_until = max(state.blocked_until, now + seconds)

        self.backend.update(self.key, block)

    def observe(self, snapshot: RateLimitSnapshot) -> None:
        """Fold the server's quota headers into the shared state (learn, slow down, or block).

        - quota and window known (IETF policy, HubSpot interval) and no declared limit: pace at
          ``LEARNED_SAFETY`` x quota/window, shared with every process;
        - ``remaining == 0`` with a reset: nobody sends until the reset;
        - remaining low (<= 20 % of the quota) while the rate is unknown (GitHub-style fixed windows
          say limit/remaining/reset but no window): spread what is left evenly until the reset.
          With a known rate the pacing already spreads the budget, and servers that refill
          continuously (token buckets) report a low ``remaining`` that says nothing about overrun.
        """
        if snapshot.is_empty():
            return
        learn_interval = 0.0
        if not self.declared and snapshot.rate_per_s:
            learn_interval = 1.0 / (snapshot.rate_per_s * LEARNED_SAFETY)
        remaining, reset_s, limit = snapshot.remaining, snapshot.reset_s, snapshot.limit
        exhausted = remaining is not None and remaining <= 0 and bool(reset_s)
        low = (
            not self.declared
            and not snapshot.rate_per_s
            and remaining is not None
            and bool(reset_s)
            and remaining <= max(1.0, LOW_REMAINING_SHARE * (limit or 0))
        )
        if not (learn_interval or exhausted or low):
            return

        def fold(state: LimiterState, now: float) -> None:
            if learn_interval:
                state.learned_interval = learn_interval
                state.learned_until = now + LEARNED_TTL_S
            if reset_s is None:  # exhausted and low both come with a reset; learning alone does not
                return
            if exhausted:
                state.blocked_until = max(state.blocked_until, now + reset_s)
            elif low and remaining:
                state.throttle_interval = reset_s / remaining
                state.throttle_until = now + reset_s

        self.backend.update(self.key, fold)

    def state(self) -> LimiterState:
        return self.backend.update(self.key, lambda state, now: LimiterState(**asdict(state)))

    def reset(self) -> None:
        """Forget everything about this key (tests, or after changing the connection's limit)."""

        def clear(state: LimiterState, now: float) -> None:
            for f in fields(state):
                setattr(state, f.name, 0.0)

        self.backend.update(self.key, clear)


def make_backend(config: RateLimitSettings) -> LimiterBackend:
    """Backend from the validated ``rate_limit`` extras (``backend``, ``path``, ``redis_url``,
    ``key_prefix``)."""
    if config.backend == "redis":
        url = config.redis_url or "redis://127.0.0.1:6379/0"
        return RedisBackend(
            url, prefix="apisync:ratelimit:" if config.key_prefix is None else config.key_prefix
        )
    return SQLiteBackend(config.path or default_sqlite_path())
