"""Connection extras as a typed model: checked once, before the first request, in plain words.

Extras are written by hand (UI, ``AIRFLOW_CONN_*`` JSON, a secrets backend), so a typo or a wrong
type must fail loudly instead of being ignored or sent to the API: every key is known (a near miss
gets a "did you mean"), every value has a type and a range, and the auth block is a union on
``type`` whose members take only their own keys. :meth:`ApiSettings.from_extras` raises one
:class:`~apisync.errors.ApiConfigError` (a ``ConfigError``: not retried) with one line per problem,
naming the connection, the key path, what was given and what is expected; pydantic's own error
text never reaches the user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from apisync.errors import ApiConfigError, did_you_mean
from apisync.http.headers import DIALECTS
from apisync.http.retry import (
    DEFAULT_CONNECT_ATTEMPTS,
    DEFAULT_CONNECT_BUDGET_S,
    DEFAULT_MAX_ATTEMPTS,
    RetryPolicy,
)

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 60.0
DEFAULT_DEFER_AFTER_S = 60.0
DEFAULT_REFRESH_MARGIN_S = 60.0
PROGRESS_EVERY_PAGES = 50


def _not_a_bool(value: Any) -> Any:
    """pydantic reads ``true`` as 1 for a number; in an extra that is a mistake, not a count."""
    if isinstance(value, bool):
        raise PydanticCustomError("apisync_shape", "not a number")
    return value


Number = Annotated[float, BeforeValidator(_not_a_bool)]
Count = Annotated[int, BeforeValidator(_not_a_bool)]


class _Extras(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- auth ----------------------------------------------------------------------------------------


class ApiKeyAuthSettings(_Extras):
    """The key (the connection password) in a header or a query parameter, not both."""

    type: Literal["api_key"]
    header: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> ApiKeyAuthSettings:
        if self.header and self.query:
            raise PydanticCustomError(
                "apisync_rule", "(type 'api_key') takes exactly one of 'header' or 'query', got both"
            )
        return self


class BearerAuthSettings(_Extras):
    type: Literal["bearer"]


class BasicAuthSettings(_Extras):
    type: Literal["basic"]


class NoAuthSettings(_Extras):
    type: Literal["none"]


class OAuth2AuthSettings(_Extras):
    """Client credentials: client id/secret are the connection login/password."""

    type: Literal["oauth2"]
    token_url: str = "/oauth/token"
    scope: str | None = None
    refresh_margin_s: Annotated[Number, Field(ge=0)] = DEFAULT_REFRESH_MARGIN_S


AUTH_SETTINGS: dict[str, type[_Extras]] = {
    "api_key": ApiKeyAuthSettings,
    "bearer": BearerAuthSettings,
    "basic": BasicAuthSettings,
    "oauth2": OAuth2AuthSettings,
    "none": NoAuthSettings,
}
AuthSettings = Annotated[
    Annotated[ApiKeyAuthSettings, Tag("api_key")]
    | Annotated[BearerAuthSettings, Tag("bearer")]
    | Annotated[BasicAuthSettings, Tag("basic")]
    | Annotated[OAuth2AuthSettings, Tag("oauth2")]
    | Annotated[NoAuthSettings, Tag("none")],
    Discriminator("type"),
]


class ApiVersionSettings(_Extras):
    """The API version the sync was written for, pinned on every call: a header such as
    ``Stripe-Version`` or ``X-GitHub-Api-Version``, a query parameter such as Azure's
    ``api-version`` (each with ``value``), or a path prefix such as ``/v2`` put before every endpoint.
    """

    header: str | None = None
    query: str | None = None
    value: str | None = None
    path_prefix: str | None = None

    @model_validator(mode="after")
    def _one_pin(self) -> ApiVersionSettings:
        places = [name for name in ("header", "query", "path_prefix") if getattr(self, name)]
        if len(places) != 1:
            given = " and ".join(repr(p) for p in places) if places else "none"
            raise PydanticCustomError(
                "apisync_rule", f"takes exactly one of 'header', 'query' or 'path_prefix', got {given}"
            )
        if (self.header or self.query) and not self.value:
            raise PydanticCustomError("apisync_rule", f"with {places[0]!r} needs the version in 'value'")
        if self.path_prefix and self.value:
            raise PydanticCustomError(
                "apisync_rule", "with 'path_prefix' takes no 'value': the prefix is the version"
            )
        return self

    @property
    def prefix(self) -> str:
        """The path prefix as ``/v2`` (no trailing slash), or ``""``."""
        return "/" + self.path_prefix.strip("/") if self.path_prefix else ""


# -- rate limit ----------------------------------------------------------------------------------


class RateLimitSettings(_Extras):
    """The client-side budget; without ``requests`` the limit is learned from response headers, or
    from the 429s alone. ``burst`` is the server's: the client allows itself fewer back-to-back."""

    requests: Annotated[Number, Field(gt=0)] | None = None
    period_s: Annotated[Number, Field(gt=0)] = 1.0
    burst: Annotated[Count, Field(ge=1)] = 2
    backend: Literal["sqlite", "redis"] = "sqlite"
    path: str | None = None  # sqlite
    redis_url: str | None = None  # redis
    key_prefix: str | None = None  # redis
    key: str | None = None

    @model_validator(mode="after")
    def _keys_of_the_backend(self) -> RateLimitSettings:
        foreign = ("redis_url", "key_prefix") if self.backend == "sqlite" else ("path",)
        for name in foreign:
            if getattr(self, name) is not None:
                other = "redis" if self.backend == "sqlite" else "sqlite"
                raise PydanticCustomError(
                    "apisync_rule",
                    'is used only with "backend": "{other}" (the backend is \'{backend}\')',
                    {"other": other, "backend": self.backend, "key": name},
                )
        return self


class HeaderDialectSettings(_Extras):
    """Vendor rate-limit header names (see :mod:`.headers`)."""

    limit: str | None = None
    remaining: str | None = None
    reset: str | None = None
    reset_kind: Literal["epoch", "delta", "epoch_ms", "delta_ms"] = "delta"
    window: str | None = None
    window_kind: Literal["s", "ms"] = "s"

    @model_validator(mode="after")
    def _reads_something(self) -> HeaderDialectSettings:
        if not self.limit and not self.remaining:
            raise PydanticCustomError("apisync_rule", "needs at least 'limit' or 'remaining'")
        return self


def _dialect_form(value: Any) -> str:
    return "dict" if isinstance(value, Mapping) else "name"


DialectName = Literal["auto", "github", "ietf", "ietf-legacy", "hubspot", "none"]
Dialect = Annotated[
    Annotated[DialectName, Tag("name")] | Annotated[HeaderDialectSettings, Tag("dict")],
    Discriminator(_dialect_form),
]


# -- timeouts ------------------------------------------------------------------------------------


class TimeoutSettings(_Extras):
    connect: Annotated[Number, Field(gt=0)] = DEFAULT_CONNECT_TIMEOUT_S
    read: Annotated[Number, Field(gt=0)] = DEFAULT_READ_TIMEOUT_S


def _timeout_from_number(value: Any) -> Any:
    """A number is the read timeout (connect stays at most the default), as the docs promise."""
    if isinstance(value, bool):
        raise PydanticCustomError("apisync_shape", "not a timeout")
    if isinstance(value, int | float):
        if value <= 0:
            raise PydanticCustomError("apisync_shape", "not a timeout")
        return {"connect": min(float(value), DEFAULT_CONNECT_TIMEOUT_S), "read": float(value)}
    return value


# -- retries -------------------------------------------------------------------------------------


class RetrySettings(_Extras):
    """How soon a request that cannot reach the server gives up (see :mod:`.retry`): connect-phase
    failures (refused, connect timeout, TLS handshake, temporary DNS failure) get at most
    ``connect_attempts`` attempts (never more than ``max_attempts``) and ``connect_budget_s`` seconds
    of backoff in all; ``connect_budget_s: 0`` or ``connect_attempts: 1`` means no retry."""

    connect_attempts: Annotated[Count, Field(ge=1)] = DEFAULT_CONNECT_ATTEMPTS
    connect_budget_s: Annotated[Number, Field(ge=0)] = DEFAULT_CONNECT_BUDGET_S


# -- the extras ------------------------------------------------------------------------------------


class ApiSettings(_Extras):
    """Connection extras of :class:`~apisync.http.hook.ApiHook`, validated once in ``get_conn``."""

    auth: AuthSettings | None = None
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    rate_limit_headers: Dialect = "auto"
    timeouts: Annotated[TimeoutSettings, BeforeValidator(_timeout_from_number)] = Field(
        default_factory=TimeoutSettings, alias="timeout"
    )
    max_attempts: Annotated[Count, Field(ge=1)] = DEFAULT_MAX_ATTEMPTS
    retries: RetrySettings = Field(default_factory=RetrySettings, alias="retry")
    defer_after_s: Annotated[Number, Field(ge=0)] = DEFAULT_DEFER_AFTER_S
    idempotent_post_paths: tuple[str, ...] = ()
    verify: bool | str = True
    headers: dict[str, str] = Field(default_factory=dict)
    api_version: ApiVersionSettings | None = None
    test_endpoint: str | None = None
    progress_every_pages: Annotated[Count, Field(ge=1)] = PROGRESS_EVERY_PAGES

    @field_validator("idempotent_post_paths", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if isinstance(value, str | bytes | Mapping):  # a string is iterable, but not a list of paths
            raise PydanticCustomError("apisync_shape", "not a list")
        return value

    @field_validator("verify", mode="before")
    @classmethod
    def _bool_or_path(cls, value: Any) -> Any:
        if not isinstance(value, bool | str):
            raise PydanticCustomError("apisync_shape", "not a bool or a path")
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"  # a form field's "false" is not a CA bundle path
        return value

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any] | None, *, conn_id: str = "?") -> ApiSettings:
        """Validated settings, or one :class:`ApiConfigError` listing every problem, one a line."""
        try:
            return cls.model_validate(dict(extras or {}))
        except ValidationError as exc:
            problems = dict.fromkeys(_problem(error) for error in exc.errors())
            raise ApiConfigError("\n".join(f"connection {conn_id!r}: {p}" for p in problems)) from None

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` seconds, as requests takes them."""
        return (self.timeouts.connect, self.timeouts.read)

    @property
    def connect_timeout_s(self) -> float:
        return self.timeouts.connect

    @property
    def read_timeout_s(self) -> float:
        return self.timeouts.read

    @property
    def dialect(self) -> str | dict[str, Any]:
        """``rate_limit_headers`` in the form :func:`~apisync.http.headers.parse_rate_limit` takes."""
        if isinstance(self.rate_limit_headers, HeaderDialectSettings):
            return self.rate_limit_headers.model_dump(exclude_none=True)
        return self.rate_limit_headers

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy.for_connection(
            self.max_attempts,
            self.idempotent_post_paths,
            connect_attempts=self.retries.connect_attempts,
            connect_budget_s=self.retries.connect_budget_s,
        )


# -- error messages ------------------------------------------------------------------------------

_AUTH_TYPES = ", ".join(repr(kind) for kind in AUTH_SETTINGS)
_DIALECTS = ", ".join(repr(name) for name in DIALECTS)
_SECONDS_ABOVE_0 = "a number of seconds > 0"

# What each key expects, in the words of the message "extra '<path>' must be <shape>, got <value>".
SHAPES: dict[str, str] = {
    "auth": f"an object with a 'type': one of {_AUTH_TYPES}",
    "auth.type": f"one of {_AUTH_TYPES}",
    "auth.header": "a header name (string)",
    "auth.query": "a query parameter name (string)",
    "auth.token_url": "a URL or a path (string)",
    "auth.scope": "a string",
    "auth.refresh_margin_s": "a number of seconds >= 0",
    "rate_limit": "an object {" + ", ".join(RateLimitSettings.model_fields) + "}",
    "rate_limit.requests": "a number > 0",
    "rate_limit.period_s": _SECONDS_ABOVE_0,
    "rate_limit.burst": "a whole number >= 1",
    "rate_limit.backend": "'sqlite' or 'redis'",
    "rate_limit.path": "a file path (string)",
    "rate_limit.redis_url": "a redis:// URL (string)",
    "rate_limit.key_prefix": "a string",
    "rate_limit.key": "a string",
    "rate_limit_headers": f"one of {_DIALECTS} or an object {{"
    + ", ".join(HeaderDialectSettings.model_fields)
    + "}",
    "rate_limit_headers.limit": "a header name (string)",
    "rate_limit_headers.remaining": "a header name (string)",
    "rate_limit_headers.reset": "a header name (string)",
    "rate_limit_headers.reset_kind": "one of 'epoch', 'delta', 'epoch_ms', 'delta_ms'",
    "rate_limit_headers.window": "a header name (string)",
    "rate_limit_headers.window_kind": "'s' or 'ms'",
    "timeout": f"{_SECONDS_ABOVE_0} or an object {{connect, read}}",
    "timeout.connect": _SECONDS_ABOVE_0,
    "timeout.read": _SECONDS_ABOVE_0,
    "max_attempts": "a whole number >= 1",
    "retry": "an object {" + ", ".join(RetrySettings.model_fields) + "}",
    "retry.connect_attempts": "a whole number >= 1",
    "retry.connect_budget_s": "a number of seconds >= 0",
    "defer_after_s": "a number of seconds >= 0",
    "idempotent_post_paths": "a list of paths",
    "idempotent_post_paths[]": "a path (string)",
    "verify": "true, false or a CA bundle path",
    "headers": "an object {header name: value}",
    "headers.": "a string",
    "api_version": "an object {header, value} | {query, value} | {path_prefix}",
    "api_version.header": "a header name (string)",
    "api_version.query": "a query parameter name (string)",
    "api_version.value": "a version (string)",
    "api_version.path_prefix": "a path such as '/v2' (string)",
    "test_endpoint": "a path (string)",
    "progress_every_pages": "a whole number >= 1",
}
# Where a union puts its member's tag into the error location: dropped from the key path.
_TAGS = {"auth": set(AUTH_SETTINGS), "rate_limit_headers": {"name", "dict"}}
_SECRET_VALUED = ("headers", "headers.")  # header values may be tokens: say the type, never the value


def _path(loc: Iterable[int | str]) -> tuple[str, str]:
    """(key path for the user, key of :data:`SHAPES`) from a pydantic error location."""
    path, shape = "", ""
    for part in loc:
        if path in _TAGS and part in _TAGS[path]:
            continue
        if isinstance(part, int):
            path, shape = f"{path}[{part}]", f"{shape}[]"
        elif shape in ("headers", "headers."):
            path, shape = f"{path}.{part}", "headers."
        else:
            path = f"{path}.{part}" if path else part
            shape = f"{shape}.{part}" if shape else part
    return path, shape


_NESTED: dict[str, type[BaseModel]] = {
    "rate_limit": RateLimitSettings,
    "rate_limit_headers": HeaderDialectSettings,
    "timeout": TimeoutSettings,
    "retry": RetrySettings,
    "api_version": ApiVersionSettings,
}


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _known_keys(loc: tuple[int | str, ...]) -> tuple[list[str], str]:
    """The keys allowed where an unknown one was found, and how to name that place."""
    parents = [str(part) for part in loc[:-1] if isinstance(part, str)]
    if not parents:
        return _keys(ApiSettings), "known extras"
    if parents[0] == "auth" and len(parents) > 1 and parents[1] in AUTH_SETTINGS:
        return _keys(AUTH_SETTINGS[parents[1]]), f"known keys of auth type {parents[1]!r}"
    return _keys(_NESTED[parents[0]]), f"known keys of {parents[0]!r}"


def _shown(value: Any, shape: str) -> str:
    if shape in _SECRET_VALUED:
        return f"a value of type {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _problem(error: ErrorDetails) -> str:
    """One line, in plain words, for one pydantic error."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        path, _ = _path(loc)
        name = str(loc[-1])
        known, where = _known_keys(loc)
        suggestion = did_you_mean(name, known)
        hint = f" ({suggestion})" if suggestion else ""
        return f"unknown extra {path!r}{hint}; {where}: {', '.join(known)}"
    if kind == "union_tag_not_found":
        path, _ = _path(loc)
        return f"extra {path!r} needs a 'type': one of {_AUTH_TYPES}"
    if kind == "union_tag_invalid":
        path, _ = _path(loc)
        given = error.get("ctx", {}).get("tag")
        return f"extra '{path}.type' must be {SHAPES['auth.type']}, got {given!r}"
    if kind == "apisync_rule":
        ctx = error.get("ctx") or {}
        path, _ = _path((*loc, ctx["key"]) if "key" in ctx else loc)
        return f"extra {path!r} {error['msg']}"
    if kind == "missing":
        path, shape = _path(loc)
        return f"extra {path!r} is required: {SHAPES.get(shape, 'a value')}"
    path, shape = _path(loc)
    if path == "auth" and kind == "model_attributes_type":
        shape = "auth"
    return f"extra {path!r} must be {SHAPES.get(shape, 'valid')}, got {_shown(error['input'], shape)}"
