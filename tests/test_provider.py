"""provider/ registers the ``apisync`` connection type with Airflow, served by ApiHook.

Without it Airflow builds the http provider's ``HttpHook`` for our connections, so the UI's
connection Test button would never check apisync's extras (tests/e2e/test_connection_test_button.py
presses the real button).
"""

from __future__ import annotations

import json
import re
from importlib.metadata import distribution, entry_points

import pytest

from apisync.http.hook import ApiHook
from scripts.localstack import REPO_ROOT

PROVIDER = REPO_ROOT / "provider"


def test_the_installed_provider_is_this_checkouts() -> None:
    """`make install` installed provider/ (a stale or missing install would hide the type)."""
    installed = distribution("apisync-provider")
    (module,) = [f for f in installed.files or () if str(f) == "apisync_provider/__init__.py"]
    assert module.read_text() == (PROVIDER / "apisync_provider" / "__init__.py").read_text()
    (entry,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.dist and e.dist.name == "apisync-provider"
    ]
    info = entry.load()()
    source = (PROVIDER / "apisync_provider" / "__init__.py").read_text()
    assert f'HOOK_CLASS = "{info["connection-types"][0]["hook-class-name"]}"' in source
    assert info["package-name"] == "apisync-provider"


def test_airflow_builds_apihook_for_an_apisync_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Connection

    conn = {"conn_type": "apisync", "host": "http://127.0.0.1:9", "extra": {"rate_limt": {}}}
    monkeypatch.setenv("AIRFLOW_CONN_TRIED", json.dumps(conn))
    hook = Connection.get("tried").get_hook()
    assert type(hook) is ApiHook
    ok, message = hook.test_connection()
    assert not ok
    assert message.startswith("connection 'tried': unknown extra 'rate_limt' (did you mean 'rate_limit'?)")


def test_the_hook_declares_the_registered_type() -> None:
    """The providers manager warns and keeps the hook's own ``conn_type`` when the two differ."""
    source = (PROVIDER / "apisync_provider" / "__init__.py").read_text()
    (registered,) = re.findall(r'CONNECTION_TYPE = "(\w+)"', source)
    assert ApiHook.conn_type == registered


def test_the_image_installs_the_provider() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "COPY provider /opt/apisync/provider" in dockerfile
    assert "pip install --no-cache-dir --no-deps /opt/apisync/provider" in dockerfile
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "pip install --quiet --no-deps ./provider" in makefile
