"""Source-down benchmark: how long a request takes to fail when nothing listens, sleeping for real.

One GET per case through ``ApiHook`` with the default extras: a closed loopback port (connection
refused) and a reserved ``.invalid`` host (unknown host). Prints the attempts, the backoff the hook
planned and the wall time to the final error, plus that error's first line. The tests check the
attempts and the planned budget; this shows what a user waits.
Run: ``.venv/bin/python benchmarks/bench_source_down.py``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "plugins"), str(REPO_ROOT)]


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def main() -> None:
    from apisync.errors import RetriesExhaustedError
    from apisync.http import ApiHook

    home = tempfile.mkdtemp(prefix="bench_source_down_")
    for case, url in (("refused", _closed_port_url()), ("unknown_host", "http://no-such-host.invalid")):
        extra = {"auth": {"type": "none"}, "rate_limit": {"path": os.path.join(home, "rl.sqlite")}}
        os.environ["AIRFLOW_CONN_BENCH_DOWN"] = json.dumps({"conn_type": "http", "host": url, "extra": extra})
        hook = ApiHook("bench_down")
        started = time.monotonic()
        try:
            hook.request("GET", "/v1/orders")
        except RetriesExhaustedError as error:
            elapsed = time.monotonic() - started
            stats = hook.stats()
            print(
                f"BENCH source_down case={case} attempts={error.attempts} "
                f"planned_backoff_s={error.waited_s:.1f} elapsed_s={elapsed:.1f} "
                f"backoff_s={stats['backoff_s']:.1f} throttled_s={stats['throttled_s']:.1f}"
            )
            print(f"  first line: {type(error).__name__}: {str(error).splitlines()[0]}")
        else:
            raise SystemExit(f"{case}: the request to {url} succeeded")


if __name__ == "__main__":
    main()
