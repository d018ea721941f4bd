"""Sandbox API servers standing in for real source APIs and a CRM (see sandbox/README.md)."""

from __future__ import annotations

from typing import Any

from sandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_app", "run_sandbox"]


def __getattr__(name: str) -> Any:
    # Lazy: `import sandbox.config` stays free of FastAPI and requests.
    if name == "create_app":
        from sandbox.app import create_app

        return create_app
    if name == "run_sandbox":
        from sandbox.testing import run_sandbox

        return run_sandbox
    raise AttributeError(name)
