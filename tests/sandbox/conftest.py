"""Module-scoped sandbox servers: one process per test module keeps the suite fast."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from sandbox.testing import SandboxHandle, run_sandbox

API_KEY_HEADERS = {"X-API-Key": "sandbox-key"}


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[Callable[..., SandboxHandle]]:
    """Factory like the `sandbox` fixture, but servers live until the module's tests are done."""
    with contextlib.ExitStack() as stack:

        def start(**config: Any) -> SandboxHandle:
            return stack.enter_context(run_sandbox(**config))

        yield start


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A plain session that sends the default API key."""
    with requests.Session() as session:
        session.headers.update(API_KEY_HEADERS)
        yield session
