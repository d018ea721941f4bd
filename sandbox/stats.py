"""Counters of what the sandbox served, the ground truth benchmarks compare client figures with."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.by_status: Counter[str] = Counter()
            self.by_credential: dict[str, Counter[str]] = {}
            self.faults: Counter[str] = Counter()
            self.by_path: Counter[str] = Counter()

    def request(self, credential: str | None, route: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_path[route] += 1
            if credential is not None:
                self.by_credential.setdefault(credential, Counter())["requests"] += 1

    def requests_of(self, credential: str | None) -> int:
        """API requests made so far with ``credential`` (the one being served included)."""
        with self._lock:
            return self.by_credential.get(credential or "", Counter())["requests"]

    def status(self, credential: str | None, status: int) -> None:
        with self._lock:
            self.by_status[str(status)] += 1
            if credential is not None:
                counter = self.by_credential.setdefault(credential, Counter())
                counter[str(status)] += 1
                if status == 429:
                    counter["r429"] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "by_status": dict(self.by_status),
                "r429": self.by_status.get("429", 0),
                "by_credential": {cred: dict(counter) for cred, counter in self.by_credential.items()},
                "by_path": dict(self.by_path),
                "faults": dict(self.faults),
            }
