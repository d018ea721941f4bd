"""Stream specs: a stream is data (include/streams/<name>.yaml), not Python.

A spec says where the records come from (endpoint, pagination, window filter params), what they
look like (primary key, cursor, field types, arrays), how they are checked (expectation suite,
quarantine threshold) and where they go (table, write mode). A bad spec fails when it is loaded,
with the file and the field in the message, long before a run touches an API.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from apisync.errors import ApiConfigError, SpecError, did_you_mean
from apisync.http.graphql import PARTIAL_RESULTS, GraphQLOptions, is_graphql_source
from apisync.http.pagination import (
    PAGINATORS,
    BodyPath,
    DialectOptions,
    make_paginator,
    option_error,
    type_error,
)
from apisync.naming import column_name

__all__ = [
    "WINDOW_FORMATS",
    "ArraySpec",
    "CoverageSpec",
    "DestinationSpec",
    "FieldSpec",
    "QualitySpec",
    "SourceSpec",
    "SpecError",
    "StreamSpec",
    "WindowBounds",
    "include_dir",
    "load_spec",
    "render_window",
]

# The dialects and their options come from the one registry, in http: a dialect added there is
# valid here too. apisync.http.pagination is cheap to import (no requests, no Airflow; the http
# package loads its hook lazily), so this costs nothing at DAG parse time.
PAGINATION_TYPES = tuple(PAGINATORS)
FIELD_TYPES = ("string", "integer", "float", "decimal", "boolean", "timestamp", "json")
WINDOW_START = "{window_start}"
WINDOW_END = "{window_end}"
WINDOW_FORMATS = ("epoch", "epoch_ms", "iso", "iso_ms", "iso_offset", "iso_offset_ms", "date")
"""How a window bound renders (``window_format``, or per value ``{window_start:epoch_ms}``):
epoch seconds or milliseconds (a number), ISO 8601 in UTC with ``Z`` or ``+00:00`` with or
without ``.000`` milliseconds, or the day ``YYYY-MM-DD``. Pick the one the server's field is
stored in when it compares text (json-server, SQLite): ``...00Z`` sorts after ``...00.000Z``."""
# A placeholder, alone or inside a text ("updated_at gt {window_start}"), its format optional.
_PLACEHOLDER = re.compile(r"\{(window_start|window_end)(?::([^{}]*))?\}")
DEFAULT_MAX_COLUMNS = 500


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class WindowBounds(_Strict):
    """How the server compares its window filter params with a record's cursor.

    The request is widened so it always asks for at least ``[window_start, window_end)``; whatever
    it brings beyond that, normalize drops and counts (``out_of_window``). Default: half-open.
    """

    start: Literal["inclusive", "exclusive"] = "inclusive"  # updated_gte | updated_gt
    end: Literal["inclusive", "exclusive"] = "exclusive"  # updated_lte | updated_lt


class SourceSpec(_Strict):
    endpoint: str = Field(min_length=1)
    method: Literal["GET", "POST"] = "GET"
    # The dialect's own options model (apisync.http.pagination), chosen by ``type``: an unknown
    # option or a value of the wrong shape fails here, naming the option and what it expects.
    pagination: DialectOptions
    # Where the records list is: omitted, the dialect's default; "$" (or "") the body itself;
    # "$.a.b" or "a.b" a dotted path (apisync.http.body.body_path; checked here, read by the hook).
    records_path: BodyPath | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    json_body: dict[str, Any] | None = Field(default=None, alias="json")
    window_format: Literal[WINDOW_FORMATS] = "iso"  # type: ignore[valid-type]
    window_bounds: WindowBounds = Field(default_factory=WindowBounds)
    # A GraphQL source (json.query): what a response with both data and errors does.
    graphql: GraphQLOptions = Field(default_factory=GraphQLOptions)

    # Ask with the ETag / Last-Modified of the window's newest complete extraction; a 304 page is
    # replayed from staging (apisync.http.conditional). GET only: a POST may get 412 for it.
    conditional_requests: StrictBool = False

    @model_validator(mode="after")
    def _conditional_on_get(self) -> SourceSpec:
        if self.conditional_requests and self.method != "GET":
            raise ValueError(
                f"conditional_requests: true needs method GET, got {self.method} (a server may answer a "
                "conditional POST with 412 Precondition Failed, and GraphQL servers rarely send validators)"
            )
        return self

    @model_validator(mode="after")
    def _page_size_known(self) -> SourceSpec:
        placement = self.pagination.in_
        if placement == "variables" and not is_graphql_source(self.json_body):
            raise ValueError(
                "source.pagination.in: variables puts the page parameters in the GraphQL variables, "
                "so the source needs a GraphQL query in source.json.query (and method: POST)"
            )
        if placement != "query" and self.method != "POST":
            raise ValueError(
                f"source.pagination.in: {placement} sends the page parameters in the request body: "
                "declare method: POST"
            )
        try:
            paginator = make_paginator(self.pagination)
        except ApiConfigError as exc:
            raise ValueError(f"source.pagination: {exc}") from None
        params = dict(self.params)  # where the page size may be fixed: the URL, or where `in` says
        if placement != "query" and self.json_body is not None:
            holder = self.json_body.get("variables") if placement == "variables" else self.json_body
            params.update(holder if isinstance(holder, dict) else {})
        if paginator.full_page_undetectable(params):
            raise ValueError(
                f"pagination {self.pagination.type!r} ends a read on a page without a next-page "
                "marker, so source.pagination.page_size (or the page size parameter in "
                "source.params) is required: without it a full page that lacks the marker cannot "
                "be told from the last page and the read could stop short silently. If the API "
                "ends reads that way legitimately, declare full_page_without_next: warn"
            )
        return self

    def window_params(self) -> list[str]:
        """Where the window placeholders sit (``updated_gte``, ``json.variables.after``): for messages."""
        found = _placeholder_paths(self.params, "")
        return found + _placeholder_paths(self.json_body, "json.") if self.json_body else found


class FieldSpec(_Strict):
    type: Literal[FIELD_TYPES]  # type: ignore[valid-type]
    column: str | None = None
    format: Literal["iso", "epoch_s", "epoch_ms"] = "iso"
    scale: int = Field(default=2, ge=0, le=18)


class ArraySpec(_Strict):
    mode: Literal["json", "child_table"] = "json"
    table: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    @model_validator(mode="after")
    def _table_for_child(self) -> ArraySpec:
        if self.mode == "child_table" and not self.table:
            raise ValueError("mode child_table needs a 'table' name")
        return self


class QualitySpec(_Strict):
    suite: str = Field(min_length=1)
    quarantine_threshold: float = Field(default=0.05, ge=0.0, le=1.0)


class DestinationSpec(_Strict):
    table: str = Field(min_length=1, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    write_mode: Literal["merge", "append", "replace_window"] = "merge"
    db_schema: str | None = Field(default=None, alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")


class CoverageSpec(_Strict):
    """What the coverage check (the ``sync_coverage`` DAG) may do about this stream's missing windows.

    ``repair: backfill`` lets it create a backfill through Airflow's REST API for the oldest
    missing range, at most ``max_backfill_windows`` windows at a time; ``none`` only alerts.
    """

    repair: Literal["none", "backfill"] = "none"
    max_backfill_windows: int = Field(default=168, ge=1, le=10_000)


class StreamSpec(_Strict):
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    description: str = ""
    source: SourceSpec
    primary_key: list[str] = Field(min_length=1)
    cursor_field: str
    fields: dict[str, FieldSpec] = Field(min_length=1)
    arrays: dict[str, ArraySpec] = Field(default_factory=dict)
    default_array_mode: Literal["json"] = "json"
    unknown_fields: Literal["add", "ignore", "fail"] = "add"
    max_columns: int = Field(default=DEFAULT_MAX_COLUMNS, ge=1, le=1600)
    chunk_size: int = Field(default=50_000, ge=1)
    quality: QualitySpec
    destination: DestinationSpec
    coverage: CoverageSpec = Field(default_factory=CoverageSpec)
    path: str = Field(default="", exclude=True)

    @field_validator("fields")
    @classmethod
    def _source_paths(cls, value: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        for source_path in value:
            if (
                not source_path
                or source_path.startswith(".")
                or source_path.endswith(".")
                or ".." in source_path
            ):
                raise ValueError(f"bad source path {source_path!r}: use dotted keys like customer.id")
        return value

    @model_validator(mode="after")
    def _keys_are_columns(self) -> StreamSpec:
        columns = self.columns()
        for what, name in [
            *(("primary_key", key) for key in self.primary_key),
            ("cursor_field", self.cursor_field),
        ]:
            if name not in columns:
                hint = self.column_hint(name, columns) or f" (the fields' columns: {sorted(columns)})"
                raise ValueError(f"{what} {name!r} is not a column{hint}")
        if columns[self.cursor_field] not in ("timestamp", "integer"):
            raise ValueError(f"cursor_field {self.cursor_field!r} must be a timestamp or integer field")
        for path, array in self.arrays.items():
            if array.mode == "child_table" and array.table == self.destination.table:
                raise ValueError(f"arrays.{path}.table must differ from destination.table")
        return self

    def columns(self) -> dict[str, str]:
        """Destination column name -> field type for the declared fields."""
        return {column_name(field.column or path): field.type for path, field in self.fields.items()}

    def column_for(self, source_path: str) -> str:
        field = self.fields[source_path]
        return column_name(field.column or source_path)

    def column_hint(self, name: str, columns: Iterable[str]) -> str:
        """The end of a "<name> is not a column" sentence: which column the field ``name`` becomes
        (a key in the spec is a column name, normalized: ``updatedAt`` -> ``updated_at``), else the
        closest column; "" when no column is close."""
        columns = list(columns)
        for path, field in self.fields.items():
            if name in (path, field.column):
                column = self.column_for(path)
                if column in columns:
                    return (
                        f"; the field {path} becomes column {column!r}: use {column!r} "
                        "(keys and checks name columns, not source fields)"
                    )
        if column_name(name) in columns:
            return f"; did you mean {column_name(name)!r}?"
        suggestion = did_you_mean(name, columns)
        return f"; {suggestion}" if suggestion else ""


def include_dir() -> Path:
    """Data directory (streams, expectations, sql); APISYNC_INCLUDE_DIR overrides the repo's."""
    override = os.environ.get("APISYNC_INCLUDE_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "include"


# Checks across fields (keys against columns) raise from the model and name their field first.
_CROSS_FIELD_CHECKS = ("primary_key", "cursor_field")


def _format_error(path: Path, error: ErrorDetails, root: type[BaseModel] | None) -> str:
    loc = tuple(error["loc"])
    message = (
        str(error["ctx"]["error"]) if error["type"] == "value_error" and "ctx" in error else error["msg"]
    )
    pagination = root is StreamSpec and loc[:2] == ("source", "pagination")
    if pagination and len(loc) == 2 and error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc, message = (*loc, "type"), type_error(error.get("ctx", {}).get("tag"))
    elif pagination and len(loc) > 2 and loc[2] in PAGINATORS:
        option, message = option_error(PAGINATORS[str(loc[2])].options_model, {**error, "loc": loc[3:]})
        loc = (*loc[:2], option)
    elif loc[-1:] in (("window_format",), ("partial_results",)) and error["type"] == "literal_error":
        given = str(error.get("input"))
        choices = WINDOW_FORMATS if loc[-1] == "window_format" else PARTIAL_RESULTS
        suggestion = did_you_mean(given, choices)
        message = f"must be one of {list(choices)}, got {given!r}" + (f"; {suggestion}" if suggestion else "")
    elif error["type"] == "extra_forbidden" and root is not None:
        message += _key_suggestion(root, loc)
    elif root is StreamSpec and not loc and message.split(" ", 1)[0] in _CROSS_FIELD_CHECKS:
        loc = (message.split(" ", 1)[0],)
    location = ".".join(str(part) for part in loc) or "<root>"
    return f"{path}: field '{location}': {message}"


def _key_suggestion(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """For an unknown key: the closest key the model knows at that place (``schema`` for ``shema``)."""
    model = root
    for part in loc[:-1]:
        info = next((i for n, i in model.model_fields.items() if part in (n, i.alias)), None)
        if (
            info is None
            or not isinstance(info.annotation, type)
            or not issubclass(info.annotation, BaseModel)
        ):
            return ""
        model = info.annotation
    keys = [info.alias or name for name, info in model.model_fields.items() if not info.exclude]
    suggestion = did_you_mean(str(loc[-1]), keys)
    return f"; {suggestion}" if suggestion else f" (known keys: {keys})"


def validation_messages(path: Path, exc: ValidationError, root: type[BaseModel] | None = None) -> str:
    """One line per pydantic error, each naming the file and the dotted field; with the ``root``
    model that was validated, an unknown key also names the closest known one."""
    return "\n  ".join(_format_error(path, error, root) for error in exc.errors())


def read_yaml_document(
    name_or_path: str | Path, directory: Path, error: type[Exception], what: str
) -> tuple[Path, dict[str, Any]]:
    """``<directory>/<name>.yaml`` (or a path) as a mapping; ``error`` names the file when it is not."""
    candidate = Path(name_or_path)
    path = candidate if candidate.suffix in (".yaml", ".yml") else directory / f"{name_or_path}.yaml"
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise error(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    return path, raw


def load_spec(name_or_path: str | Path, *, streams_dir: Path | None = None) -> StreamSpec:
    """Parse and validate a stream spec; raise SpecError naming the file and the field."""
    directory = streams_dir or include_dir() / "streams"
    path, raw = read_yaml_document(name_or_path, directory, SpecError, "stream spec")
    try:
        spec = StreamSpec.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        raise SpecError("invalid stream spec:\n  " + validation_messages(path, exc, StreamSpec)) from exc
    if spec.name != path.stem:
        raise SpecError(f"{path}: field 'name': {spec.name!r} must match the file name {path.stem!r}")
    _check_window_placeholders(spec, path)
    return spec


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return {f"{{{match.group(1)}}}" for match in _PLACEHOLDER.finditer(value)}
    if isinstance(value, dict):
        return set().union(*(_placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_placeholders(v) for v in value)) if value else set()
    return set()


def _placeholder_paths(value: Any, prefix: str) -> list[str]:
    if isinstance(value, dict):
        return [path for key, item in value.items() for path in _placeholder_paths(item, f"{prefix}{key}.")]
    if isinstance(value, list):
        return [
            path for index, item in enumerate(value) for path in _placeholder_paths(item, f"{prefix}{index}.")
        ]
    return [prefix.rstrip(".")] if isinstance(value, str) and _PLACEHOLDER.search(value) else []


def _placeholder_values(value: Any, prefix: str) -> list[tuple[str, str]]:
    """(dotted place, text) of each value holding a window placeholder."""
    if isinstance(value, dict):
        return [
            found for key, item in value.items() for found in _placeholder_values(item, f"{prefix}{key}.")
        ]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _placeholder_values(item, f"{prefix}{i}.")]
    return [(prefix.rstrip("."), value)] if isinstance(value, str) and _PLACEHOLDER.search(value) else []


def _check_window_placeholders(spec: StreamSpec, path: Path) -> None:
    source = spec.source
    for place, text in _placeholder_values(source.params, "params.") + _placeholder_values(
        source.json_body, "json."
    ):
        for match in _PLACEHOLDER.finditer(text):
            fmt = match.group(2)
            if fmt is not None and fmt not in WINDOW_FORMATS:
                suggestion = did_you_mean(fmt, WINDOW_FORMATS)
                raise SpecError(
                    f"{path}: field 'source.{place}': {match.group()} names no window format "
                    f"(one of {list(WINDOW_FORMATS)})" + (f"; {suggestion}" if suggestion else "")
                )
    found = _placeholders(source.params) | _placeholders(source.json_body)
    missing = {WINDOW_START, WINDOW_END} - found
    if missing:
        raise SpecError(
            f"{path}: field 'source.params': the window filter needs {sorted(missing)} as a param "
            "(or json) value, so a run pulls only its data interval"
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND_US = 1_000_000


def _request_seconds(moment: datetime, side: str, style: str) -> int:
    """The bound in whole seconds (the unit both formats render), widened never narrowed: the
    start rounds down (one more second down for an exclusive ``gt``), the end rounds up."""
    micros = (moment.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    if side == "end":
        return -(-micros // _SECOND_US)
    return micros // _SECOND_US - (1 if style == "exclusive" else 0)


_DAY_S = 86_400


def _window_value(seconds: int, fmt: str, side: str = "start") -> str | int:
    """One bound in ``fmt`` (:data:`WINDOW_FORMATS`); a day widens like the seconds do (the start
    down to its day, the end up to the next midnight)."""
    if fmt == "epoch":
        return seconds
    if fmt == "epoch_ms":
        return seconds * 1000
    if fmt == "date":
        day = seconds // _DAY_S + (1 if side == "end" and seconds % _DAY_S else 0)
        return datetime.fromtimestamp(day * _DAY_S, UTC).strftime("%Y-%m-%d")
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + (".000" if fmt.endswith("_ms") else "")
    if fmt in ("iso", "iso_ms"):
        return text + "Z"
    if fmt in ("iso_offset", "iso_offset_ms"):
        return text + "+00:00"
    raise ValueError(f"unknown window format {fmt!r}: one of {list(WINDOW_FORMATS)}")


def render_window(
    value: Any, start: datetime, end: datetime, fmt: str, bounds: WindowBounds | None = None
) -> Any:
    """Replace {window_start}/{window_end} (in params or a JSON body; ``{window_start:epoch_ms}``
    names a format for that value only, see :data:`WINDOW_FORMATS`) by the interval, as the
    server's ``bounds`` need it to return every record of ``[start, end)`` (default: half-open).
    A value that is only a placeholder renders as a number in the epoch formats."""
    bounds = bounds or WindowBounds()

    def bound(match: re.Match[str]) -> str | int:
        side = "start" if match.group(1) == "window_start" else "end"
        style = bounds.start if side == "start" else bounds.end
        moment = start if side == "start" else end
        return _window_value(_request_seconds(moment, side, style), match.group(2) or fmt, side)

    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return bound(whole)
        return _PLACEHOLDER.sub(lambda match: str(bound(match)), value) if "{window_" in value else value
    if isinstance(value, dict):
        return {key: render_window(item, start, end, fmt, bounds) for key, item in value.items()}
    if isinstance(value, list):
        return [render_window(item, start, end, fmt, bounds) for item in value]
    return value
