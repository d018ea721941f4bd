"""A real StatsD server as far as a client can tell: a UDP socket on loopback collecting every line."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict


class StatsdListener:
    """A real StatsD server as far as a client can tell: a UDP socket collecting every line."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                continue
            self.lines.extend(data.decode().splitlines())  # a client may batch lines in one packet

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.socket.close()

    def counters(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for line in self.lines:
            name, _, rest = line.partition(":")
            value, _, kind = rest.partition("|")
            if kind.startswith("c"):
                totals[name] += float(value)
        return dict(totals)

    def timings(self) -> dict[str, list[float]]:
        values: dict[str, list[float]] = defaultdict(list)
        for line in self.lines:
            name, _, rest = line.partition(":")
            value, _, kind = rest.partition("|")
            if kind.startswith("ms"):
                values[name].append(float(value))
        return dict(values)
