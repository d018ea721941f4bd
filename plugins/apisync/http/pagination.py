"""Pagination dialects as small strategies, one class per dialect, chosen by ``type`` from config.

Contract (dlt-style): :meth:`Paginator.start` gives the first request, :meth:`Paginator.update_state`
reads a response and sets :attr:`Paginator.has_next` and :attr:`Paginator.next`, the next request.
The next request *is* the resumable state: ``PageRequest.to_state()`` is plain JSON, so a task that
defers (or crashes) resumes exactly after the last page it handled, neither repeating nor missing one.

=============== ============================================ =====================================
type            dialect                                      options (defaults)
=============== ============================================ =====================================
cursor_body     Stripe ``starting_after=<last id>``,         cursor_param, id_field ("id"),
                ``has_more``; or a cursor body field         has_more_field, limit_param,
                                                             cursor_path, page_size
link_header     GitHub ``Link: <...>; rel="next"``            page_size, size_param ("per_page"),
                                                             page_param, start_page
hubspot         HubSpot ``paging.next.after``                 cursor_param ("after"), page_size
offset          ``offset``/``limit`` with ``total``           offset_param, limit_param,
                                                             page_size (100), total_path ("total"),
                                                             total_header, start_offset, end_on
page_number     ``page``/``page_size`` (+ optional total)     page_param, size_param, page_size,
                                                             start_page (1), total_path,
                                                             total_header, end_on
next_url        a next URL in the body (relative: resolved)   next_path ("next"), size_param
header_cursor   the next cursor in a response header          cursor_header, cursor_param,
                                                             limit_param
range_header    ``Range: items=0-99`` / ``Content-Range``     range_unit, range_header,
                                                             content_range_header, page_size (100)
graphql_relay   Relay ``pageInfo {hasNextPage endCursor}``    connection_path (required),
                                                             page_size, first_var, after_var
=============== ============================================ =====================================

docs/recipes.md is the user's reference: a tested spec per style and :func:`options_table` (every
option with its shape, default and meaning, generated from the models; a test keeps them equal).
Options naming a place in the body (``total_path``, ``next_path``...) take ``$``, ``$.a.b`` or
``a.b`` (:func:`~apisync.http.body.body_path`), checked when the spec loads.

How a read ends, and when a full page without a next-page marker is a
:class:`~apisync.errors.PaginationError` (``full_page_without_next: warn`` makes it a warning):

=============== ================================================ ==================================
type            the read ends when                               full page, no marker: an error if
=============== ================================================ ==================================
cursor_body     ``has_more`` is false                            ``has_more`` is missing
link_header     no ``rel="next"`` link                           page 1 has no Link header at all
hubspot         no ``paging.next``                               page 1 has no ``paging``
offset          an empty page, the total, or a short page        never (a short page is the end)
page_number     an empty or short page, or past the total        never (a short page is the end)
                (``end_on: empty_page``: an empty page only)
next_url        ``next`` is null or missing                      ``next`` is missing
header_cursor   no (or an empty) cursor header                   page 1 has no cursor header
range_header    the ``Content-Range`` total, an empty or short   never
                page
graphql_relay   ``hasNextPage`` is false                         ``hasNextPage`` is missing
(none)          after one request                                never
=============== ================================================ ==================================

All dialects accept:

- ``drop_repeats`` (true): records at the top of a page that are byte-identical to a record of the
  previous page are dropped and counted (``Page.repeated``; servers that shift rows between requests
  repeat them). A *changed* record is kept whatever its key: the newer version wins downstream,
  where normalize and the load keep the latest cursor per primary key. Texts are compared as sent,
  never decoded, so a record that is not valid UTF-8 passes through untouched. (``dedupe_field:
  null``, the old switch, still turns the guard off.)
- ``in`` (``query`` | ``body`` | ``variables``; default ``query``): where the dialect's page
  parameters (``page_param``, ``size_param``, ``offset_param``, ``limit_param``, ``cursor_param``)
  travel: the URL query, the top level of the JSON body, or the body's GraphQL ``variables``
  (json-graphql-server's ``allOrders(page: $page, perPage: $perPage)``). :func:`make_paginator`
  wraps the dialect for that (:func:`apisync.http.graphql.placed_in_body`); the dialect itself
  keeps reading and writing ``PageRequest.params``. Not for ``link_header``/``next_url``.
- ``max_pages`` (none): a read that reaches this page while the server offers more ends with
  :class:`~apisync.errors.PaginationError`.
- ``full_page_without_next`` (``"error"`` | ``"warn"``): what a full page (as many records as the page
  size asked for) without a next-page marker does. Where a missing marker ends the read
  (``link_header``, ``hubspot``: only on page 1, where nothing shows yet that the server pages; and
  ``next_url``, ``cursor_body``, ``graphql_relay`` when the marker field is missing altogether, not
  merely null/false), stopping could silently lose the rest: a server that pages only when asked
  sends a full first page and nothing else. ``warn`` is for APIs that end a read that way
  legitimately. ``offset`` and ``page_number`` end on a short page or a total and need no marker.

Every read also ends with :class:`~apisync.errors.PaginationError` when a next request was already
made in it (a cursor cycle, A -> B -> A), and (with the repeat guard on) when a page is the page
before all over again: every record a byte-identical repeat, as many as that page had. A server
that ignores the paging parameter (``page`` sent, ``_page`` expected) sends page 1 forever;
dropping each copy would end the read as if complete. The fingerprints of the requests made (8
bytes a page) and of the previous page's last records travel in the resume state, so both checks
hold across a deferral.

Bodies are decoded before a paginator sees them (:mod:`apisync.http.body`): the records list is
usually a :class:`~apisync.http.body.RawRecords`, and a paginator reads only the fields it needs.
:data:`PAGINATORS` is the one registry of dialect names (the stream spec validates against it), so
this module stays cheap to import (no requests, no Airflow).

Each dialect's options are a strict, closed pydantic model (``CursorBodyOptions``, ...:
:attr:`Paginator.options_model`); :func:`pagination_options` checks a config against it and
:data:`DialectOptions`, their union by ``type``, is a stream spec's ``source.pagination``. An unknown
option fails naming the closest known one and the dialect's options; a value of the wrong shape
fails naming what the option expects. So a typo is an error when the spec loads (DAG parse time),
not on the first page of a run.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import logging
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import annotated_types
import msgspec
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from apisync.errors import ApiConfigError, MalformedResponseError, PaginationError, did_you_mean
from apisync.http.body import RawRecords, body_path, dig, has_path
from apisync.redaction import redact

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

FULL_PAGE_WITHOUT_NEXT = ("error", "warn")
"""``full_page_without_next``: what a full page without a next-page marker does to the read."""
FINGERPRINT_BYTES = 8
# The repeat guard's memory across a resume: fingerprints of the previous page's last records
# (rows a server shifts between requests come from the end of the page before).
REPEAT_GUARD_TAIL = 100


# -- options: one model per dialect ---------------------------------------------------------------
def _checked_path(path: str) -> str:
    body_path(path)  # raises ValueError naming the accepted forms
    return path


BodyPath = Annotated[str, AfterValidator(_checked_path)]
"""An option naming a place in the body: ``$``, ``$.a.b`` or ``a.b`` (see ``body_path``)."""

END_ON = ("short_page", "empty_page")
"""``end_on`` of the positional dialects: which page (besides a total) ends the read."""


class PaginationOptions(BaseModel):
    """The options every dialect accepts (see the module docstring); each dialect's model adds its own.

    Strict and closed: a typo (``page_sise``) or a value of the wrong shape (``page_size: "100"``)
    is an error when the options are read (for a stream: when its spec loads, at DAG parse time),
    never a surprise on page 1 of a run.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )

    type: str
    in_: Literal["query", "body", "variables"] = Field(
        default="query",
        alias="in",
        description="where the page parameters go: the URL query, the JSON body, or its GraphQL "
        "variables (apisync.http.graphql)",
    )
    drop_repeats: bool = Field(default=True, description="drop records repeated from the page before")
    dedupe_field: str | None = Field(
        default="id", description="the repeat guard's old switch: null turns it off"
    )
    page_size: int | None = Field(default=None, ge=1, description="records asked for per page")
    max_pages: int | None = Field(
        default=None, ge=1, description="a read that gets this far with more to come fails"
    )
    full_page_without_next: Literal["error", "warn"] = Field(
        default="error", description="what a full page without a next-page marker does"
    )


class SinglePageOptions(PaginationOptions):
    """No pagination: one request."""

    type: Literal["single"] = "single"


class CursorBodyOptions(PaginationOptions):
    type: Literal["cursor_body"] = "cursor_body"
    cursor_param: str = Field(default="starting_after", description="query parameter that carries the cursor")
    cursor_path: BodyPath | None = Field(
        default=None,
        description="body field with the next page's cursor (null: the last record's id_field); "
        "absent, null or empty ends the read",
    )
    id_field: str = Field(default="id", description="record field whose last value is the cursor")
    has_more_field: BodyPath | None = Field(
        default="has_more", description="body field that says more pages follow (null: none)"
    )
    limit_param: str = Field(default="limit", description="query parameter that carries page_size")


class LinkHeaderOptions(PaginationOptions):
    type: Literal["link_header"] = "link_header"
    size_param: str = Field(default="per_page", description="query parameter that carries page_size")
    page_param: str | None = Field(
        default=None,
        description="query parameter the first request sends start_page in (servers that send "
        "a Link header only when a page is asked for, e.g. json-server's _page); null: none",
    )
    start_page: int = Field(default=1, description="number of the first page (with page_param)")


class HubSpotOptions(PaginationOptions):
    type: Literal["hubspot"] = "hubspot"
    cursor_param: str = Field(default="after", description="query parameter that carries paging.next.after")
    limit_param: str = Field(default="limit", description="query parameter that carries page_size")


class OffsetOptions(PaginationOptions):
    type: Literal["offset"] = "offset"
    page_size: int | None = Field(default=100, ge=1, description="records asked for per page")
    offset_param: str = Field(default="offset", description="query parameter that carries the offset")
    limit_param: str = Field(default="limit", description="query parameter that carries page_size")
    start_offset: int = Field(default=0, ge=0, description="offset of the first record")
    total_path: BodyPath | None = Field(
        default="total", description="body field with the total count (null: none)"
    )
    total_header: str | None = Field(
        default=None, description="response header with the total count, e.g. X-Total-Count"
    )
    end_on: Literal["short_page", "empty_page"] = Field(
        default="short_page",
        description="which page ends the read when no total says (empty_page: servers that cap "
        "the page size below page_size)",
    )


class PageNumberOptions(PaginationOptions):
    type: Literal["page_number"] = "page_number"
    page_param: str = Field(default="page", description="query parameter that carries the page number")
    size_param: str = Field(default="page_size", description="query parameter that carries page_size")
    start_page: int = Field(default=1, description="number of the first page")
    total_path: BodyPath | None = Field(
        default="count", description="body field with the total count (null: none)"
    )
    total_header: str | None = Field(
        default=None, description="response header with the total count, e.g. X-Total-Count"
    )
    end_on: Literal["short_page", "empty_page"] = Field(
        default="short_page",
        description="which page ends the read when no total says (empty_page: servers that cap "
        "the page size below page_size)",
    )


class NextUrlOptions(PaginationOptions):
    type: Literal["next_url"] = "next_url"
    next_path: BodyPath = Field(
        default="next", description="body field with the next page's URL (relative: to the page's URL)"
    )
    size_param: str = Field(default="page_size", description="query parameter that carries page_size")


class HeaderCursorOptions(PaginationOptions):
    type: Literal["header_cursor"] = "header_cursor"
    cursor_header: str = Field(
        default="X-Next-Cursor", description="response header with the next page's cursor; absent ends"
    )
    cursor_param: str = Field(default="cursor", description="query parameter that carries the cursor")
    limit_param: str = Field(default="limit", description="query parameter that carries page_size")


class RangeHeaderOptions(PaginationOptions):
    type: Literal["range_header"] = "range_header"
    page_size: int | None = Field(default=100, ge=1, description="records asked for per page")
    range_unit: str = Field(default="items", description="unit of Range: <unit>=0-99")
    range_header: str = Field(default="Range", description="request header that carries the range")
    content_range_header: str = Field(
        default="Content-Range", description="response header with <unit> first-last/total"
    )


class GraphQLRelayOptions(PaginationOptions):
    type: Literal["graphql_relay"] = "graphql_relay"
    connection_path: str = Field(
        min_length=1, description="where the connection sits in the body, e.g. 'data.products'"
    )
    first_var: str = Field(default="first", description="query variable that carries page_size")
    after_var: str = Field(default="after", description="query variable that carries the end cursor")


DialectOptions = Annotated[
    CursorBodyOptions
    | LinkHeaderOptions
    | HubSpotOptions
    | OffsetOptions
    | PageNumberOptions
    | NextUrlOptions
    | HeaderCursorOptions
    | RangeHeaderOptions
    | GraphQLRelayOptions,
    Field(discriminator="type"),
]
"""A stream's ``source.pagination``: the options model of the dialect its ``type`` names."""


def _shape(info: FieldInfo) -> str:
    """What an option's value must look like, for messages: ``a whole number >= 1``, ``text``..."""
    annotation = info.annotation
    union = isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
    members = typing.get_args(annotation) if union else (annotation,)
    kinds = [member for member in members if member is not type(None)]
    kind = kinds[0] if len(kinds) == 1 else None
    metadata = list(info.metadata)
    if typing.get_origin(kind) is Annotated:  # BodyPath | None
        kind, *more = typing.get_args(kind)
        metadata += more
    if any(isinstance(m, AfterValidator) and m.func is _checked_path for m in metadata):
        return "a body path ($, $.a.b or a.b)"
    if typing.get_origin(kind) is Literal:
        return f"one of {list(typing.get_args(kind))}"
    if kind is bool:
        return "true or false"
    if kind is int:
        minimum = next((m.ge for m in info.metadata if isinstance(m, annotated_types.Ge)), None)
        return "a whole number" + (f" >= {minimum}" if minimum is not None else "")
    if kind is str:
        return "text"
    return str(annotation)


def option_list(model: type[PaginationOptions]) -> str:
    """A dialect's options with their shapes and defaults, its own first: the expected shape."""
    own = [name for name in model.model_fields if name not in PaginationOptions.model_fields]
    described = []
    for name in [*own, *(name for name in PaginationOptions.model_fields if name != "type")]:
        info = model.model_fields[name]
        default = info.get_default() if not info.is_required() else None
        given = "required" if info.is_required() else f"default {json.dumps(default)}"
        described.append(f"{info.alias or name} ({_shape(info)}, {given})")
    return ", ".join(described)


def options_table() -> str:
    """Every dialect's options as a Markdown table, from the models themselves: docs/recipes.md
    holds it (a test keeps the two equal), so the reference cannot drift from the code."""
    rows = ["| type | option | value | default | what it says |", "|---|---|---|---|---|"]

    def row(kind: str, name: str, info: FieldInfo) -> str:
        default = "required" if info.is_required() else f"`{json.dumps(info.get_default())}`"
        described = (info.description or "").replace("|", "\\|")
        return f"| {kind} | `{info.alias or name}` | {_shape(info)} | {default} | {described} |"

    for kind, dialect in PAGINATORS.items():
        model = dialect.options_model
        for name, info in model.model_fields.items():
            shared = PaginationOptions.model_fields.get(name)
            if name == "type" or (shared is not None and info.get_default() == shared.get_default()):
                continue
            rows.append(row(f"`{kind}`", name, info))
    for name, info in PaginationOptions.model_fields.items():
        if name != "type":
            rows.append(row("all", name, info))
    return "\n".join(rows)


def _suggestion(word: str, candidates: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest candidate, else ``.``: the end of a sentence."""
    suggestion = did_you_mean(word, candidates)
    return f"; {suggestion}" if suggestion else "."


def option_error(model: type[PaginationOptions], error: ErrorDetails) -> tuple[str, str]:
    """One validation error of a dialect's options as (option, sentence saying what is expected)."""
    kind = model.model_fields["type"].get_default()
    option = ".".join(str(part) for part in error["loc"])
    fields = {info.alias or name: info for name, info in model.model_fields.items() if name != "type"}
    if error["type"] == "extra_forbidden":
        elsewhere = sorted(name for name, other in _OPTIONS.items() if option in other.model_fields)
        also = f" (an option of {', '.join(elsewhere)})" if elsewhere else ""
        return option, (
            f"pagination {kind!r} has no option {option!r}{also}{_suggestion(option, fields)} "
            f"Its options: {option_list(model)}"
        )
    info = fields.get(str(error["loc"][0])) if error["loc"] else None
    if info is None:
        return option, f"pagination {kind!r}: {error['msg']}"
    if error["type"] == "missing":
        return option, f"pagination {kind!r} needs {option} ({_shape(info)}: {info.description})"
    if error["type"] == "value_error":
        return option, f"{option}: {error['ctx']['error'] if 'ctx' in error else error['msg']}"
    return option, f"{option} must be {_shape(info)}, got {error['input']!r} ({info.description})"


def type_error(kind: Any) -> str:
    """The sentence for a pagination ``type`` that names no dialect."""
    suggestion = _suggestion(kind, PAGINATORS) if isinstance(kind, str) else "."
    return f"pagination type must be one of {sorted(PAGINATORS)}, got {kind!r}{suggestion.rstrip('.')}"


def pagination_options(config: PaginationOptions | dict[str, Any] | str | None) -> PaginationOptions:
    """The checked options of ``{"type": name, **options}`` (or just the name; None: one request).

    Raises :class:`~apisync.errors.ApiConfigError` naming each bad option, what it expects and,
    for an unknown one, the closest known option.
    """
    if isinstance(config, PaginationOptions):
        return config
    if config is None:
        return SinglePageOptions()
    if isinstance(config, str):
        config = {"type": config}
    kind = config.get("type")
    model = _OPTIONS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ApiConfigError(type_error(kind))
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        problems = [option_error(model, error) for error in exc.errors()]
        raise ApiConfigError("; ".join(f"pagination.{option}: {text}" for option, text in problems)) from None


@dataclass
class PageRequest:
    """The request for one page: ``url`` (absolute) overrides the endpoint when a server hands it out;
    ``headers`` are the paging headers only (``Range``), merged over the connection's."""

    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        state = {"params": self.params, "json": self.json, "url": self.url}
        if self.headers:  # only the dialects that page in headers: older states stay as they were
            state["headers"] = self.headers
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PageRequest:
        return cls(
            params=dict(state.get("params") or {}),
            json=state.get("json"),
            url=state.get("url"),
            headers=dict(state.get("headers") or {}),
        )


def _fingerprint(text: bytes) -> bytes:
    return hashlib.blake2b(text, digest_size=FINGERPRINT_BYTES).digest()


def _request_fingerprint(request: PageRequest) -> bytes:
    return _fingerprint(json.dumps(request.to_state(), sort_keys=True, default=str).encode())


def _pack(digests: Iterable[bytes]) -> str:
    return base64.b64encode(b"".join(digests)).decode("ascii")


def _unpack(packed: Any) -> list[bytes]:
    if not isinstance(packed, str) or not packed:
        return []
    blob = base64.b64decode(packed)
    return [blob[i : i + FINGERPRINT_BYTES] for i in range(0, len(blob), FINGERPRINT_BYTES)]


def _record_text(records: Sequence[Any], index: int) -> bytes | None:
    """A record's JSON text as sent (never decoded, so undecodable bytes pass); for decoded
    records their compact encoding; None when a record cannot be encoded (then it is kept)."""
    if isinstance(records, RawRecords):
        return records.text(index)
    try:
        return msgspec.json.encode(records[index])
    except (msgspec.EncodeError, TypeError, UnicodeEncodeError):
        return None


class _PreviousPage:
    """The records of the page before, for the repeat guard: byte-identical texts, nothing decoded.

    Live, it holds the page's records (one substring search usually rules a text out); restored
    from a resume state, the fingerprints of its last :data:`REPEAT_GUARD_TAIL` records.
    """

    __slots__ = ("_digests", "_texts", "count", "records")

    def __init__(
        self, records: Sequence[Any] = (), digests: Iterable[bytes] = (), count: int | None = None
    ) -> None:
        self.records = records
        self._texts: set[bytes] | None = None
        self._digests = set(digests)
        self.count = len(records) if count is None else count  # records the page arrived with

    def holds(self, text: bytes) -> bool:
        if self._digests:
            return _fingerprint(text) in self._digests
        records = self.records
        if not len(records):
            return False
        if isinstance(records, RawRecords) and not records.may_hold_text(text):
            return False
        if self._texts is None:
            self._texts = {t for i in range(len(records)) if (t := _record_text(records, i)) is not None}
        return text in self._texts

    def tail_digests(self) -> list[bytes]:
        if self._digests:
            return list(self._digests)
        records = self.records
        start = max(0, len(records) - REPEAT_GUARD_TAIL)
        texts = (_record_text(records, i) for i in range(start, len(records)))
        return [_fingerprint(text) for text in texts if text is not None]


OptionsModel = type[PaginationOptions]  # (inside Paginator, ``type`` is the dialect's name)


class Paginator:
    """Base strategy: one request, no next page."""

    type: ClassVar[str] = "single"
    options_model: ClassVar[OptionsModel] = SinglePageOptions
    options: PaginationOptions
    default_records_path: ClassVar[str | None] = None
    # The API's normal last page carries no marker at all (GitHub's Link header, HubSpot's
    # paging): only on page 1, where nothing yet shows that the server pages, is a full page
    # without a marker suspicious. Elsewhere the marker field is there on every page that pages.
    marker_absent_on_last_page: ClassVar[bool] = False
    # The read ends when a page lacks the dialect's next-page marker (not on a short page or a
    # total): a full page without one is the only sign that the server stopped paging early.
    ends_on_a_marker: ClassVar[bool] = False

    def __init__(self, options: PaginationOptions | None = None) -> None:
        """``options``: checked by :func:`pagination_options` (:func:`make_paginator` does that)."""
        if options is None:
            options = pagination_options({"type": self.type})
        if type(options) is not self.options_model:
            raise ApiConfigError(f"pagination {self.type!r} got the options of {options.type!r}")
        self.options = options
        # dedupe_field: the guard's old switch (null turned it off), kept so older specs load.
        self.drop_repeats = bool(options.drop_repeats and options.dedupe_field)
        self.page_size = options.page_size
        self.max_pages = options.max_pages
        self.full_page_without_next: str = options.full_page_without_next
        self.has_next = False
        self.next: PageRequest | None = None
        self.arrived = 0  # records on the last page as the server sent them
        self.repeated = 0  # of those, dropped by the repeat guard
        self.end_marked = True  # the last update_state found an explicit end (or the dialect needs none)
        self.total: int | None = None  # records in the whole read, when the last page said (progress/ETA)
        self.total_pages: int | None = None  # pages in the whole read, when the server said (rel="last")
        self._previous = _PreviousPage()
        self._requested: dict[bytes, int] = {}  # fingerprint of each request of this read -> page
        self.pages_read = 0  # pages whose records were read (for messages)

    # -- the contract -------------------------------------------------------------------------
    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        return PageRequest(params=dict(params or {}), json=copy.deepcopy(json))

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        """Read one response; set ``has_next`` and ``next``."""
        self.has_next, self.next = False, None

    def follow(self, request: PageRequest, *, number: int, method: str, url: str) -> None:
        """After :meth:`update_state` of page ``number`` (fetched with ``request``): end the read
        with :class:`~apisync.errors.PaginationError` when the next request was already made in
        this read (a cursor cycle), when ``max_pages`` is reached with more to come, or when a full
        page came without a next-page marker (``full_page_without_next: warn`` only logs that)."""
        self._requested.setdefault(_request_fingerprint(request), number)
        if not self.has_next or self.next is None:
            self._check_end(request, number=number, method=method, url=url)
            return
        earlier = self._requested.get(_request_fingerprint(self.next))
        following = _describe(self.next)
        if earlier == number:
            raise PaginationError(
                f"page {number}: {method} {url}: the next-page cursor did not advance ({following}): "
                "the same request would repeat forever",
                method=method,
                url=url,
            )
        if earlier is not None:
            raise PaginationError(
                f"page {number}: {method} {url}: the next request ({following}) was already made for "
                f"page {earlier}: the server's cursor cycles and the read would never end",
                method=method,
                url=url,
            )
        if self.max_pages is not None and number >= self.max_pages:
            raise PaginationError(
                f"page {number}: {method} {url}: max_pages {self.max_pages} reached and the server "
                f"offers more (next request: {following}); raise max_pages in the stream's pagination "
                "if reads this long are expected",
                method=method,
                url=url,
            )

    # -- shared behaviour ---------------------------------------------------------------------
    def records_location(self, records_path: str | None) -> str | None:
        """Where :func:`decode_body` keeps the records raw ("" = the body); None = decode it all."""
        return records_path if records_path is not None else (self.default_records_path or "")

    def check(self, data: Any, *, method: str, url: str) -> None:
        """Raise on error payloads that come with a 2xx (GraphQL)."""

    def records(self, data: Any, records_path: str | None, *, method: str, url: str) -> Sequence[Any]:
        path = body_path(records_path) if records_path is not None else self.default_records_path
        found = dig(data, path)
        if found is None and isinstance(data, list | RawRecords) and not path:
            found = data
        if not isinstance(found, list | RawRecords):
            where = path or "$"
            raise MalformedResponseError(
                f"{method} {url}: expected a list at {where!r}, got {type(found).__name__}"
                + ("" if records_path is not None else " (the dialect's default records_path)"),
                method=method,
                url=url,
            )
        return self._repeats_checked(found, method=method, url=url)

    def _repeats_checked(self, records: Sequence[Any], *, method: str, url: str) -> Sequence[Any]:
        """:meth:`_drop_repeats`, and a page that is the page before all over again is an error:
        a server that ignores the paging parameter sends page 1 forever, and dropping each copy
        would end the read as if complete, the rest of the rows lost."""
        previous = self._previous.count
        kept = self._drop_repeats(records)
        if self.repeated and self.repeated == len(records) == previous:
            self.pages_read += 1
            parameter = self._paging_param()
            cause = (
                f"the server likely ignores the paging parameter {parameter!r} (check its name in "
                "the API's documentation and declare it in the stream's pagination)"
                if parameter
                else "the server likely ignores how the dialect asks for the next page"
            )
            raise PaginationError(
                redact(
                    f"page {self.pages_read}: {method} {url}: every one of its {len(records)} records "
                    f"repeats the page before: {cause}; stopping here would lose the rest of the read"
                ),
                method=method,
                url=url,
            )
        self.pages_read += 1
        return kept

    def _paging_param(self) -> str | None:
        """The request parameter that moves the read to the next page, for messages."""
        return None

    def response_headers(self) -> tuple[str, ...]:
        """The response headers :meth:`update_state` reads: a page replayed from staging (a 304
        to a conditional request) must carry them, or the read would end early."""
        return ()

    def _drop_repeats(self, records: Sequence[Any]) -> Sequence[Any]:
        """Drop the records at the top of the page that are byte-identical to one of the page
        before (a server shifting rows between requests repeats them) and count them. A changed
        record is kept, whatever its key: the newest version wins downstream (normalize and the
        load keep the latest cursor per primary key)."""
        self.arrived, self.repeated = len(records), 0
        if not self.drop_repeats:
            return records
        start = 0
        while start < len(records):
            text = _record_text(records, start)
            if text is None or not self._previous.holds(text):
                break
            start += 1
        self._previous = _PreviousPage(records)
        self.repeated = start
        return records[start:] if start else records

    def restore_extra(self, state: dict[str, Any]) -> None:
        """Restore dialect-private state: the requests made so far (for the cycle check) and the
        last records of the page before (for the repeat guard), both as fingerprints."""
        digests = _unpack(state.get("previous_records"))
        # Its record count: exact up to REPEAT_GUARD_TAIL records (the resume state stays small).
        self._previous = _PreviousPage(digests=digests, count=len(digests))
        self._requested = {digest: page for page, digest in enumerate(_unpack(state.get("requests")), 1)}
        self.pages_read = int(state.get("page") or len(self._requested))

    def extra_state_later(self) -> Callable[[], dict[str, Any]]:
        """Dialect-private state as of now (what :meth:`restore_extra` reads back), built when
        called: fingerprints are computed only if someone asks for a page's resume state."""
        previous, requested, count = self._previous, self._requested, len(self._requested)
        return lambda: {
            "previous_records": _pack(previous.tail_digests()),
            "requests": _pack(itertools.islice(requested, count)),  # in page order, only ever added
        }

    def _with_size(self, params: dict[str, Any], size_param: str) -> dict[str, Any]:
        if self.page_size and size_param not in params:
            params[size_param] = self.page_size
        return params

    # -- the end of a read --------------------------------------------------------------------
    def _size_param(self) -> str | None:
        """The request parameter that holds the page size; None: the dialect sends none."""
        return None

    def full_page_undetectable(self, params: dict[str, Any]) -> bool:
        """Whether a full page without a next-page marker could not be told from the last page
        (the dialect ends on a marker, and neither ``page_size`` nor the size parameter in
        ``params`` says how full a page is) while the spec wants that to be an error."""
        size_param = self._size_param()
        return (
            self.ends_on_a_marker
            and self.full_page_without_next == "error"
            and not self.page_size
            and not (size_param and size_param in params)
        )

    def _marker(self) -> str:
        """What marks a next page in this dialect, for messages."""
        return "a next-page marker"

    def _requested_size(self, request: PageRequest) -> int | None:
        name = self._size_param()
        value: Any = None
        if name:
            value = request.params.get(name)
            if value is None and request.url:
                value = next(iter(parse_qs(urlsplit(request.url).query).get(name, [])), None)
        try:
            return int(value) if value is not None else self.page_size
        except (TypeError, ValueError):
            return self.page_size

    def _check_end(self, request: PageRequest, *, number: int, method: str, url: str) -> None:
        """A full page with no next marker: the server may page only when asked (or not at all),
        and stopping would silently lose the rest."""
        if self.end_marked or (self.marker_absent_on_last_page and number > 1):
            return
        size = self._requested_size(request)
        if not size or self.arrived < size:
            return
        message = (
            f"page {number}: {method} {url} returned a full page ({self.arrived} records, the page "
            f"size {size}) but no next-page marker ({self._marker()}): the server may page only "
            "when asked (declare the page or size parameter it needs in the stream's params) or "
            "the dialect's options do not match its responses. If the API ends a read this way "
            "legitimately, declare full_page_without_next: warn in the stream's pagination."
        )
        if self.full_page_without_next == "warn":
            log.warning("%s", redact(message))
            return
        raise PaginationError(redact(message), method=method, url=url)


def _describe(request: PageRequest) -> str:
    """The next request for a message (redacted): its URL, query parameters and GraphQL variables."""
    parts = []
    if request.url:
        parts.append(request.url)
    if request.params:
        parts.append(urlencode(request.params, doseq=True))
    variables = request.json.get("variables") if isinstance(request.json, dict) else None
    if variables:
        parts.append(f"variables {json.dumps(variables, sort_keys=True, default=str)}")
    return redact(" ".join(parts) or "the first request again")


class CursorBodyPaginator(Paginator):
    """Stripe lists: ``starting_after=<id of the last record>`` while ``has_more`` is true."""

    type = "cursor_body"
    ends_on_a_marker = True
    default_records_path = "data"

    options: CursorBodyOptions
    options_model = CursorBodyOptions

    def __init__(self, options: PaginationOptions | None = None) -> None:
        super().__init__(options)
        self.cursor_param, self.id_field = self.options.cursor_param, self.options.id_field
        self.has_more_field, self.limit_param = self.options.has_more_field, self.options.limit_param
        self.cursor_path = self.options.cursor_path

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        self._with_size(request.params, self.limit_param)
        return request

    def _size_param(self) -> str | None:
        return self.limit_param

    def _paging_param(self) -> str | None:
        return self.cursor_param

    def _marker(self) -> str:
        markers = [f"{path!r} in the body" for path in (self.cursor_path, self.has_more_field) if path]
        return " or ".join(markers)

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        more_given = bool(self.has_more_field) and dig(data, self.has_more_field or "") is not None
        if self.cursor_path is not None:
            # The cursor is a body field: an empty one ends the read, a has_more false as well.
            cursor = dig(data, self.cursor_path)
            # Like HubSpot's paging, the field may be gone on the last page: suspicious on page 1 only.
            self.end_marked = more_given or has_path(data, self.cursor_path) or self.pages_read > 1
            more = cursor not in (None, "") and (not more_given or bool(dig(data, self.has_more_field or "")))
        else:
            raw_records = dig(data, self.default_records_path) or records
            self.end_marked = more_given
            more = more_given and bool(dig(data, self.has_more_field or "")) and bool(raw_records)
            cursor = self._last_id(raw_records) if more else None
        if more:
            params = dict(request.params)
            params[self.cursor_param] = cursor
            self.has_next, self.next = True, PageRequest(params=params, json=request.json)
        else:
            self.has_next, self.next = False, None

    def _last_id(self, records: Sequence[Any]) -> Any:
        """The cursor: the last record's id. A record that is not valid UTF-8 (quarantined later,
        in normalize) still gives its id: only that field is read, the rest stays bytes."""
        try:
            return records[-1][self.id_field]
        except UnicodeDecodeError:
            if not isinstance(records, RawRecords):
                raise
            found = records[-1:].keys(self.id_field)
            if not found:
                raise KeyError(self.id_field) from None
            return next(iter(found))


class LinkHeaderPaginator(Paginator):
    """GitHub REST: follow ``Link: <url>; rel="next"`` until it is absent."""

    type = "link_header"
    ends_on_a_marker = True
    marker_absent_on_last_page = True

    options: LinkHeaderOptions
    options_model = LinkHeaderOptions

    def __init__(self, options: PaginationOptions | None = None) -> None:
        super().__init__(options)
        self.size_param, self.page_param = self.options.size_param, self.options.page_param

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        if self.page_param:
            request.params.setdefault(self.page_param, self.options.start_page)
        self._with_size(request.params, self.size_param)
        return request

    def _size_param(self) -> str | None:
        return self.size_param

    def _paging_param(self) -> str | None:
        return self.page_param or "page"

    def response_headers(self) -> tuple[str, ...]:
        return ("Link",)

    def _marker(self) -> str:
        return 'a Link header with rel="next"'

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        # Any relation (prev, first, last) shows the server pages: then no "next" is the end.
        self.end_marked = bool(response.links)
        last_url = response.links.get("last", {}).get("url", "")
        last_page = parse_qs(urlsplit(last_url).query).get(self.page_param or "page")
        if last_page and last_page[0].isdigit():  # GitHub's rel="last": the read's page count
            self.total_pages = int(last_page[0]) - self.options.start_page + 1
        next_url = response.links.get("next", {}).get("url")
        if next_url:
            next_url = urljoin(response.url or "", next_url)  # RFC 8288: relative to the request
        self.has_next = bool(next_url)
        self.next = PageRequest(url=next_url, json=request.json) if next_url else None


class HubSpotPaginator(Paginator):
    """HubSpot CRM v3: ``after=<paging.next.after>`` until ``paging.next`` is absent."""

    type = "hubspot"
    ends_on_a_marker = True
    default_records_path = "results"
    marker_absent_on_last_page = True

    options: HubSpotOptions
    options_model = HubSpotOptions

    def __init__(self, options: PaginationOptions | None = None) -> None:
        super().__init__(options)
        self.cursor_param, self.limit_param = self.options.cursor_param, self.options.limit_param

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        self._with_size(request.params, self.limit_param)
        return request

    def _size_param(self) -> str | None:
        return self.limit_param

    def _paging_param(self) -> str | None:
        return self.cursor_param

    def _marker(self) -> str:
        return "paging.next.after in the body"

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        self.end_marked = dig(data, "paging") is not None
        after = dig(data, "paging.next.after")
        if after:
            params = dict(request.params)
            params[self.cursor_param] = after
            self.has_next, self.next = True, PageRequest(params=params, json=request.json)
        else:
            self.has_next, self.next = False, None


class OffsetPaginator(Paginator):
    """``offset``/``limit`` with a ``total``: advance by the records actually received."""

    type = "offset"
    default_records_path = "items"

    options: OffsetOptions
    options_model = OffsetOptions

    def __init__(self, options: PaginationOptions | None = None) -> None:
        super().__init__(options)
        self.offset_param, self.limit_param = self.options.offset_param, self.options.limit_param
        self.total_path = self.options.total_path

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        request.params.setdefault(self.offset_param, self.options.start_offset)
        self._with_size(request.params, self.limit_param)
        return request

    def _paging_param(self) -> str | None:
        return self.offset_param

    def response_headers(self) -> tuple[str, ...]:
        return (self.options.total_header,) if self.options.total_header else ()

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        received = self.arrived
        # Advance by what the server returned, but never by more than the limit: a page that starts
        # with a repeated row carries limit + 1 items, and skipping by that would lose a row.
        limit = request.params.get(self.limit_param)
        step = min(received, int(limit)) if limit else received
        offset = int(request.params.get(self.offset_param, 0)) + step
        self.total = _total(response, data, self.total_path, self.options.total_header)
        if received == 0:
            more = False
        elif self.total is not None:
            more = offset - self.options.start_offset < self.total
        elif self.options.end_on == "empty_page":
            more = True
        else:
            more = received >= int(request.params.get(self.limit_param) or 1)
        params = dict(request.params)
        params[self.offset_param] = offset
        self.has_next = more
        self.next = PageRequest(params=params, json=request.json) if more else None


class PageNumberPaginator(Paginator):
    """``page=1,2,...`` until an empty/short page, or past ``total`` when the body gives one."""

    type = "page_number"
    default_records_path = "results"

    options: PageNumberOptions
    options_model = PageNumberOptions

    def __init__(self, options: PaginationOptions | None = None) -> None:
        super().__init__(options)
        self.page_param, self.size_param = self.options.page_param, self.options.size_param
        self.start_page, self.total_path = self.options.start_page, self.options.total_path

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        request.params.setdefault(self.page_param, self.start_page)
        self._with_size(request.params, self.size_param)
        return request

    def _paging_param(self) -> str | None:
        return self.page_param

    def response_headers(self) -> tuple[str, ...]:
        return (self.options.total_header,) if self.options.total_header else ()

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        received = self.arrived
        page = int(request.params[self.page_param])
        size = request.params.get(self.size_param)
        self.total = _total(response, data, self.total_path, self.options.total_header)
        if received == 0:
            more = False
        elif self.total is not None and size:
            more = (page - self.start_page + 1) * int(size) < self.total
        elif self.options.end_on == "empty_page":
            more = True
        else:
            more = not size or received >= int(size)
        params = dict(request.params)
        params[self.page_param] = page + 1
        self.has_next = more
        self.next = PageRequest(params=params, json=request.json) if more else None


class NextUrlPaginator(Paginator):
    """Follow an absolute next-page URL found in the body (``{"next": "https://..."}``)."""

    type = "next_url"
    ends_on_a_marker = True
    default_records_path = "results"

    options: NextUrlOptions
    options_model = NextUrlOptions

    def __init__(self, options: PaginationOptions | None = None) -> None:
        super().__init__(options)
        self.next_path, self.size_param = self.options.next_path, self.options.size_param

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        self._with_size(request.params, self.size_param)
        return request

    def _size_param(self) -> str | None:
        return self.size_param

    def _marker(self) -> str:
        return f"{self.next_path!r} in the body"

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        # An explicit null (Django REST framework's last page) is an end; a missing key is not.
        self.end_marked = has_path(data, self.next_path)
        next_url = dig(data, self.next_path)
        if next_url and not isinstance(next_url, str):
            raise MalformedResponseError(
                f"{response.url}: {self.next_path!r} must be a URL, got {type(next_url).__name__}",
                method="GET",
                url=response.url,
            )
        if next_url:
            next_url = urljoin(response.url or "", next_url)  # "/items?page=2", "?page=2": as a browser does
        self.has_next = bool(next_url)
        self.next = PageRequest(url=next_url, json=request.json) if next_url else None


class HeaderCursorPaginator(Paginator):
    """The next page's cursor in a response header (``X-Next-Cursor: abc``) sent back as a query
    parameter, until the header is absent or empty."""

    type = "header_cursor"
    ends_on_a_marker = True
    marker_absent_on_last_page = True

    options: HeaderCursorOptions
    options_model = HeaderCursorOptions

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        self._with_size(request.params, self.options.limit_param)
        return request

    def _size_param(self) -> str | None:
        return self.options.limit_param

    def _paging_param(self) -> str | None:
        return self.options.cursor_param

    def response_headers(self) -> tuple[str, ...]:
        return (self.options.cursor_header,)

    def _marker(self) -> str:
        return f"a {self.options.cursor_header} header"

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        cursor = response.headers.get(self.options.cursor_header, "").strip()
        self.end_marked = self.options.cursor_header in response.headers
        if cursor:
            params = {**request.params, self.options.cursor_param: cursor}
            self.has_next, self.next = True, PageRequest(params=params, json=request.json)
        else:
            self.has_next, self.next = False, None


class RangeHeaderPaginator(Paginator):
    """``Range: items=0-99`` asked, ``206`` with ``Content-Range: items 0-99/1234`` answered (the
    total may be ``*``): the next range starts after the last one served, until the total, an
    empty page or a short one."""

    type = "range_header"

    options: RangeHeaderOptions
    options_model = RangeHeaderOptions

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        request.headers = {self.options.range_header: self._range(0)}
        return request

    def _range(self, first: int) -> str:
        size = self.page_size or 100
        return f"{self.options.range_unit}={first}-{first + size - 1}"

    def _paging_param(self) -> str | None:
        return f"{self.options.range_header} header"

    def response_headers(self) -> tuple[str, ...]:
        return (self.options.content_range_header,)

    def _requested_size(self, request: PageRequest) -> int | None:
        return self.page_size

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        asked = request.headers.get(self.options.range_header, "")
        first = int(asked.partition("=")[2].partition("-")[0] or 0)
        served = _content_range(response.headers.get(self.options.content_range_header, ""))
        received = self.arrived
        if served is not None:
            _, last, total = served
            following, self.total = last + 1, total
        else:
            following = first + received  # a 200 without Content-Range: the server sent what it had
        size = self.page_size or 100
        if received == 0 or (served is None and response.status_code != 206):
            more = False
        elif self.total is not None:
            more = following < self.total
        else:
            more = received >= size
        self.has_next = more
        self.next = (
            PageRequest(
                params=dict(request.params),
                json=request.json,
                headers={**request.headers, self.options.range_header: self._range(following)},
            )
            if more
            else None
        )


def _content_range(value: str) -> tuple[int, int, int | None] | None:
    """``items 0-99/1234`` -> (0, 99, 1234); ``items 0-99/*`` -> (0, 99, None); else None."""
    _, _, spec = value.strip().partition(" ")
    span, _, total = spec.partition("/")
    first, _, last = span.partition("-")
    if not (first.isdigit() and last.isdigit()):
        return None
    return int(first), int(last), int(total) if total.isdigit() else None


def _total(response: requests.Response, data: Any, path: str | None, header: str | None) -> int | None:
    """The read's record count from the declared body field or response header, when it is one."""
    if header:
        value = response.headers.get(header, "").strip()
        if value.isdigit():
            return int(value)
    return _count_or_none(dig(data, path)) if path else None


class GraphQLRelayPaginator(Paginator):
    """GraphQL Relay connection: ``after: $after`` from ``pageInfo.endCursor`` while ``hasNextPage``.

    Records are the ``node`` of each edge. The ``errors`` array of a response is checked for
    every GraphQL source, whatever its dialect, by :func:`apisync.http.graphql.check_errors`.
    """

    type = "graphql_relay"
    ends_on_a_marker = True

    options: GraphQLRelayOptions
    options_model = GraphQLRelayOptions

    def __init__(self, options: PaginationOptions | None = None) -> None:
        super().__init__(options)
        self.connection_path = self.options.connection_path
        self.first_var, self.after_var = self.options.first_var, self.options.after_var

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        if not isinstance(request.json, dict) or "query" not in request.json:
            raise ApiConfigError("pagination graphql_relay needs json={'query': ..., 'variables': {...}}")
        variables = request.json.setdefault("variables", {})
        if self.page_size and self.first_var not in variables:
            variables[self.first_var] = self.page_size
        return request

    def _requested_size(self, request: PageRequest) -> int | None:
        variables = request.json.get("variables") if isinstance(request.json, dict) else None
        value = variables.get(self.first_var) if isinstance(variables, dict) else None
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else self.page_size

    def _marker(self) -> str:
        return f"{self.connection_path}.pageInfo.hasNextPage"

    def records_location(self, records_path: str | None) -> str | None:
        # Records are the ``node`` of each edge: without an explicit path the body is decoded whole.
        return records_path

    def records(self, data: Any, records_path: str | None, *, method: str, url: str) -> Sequence[Any]:
        if records_path is not None:
            return super().records(data, records_path, method=method, url=url)
        edges = dig(data, f"{self.connection_path}.edges")
        if not isinstance(edges, list):
            raise MalformedResponseError(
                f"{method} {url}: no list at {self.connection_path}.edges", method=method, url=url
            )
        nodes = [e.get("node") if isinstance(e, dict) else e for e in edges]
        return self._repeats_checked(nodes, method=method, url=url)

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        info = dig(data, f"{self.connection_path}.pageInfo") or {}
        self.total = _count_or_none(dig(data, f"{self.connection_path}.totalCount"))  # when the query asks
        self.end_marked = isinstance(info, dict) and info.get("hasNextPage") is not None
        cursor = info.get("endCursor")
        if info.get("hasNextPage") and cursor:
            body = copy.deepcopy(request.json)
            body.setdefault("variables", {})[self.after_var] = cursor
            self.has_next, self.next = True, PageRequest(params=dict(request.params), json=body)
        else:
            self.has_next, self.next = False, None


def _count_or_none(value: Any) -> int | None:
    """A total the body gave, when it is a count (not a bool, not negative)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


PAGINATORS: dict[str, type[Paginator]] = {
    cls.type: cls
    for cls in (
        CursorBodyPaginator,
        LinkHeaderPaginator,
        HubSpotPaginator,
        OffsetPaginator,
        PageNumberPaginator,
        NextUrlPaginator,
        HeaderCursorPaginator,
        RangeHeaderPaginator,
        GraphQLRelayPaginator,
    )
}
"""The one registry of pagination dialects, by ``type``: ``make_paginator`` and the stream spec
(``PaginationSpec.type``) both accept exactly these names. No pagination (``None``) is the base
:class:`Paginator`: one request, no next page."""


_DIALECTS: list[type[Paginator]] = [Paginator, *PAGINATORS.values()]
_OPTIONS: dict[str, OptionsModel] = {cls.type: cls.options_model for cls in _DIALECTS}


def make_paginator(config: PaginationOptions | dict[str, Any] | str | None) -> Paginator:
    """Paginator from ``{"type": name, **options}`` (or just the name, or checked options);
    ``None``: a single request. Bad options raise :class:`~apisync.errors.ApiConfigError`."""
    options = pagination_options(config)
    dialect = PAGINATORS.get(options.type, Paginator)
    if options.in_ != "query":  # page parameters in the JSON body or its GraphQL variables
        from apisync.http.graphql import placed_in_body

        return placed_in_body(dialect, options)
    return dialect(options)
