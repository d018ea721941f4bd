"""Sandbox configuration: one dataclass whose fields are also the CLI flags and the live-config keys."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sandbox.timestamps import parse_instant

DEFAULT_SEED = 42
DEFAULT_RECORDS = 1000
DEFAULT_WINDOW_START = "2026-01-01T00:00:00Z"
DEFAULT_WINDOW_END = "2026-01-08T00:00:00Z"
DEFAULT_MAX_PAGE_SIZE = 100
DEFAULT_BURST = 5
DEFAULT_TOKEN_TTL_S = 3600
DEFAULT_TIMEOUT_HANG_S = 30.0
DEFAULT_CRM_BURST = 10
DEFAULT_API_KEY = "sandbox-key"
DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"
DEFAULT_BASIC_USER = "sandbox"
DEFAULT_BASIC_PASSWORD = "sandbox"

RATELIMIT_HEADER_MODES = ("github", "ietf", "ietf-legacy", "hubspot", "none")
RETRY_AFTER_MODES = ("delta", "date", "zero", "none")
# "echo": a 401 body also carries the request's method, path, query and headers, as some real APIs'
# do (a client must not copy such a body into its errors unredacted).
AUTH_ERROR_BODIES = ("plain", "echo")
# A record id is packed into the low bits of a sort key; this bounds the record count.
MAX_RECORDS = (1 << 24) - 1

# Changing these rebuilds the generated data set.
DATA_KEYS = frozenset({"seed", "records", "window_start", "window_end"})


class ConfigError(ValueError):
    """A config value is unknown or out of range."""


@dataclass
class SandboxConfig:
    seed: int = DEFAULT_SEED
    records: int = DEFAULT_RECORDS
    window_start: str = DEFAULT_WINDOW_START
    window_end: str = DEFAULT_WINDOW_END
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE
    rate: float | None = None
    burst: int = DEFAULT_BURST
    ratelimit_headers: str = "github"
    retry_after: str = "delta"
    token_ttl: float = DEFAULT_TOKEN_TTL_S
    fault_5xx: float = 0.0
    latency_ms: float = 0.0
    fault_timeout: float = 0.0
    timeout_hang_s: float = DEFAULT_TIMEOUT_HANG_S
    fault_disconnect: float = 0.0
    fault_malformed: float = 0.0
    fault_repeat: float = 0.0
    storm_every: int = 0
    storm_s: float = 2.0
    crm_rate: float | None = None
    crm_burst: int = DEFAULT_CRM_BURST
    crm_ratelimit_headers: str = "hubspot"
    api_keys: list[str] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)  # extra OAuth2 clients, "id:secret"
    basic_users: list[str] = field(default_factory=list)  # extra basic users, "user:password"
    auth_error_body: str = "plain"
    reject_after: int = 0  # > 0: every credential's API requests after its first N get a 401

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("seed", "records", "max_page_size", "burst", "crm_burst", "storm_every", "reject_after"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be an integer, got {getattr(self, name)!r}")
        if not isinstance(self.api_keys, list) or not all(isinstance(k, str) for k in self.api_keys):
            raise ConfigError("api_keys must be a list of strings")
        for name in ("clients", "basic_users"):
            pairs = getattr(self, name)
            if not isinstance(pairs, list) or not all(isinstance(p, str) and ":" in p for p in pairs):
                raise ConfigError(f"{name} must be a list of 'name:secret' strings")
        if self.auth_error_body not in AUTH_ERROR_BODIES:
            raise ConfigError(f"auth_error_body must be one of {AUTH_ERROR_BODIES}")
        if self.reject_after < 0:
            raise ConfigError("reject_after must be >= 0 (0 = off)")
        if not 1 <= self.records <= MAX_RECORDS:
            raise ConfigError(f"records must be in 1..{MAX_RECORDS}, got {self.records}")
        if self.max_page_size < 1:
            raise ConfigError("max_page_size must be >= 1")
        for name in ("rate", "crm_rate"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be > 0 or None (unlimited), got {value}")
        if self.burst < 1 or self.crm_burst < 1:
            raise ConfigError("burst and crm_burst must be >= 1")
        for name in ("ratelimit_headers", "crm_ratelimit_headers"):
            if getattr(self, name) not in RATELIMIT_HEADER_MODES:
                raise ConfigError(f"{name} must be one of {RATELIMIT_HEADER_MODES}")
        if self.retry_after not in RETRY_AFTER_MODES:
            raise ConfigError(f"retry_after must be one of {RETRY_AFTER_MODES}")
        shares = ("fault_5xx", "fault_timeout", "fault_disconnect", "fault_malformed", "fault_repeat")
        for name in shares:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be a share in [0, 1]")
        request_faults = self.fault_5xx + self.fault_timeout + self.fault_disconnect + self.fault_malformed
        if request_faults > 1.0:
            raise ConfigError("fault_5xx + fault_timeout + fault_disconnect + fault_malformed must be <= 1")
        if self.storm_every < 0 or self.storm_s <= 0:
            raise ConfigError("storm_every must be >= 0 (0 = off) and storm_s > 0")
        if self.token_ttl <= 0 or self.latency_ms < 0 or self.timeout_hang_s < 0:
            raise ConfigError("token_ttl must be > 0; latency_ms and timeout_hang_s >= 0")
        try:
            start, end = parse_instant(self.window_start), parse_instant(self.window_end)
        except ValueError as exc:
            raise ConfigError(f"window_start/window_end: {exc}") from None
        if end <= start:
            raise ConfigError("window_end must be after window_start")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A new, validated config with `changes` applied (unknown keys rejected)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {unknown}")
        merged = {**self.to_dict(), **changes}
        try:
            return SandboxConfig(**merged)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:  # e.g. a string where a number belongs
            raise ConfigError(f"invalid config {changes}: {exc}") from exc


def config_fields() -> list[dataclasses.Field[Any]]:
    return list(dataclasses.fields(SandboxConfig))
