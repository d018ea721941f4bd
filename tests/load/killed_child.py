"""Run a real load in a child process and SIGKILL it at a chosen point, announced by a marker file.

The child's script stalls right after the point it marks (writing the marker atomically), so the
parent kills it exactly there: what a crash, an OOM kill or a lost worker does to a real load.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def kill_at_marker(
    script: str,
    env: Mapping[str, str],
    marker: Path,
    *,
    reached: str,
    while_stalled: Callable[[], None] = lambda: None,
) -> str:
    """Run ``script`` with ``env`` (plus the repo on PYTHONPATH and ``MARKER``), wait for its
    marker, call ``while_stalled()``, SIGKILL it; return the marker's text. ``reached`` says in
    the failure message what the child never got to."""
    child_env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'plugins'}{os.pathsep}{REPO}",
        "MARKER": str(marker),
        **env,
    }
    child = subprocess.Popen([sys.executable, "-c", script], env=child_env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else "child exited"
            assert time.monotonic() < deadline, f"child never {reached}"
            time.sleep(0.05)
        text = marker.read_text()
        while_stalled()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return text
