"""The command line and the subprocess launcher."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from sandbox.config import ConfigError, SandboxConfig
from sandbox.testing import SandboxStartError, run_sandbox


def test_every_config_key_is_a_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--help"], capture_output=True, text=True, check=True
    )
    for field in dataclasses.fields(SandboxConfig):
        assert "--" + field.name.replace("_", "-") in result.stdout


def test_bad_config_fails_fast_with_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="ratelimit_headers"), run_sandbox(ratelimit_headers="bogus"):
        pass
    with pytest.raises(TypeError), run_sandbox(no_such_key=1):
        pass


def test_start_failure_reports_stderr() -> None:
    with pytest.raises(SandboxStartError, match="stderr"), run_sandbox(startup_timeout_s=0.0):
        pass


def test_lead_fixture_runs_a_sandbox(sandbox) -> None:  # type: ignore[no-untyped-def]
    handle = sandbox(records=5, rate=50)
    assert handle.url.startswith("http://127.0.0.1:") and not handle.url.endswith("/")
    assert len(handle.get_json("/v1/orders", {"limit": 10})["data"]) == 5
    assert handle.configure(burst=7)["burst"] == 7
    assert handle.stats()["requests"] == 1


def test_live_config_rejects_bad_values(sandbox) -> None:  # type: ignore[no-untyped-def]
    handle = sandbox(records=5)
    for bad in ({"rate": "fast"}, {"records": 2.5}, {"fault_5xx": 2}, {"nope": 1}, {"window_end": "soon"}):
        response = handle.request("POST", "/_sandbox/config", json=bad, auth=False)
        assert response.status_code == 400, bad
        assert response.json()["message"]
    assert handle.configure(rate=3.5)["rate"] == 3.5
