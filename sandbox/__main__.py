"""`python -m sandbox --port N [--flags]`: every SandboxConfig field is a flag (dashes for underscores)."""

from __future__ import annotations

import argparse
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any

from sandbox.config import (
    AUTH_ERROR_BODIES,
    RATELIMIT_HEADER_MODES,
    RETRY_AFTER_MODES,
    ConfigError,
    SandboxConfig,
    config_fields,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8900
CHOICES = {
    "ratelimit_headers": RATELIMIT_HEADER_MODES,
    "crm_ratelimit_headers": RATELIMIT_HEADER_MODES,
    "retry_after": RETRY_AFTER_MODES,
    "auth_error_body": AUTH_ERROR_BODIES,
}


def _optional_float(text: str) -> float | None:
    return None if text.lower() in ("none", "null", "") else float(text)


def _string_list(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="apisync sandbox API servers")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug")
    )
    hints = typing.get_type_hints(SandboxConfig)
    for field in config_fields():
        hint = hints[field.name]
        flag = "--" + field.name.replace("_", "-")
        default = field.default_factory() if callable(field.default_factory) else field.default  # type: ignore[misc]
        kwargs: dict[str, Any] = {"dest": field.name, "default": default}
        if field.name in CHOICES:
            kwargs["choices"] = CHOICES[field.name]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            kwargs["type"] = _optional_float
            kwargs["help"] = "number, or 'none' for unlimited (default: %(default)s)"
        elif typing.get_origin(hint) is list:
            kwargs["type"] = _string_list
            kwargs["help"] = "comma-separated"
        else:
            kwargs["type"] = hint
            kwargs["help"] = "default: %(default)s"
        parser.add_argument(flag, **kwargs)
    return parser


def config_to_argv(config: dict[str, Any]) -> list[str]:
    """The CLI flags that reproduce `config` (used by sandbox.testing.run_sandbox)."""
    argv: list[str] = []
    for key, value in config.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            argv += [flag, "none"]
        elif isinstance(value, list | tuple):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    from sandbox.app import create_app

    args = vars(build_parser().parse_args(argv))
    host, port, log_level = args.pop("host"), args.pop("port"), args.pop("log_level")
    try:
        config = SandboxConfig(**args)
    except ConfigError as exc:
        print(f"sandbox: invalid config: {exc}", file=sys.stderr)
        return 2
    app = create_app(config)
    print(f"sandbox listening on http://{host}:{port}", file=sys.stderr, flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=1,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
