"""Errors the sandbox routes raise; app.py turns them into JSON responses.

SandboxError            any error a route reports to the client
├── BadRequestError          400: a parameter or body is invalid
└── NotFoundError            404: unknown resource, object or page
ConfigError             (sandbox.config) invalid configuration value; 400 on /_sandbox/config
"""

from __future__ import annotations

from sandbox.config import ConfigError


class SandboxError(Exception):
    status = 500

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"message": self.message, "status": self.status}
        if self.param:
            body["param"] = self.param
        return body


class BadRequestError(SandboxError):
    status = 400


class NotFoundError(SandboxError):
    status = 404


__all__ = ["BadRequestError", "ConfigError", "NotFoundError", "SandboxError"]
