"""GraphQL sources: page parameters in the variables, the ``errors`` array on every response.

A GraphQL source is a read whose request body has a ``query`` (``source.json.query`` in a stream
spec); it is POSTed to whatever path the server serves it on (``/graphql``, ``/``, ``/api``). Two
things make it one, whatever the pagination dialect:

- **Where the page parameters go** (``in`` on every dialect's options, see
  :class:`~apisync.http.pagination.PaginationOptions`): ``query`` (default) keeps them in the URL,
  ``variables`` puts them in the body's GraphQL ``variables``, ``body`` at the top level of a JSON
  body (REST search endpoints that page in the body). :func:`placed_in_body` wraps the dialect so
  that it still reads and writes ``PageRequest.params`` while every request it makes, the first
  one included, carries them in the body; the resume state is the request as sent, and the
  dialect gets the parameters back in ``params`` on every page. The names are the dialect's own
  options (``page_param``/``size_param``, ``offset_param``/``limit_param``, ``cursor_param``), so
  ``page_number`` with ``page_param: page, size_param: perPage, in: variables`` pages
  json-graphql-server's ``allOrders(page: $page, perPage: $perPage)``.
- **The errors array** (:func:`check_errors`, called by the hook on every page before its records
  are taken): GraphQL answers 200 with ``{"data": ..., "errors": [...]}``. Errors with no data at
  the records path fail with :class:`~apisync.errors.GraphQLError` carrying the server's messages
  (redacted), never a bare "expected a list". Errors *with* data (partial results: some fields
  resolved, others not) fail too, unless the stream allows them (:class:`GraphQLOptions`,
  ``source.graphql.partial_results: allow_with_warning``): then the page's records are kept and
  the errors logged and handed on with the page (``Page.graphql_errors``). With ``quarantine``
  the records are kept too and each error's ``path`` names the record it hit
  (:func:`errors_by_record`: ``["allOrders", 3, "quantity"]`` with the records at
  ``data.allOrders`` is the page's record 3); the extract stages those messages next to the page
  and normalize puts them in the record's errors column, so validation quarantines it. An error
  whose path points at no record (none, a whole field, another top-level field) fails the read.

Retries of GraphQL requests (a query is safe to send again, a mutation is not, on any path) are
decided in :mod:`apisync.http.retry` from the operation in the document.

Cheap to import (no requests, no Airflow): the stream spec imports :class:`GraphQLOptions`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from apisync.errors import ApiConfigError, GraphQLError
from apisync.http.body import RawRecords, dig
from apisync.http.pagination import (
    GraphQLRelayPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    PageRequest,
    PaginationOptions,
    Paginator,
)
from apisync.redaction import cut_redacted, redact

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

PARTIAL_RESULTS = ("fail", "allow_with_warning", "quarantine")
# The dialects' options that name a request parameter the paginator manages.
PAGE_PARAMETER_OPTIONS = ("page_param", "size_param", "offset_param", "limit_param", "cursor_param")
MESSAGES_CHARS = 500  # the servers' messages in an error or a log line


class GraphQLOptions(BaseModel):
    """``source.graphql`` of a stream spec: what a response with data *and* errors does.

    ``fail`` (default): the read fails with the server's messages. ``allow_with_warning``: the
    page's records are kept, the errors logged as a warning and kept with the page.
    ``quarantine``: the page's records are kept and the records the errors' paths point into are
    quarantined with the messages as the reason; an error that points into no record fails the
    read. A response whose records are missing (``data: null``, ``data.allOrders: null``) fails
    whatever the option.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    partial_results: Literal["fail", "allow_with_warning", "quarantine"] = Field(
        default="fail", description="what a response with both data and errors does"
    )


def graphql_options(config: GraphQLOptions | dict[str, Any] | None) -> GraphQLOptions:
    """The checked options (None: the defaults)."""
    if isinstance(config, GraphQLOptions):
        return config
    return GraphQLOptions.model_validate(config or {})


def is_graphql_source(body: Any) -> bool:
    """A request body is GraphQL when it carries a ``query`` document."""
    return isinstance(body, dict) and isinstance(body.get("query"), str)


# -- page parameters in the body ------------------------------------------------------------------
class ParametersInBody(Paginator):
    """Mixed in before a dialect by :func:`placed_in_body`: the dialect manages its parameters in
    ``PageRequest.params``; every request it hands out carries them in the JSON body instead
    (its ``variables`` for ``in: variables``, its top level for ``in: body``)."""

    def __init__(self, options: PaginationOptions | None = None) -> None:
        super().__init__(options)
        self.placement = self.options.in_
        names = (getattr(self.options, option, None) for option in PAGE_PARAMETER_OPTIONS)
        self.placed = tuple(dict.fromkeys(name for name in names if isinstance(name, str)))

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        if self.placement == "variables" and not is_graphql_source(json):
            raise ApiConfigError(
                f"pagination {self.type!r} in: variables needs a GraphQL body "
                "(json={'query': ..., 'variables': {...}})"
            )
        # Page parameters the spec fixed in the body (a page size) are the dialect's to read.
        given = self.inner(PageRequest(params=dict(params or {}), json=json))
        return self.outer(super().start(given.params, given.json))

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        super().update_state(response, data, records, self.inner(request))
        if self.next is not None:
            self.next = self.outer(self.next)

    def _requested_size(self, request: PageRequest) -> int | None:
        return super()._requested_size(self.inner(request))

    def _holder(self, json: Any) -> dict[str, Any]:
        """Where the parameters sit in ``json`` (a copy the caller may change)."""
        if not isinstance(json, dict):
            raise ApiConfigError(f"pagination {self.type!r} in: {self.placement} needs a JSON object body")
        if self.placement == "body":
            return json
        variables = json.setdefault("variables", {})
        if variables is None:
            variables = json["variables"] = {}
        if not isinstance(variables, dict):
            raise ApiConfigError(
                f"pagination {self.type!r} in: variables: the body's variables must be an object"
            )
        return cast(dict[str, Any], variables)

    def outer(self, request: PageRequest) -> PageRequest:
        """The request as sent: the page parameters moved from ``params`` into the body."""
        return self._moved(request, into_body=True)

    def inner(self, request: PageRequest) -> PageRequest:
        """The request as the dialect sees it: the page parameters back in ``params``."""
        return self._moved(request, into_body=False)

    def _moved(self, request: PageRequest, *, into_body: bool) -> PageRequest:
        params = dict(request.params)
        json = copy.deepcopy(request.json) if request.json is not None else {}
        holder = self._holder(json)
        source, target = (params, holder) if into_body else (holder, params)
        for name in self.placed:
            if name in source:
                target[name] = source.pop(name)
        return PageRequest(params=params, json=json, url=request.url, headers=dict(request.headers))


_PLACED: dict[type[Paginator], type[Paginator]] = {}


def placed_in_body(dialect: type[Paginator], options: PaginationOptions) -> Paginator:
    """A ``dialect`` paginator whose page parameters travel where ``options.in_`` says.

    Raises :class:`~apisync.errors.ApiConfigError` for a dialect that follows URLs the server
    hands out (``link_header``, ``next_url``: nothing to place), and for ``graphql_relay`` with
    ``in: body`` (its ``first``/``after`` are GraphQL variables already).
    """
    if issubclass(dialect, LinkHeaderPaginator | NextUrlPaginator):
        raise ApiConfigError(
            f"pagination {dialect.type!r} follows the next-page URL the server hands out: "
            f"in: {options.in_} has nothing to place; use in: query (the default)"
        )
    if issubclass(dialect, GraphQLRelayPaginator):
        if options.in_ == "body":
            raise ApiConfigError(
                "pagination 'graphql_relay' sends first/after as GraphQL variables: use in: variables "
                "or leave in out"
            )
        return dialect(options)
    placed = _PLACED.get(dialect)
    if placed is None:
        placed = _PLACED[dialect] = cast(
            type[Paginator],
            type(f"{dialect.__name__}InBody", (ParametersInBody, dialect), {"__doc__": dialect.__doc__}),
        )
    return placed(options)


# -- the errors array -----------------------------------------------------------------------------
def _error_text(error: Any) -> str:
    """One server error's message with its ``path`` when it has one (not yet redacted)."""
    if not isinstance(error, dict):
        return str(error)
    text = str(error.get("message", error))
    path = error.get("path")
    if isinstance(path, list) and path:
        text += f" (at {'.'.join(str(step) for step in path)})"
    return text


def error_messages(errors: Sequence[Any]) -> str:
    """The servers' messages, ``; ``-joined, each with its ``path`` when it has one (redacted, cut)."""
    return cut_redacted("; ".join(_error_text(error) for error in errors), MESSAGES_CHARS)


def _records_location(paginator: Paginator, records_path: str | None) -> str:
    """The dotted path of the page's records in the response body ("": the body itself)."""
    if records_path is None and isinstance(paginator, GraphQLRelayPaginator):
        return f"{paginator.connection_path}.edges"
    return records_path if records_path is not None else (paginator.default_records_path or "")


def _records_at(data: Any, paginator: Paginator, records_path: str | None) -> Any:
    """What the page holds where its records should be (None: nothing)."""
    path = _records_location(paginator, records_path)
    return dig(data, path) if path else data


def errors_by_record(
    errors: Sequence[Any], *, paginator: Paginator, records_path: str | None, count: int | None = None
) -> tuple[dict[int, list[str]], list[Any]]:
    """The errors whose ``path`` points into a record, by the record's index in the page (each
    message with its path, redacted and cut), and the errors that point into none.

    A GraphQL error's path starts below ``data``: with the records at ``data.allOrders`` the path
    ``["allOrders", 3, "quantity"]`` is record 3 (``["products", "edges", 3, "node", "title"]``
    for a Relay connection). A path-less error, or one at a whole field (``["allOrders"]``) or
    another top-level field, points into no record; so does an index past the page's ``count``
    records.
    """
    location = _records_location(paginator, records_path).split(".")
    prefix = location[1:] if location[:1] == ["data"] else None
    by_record: dict[int, list[str]] = {}
    unpointed: list[Any] = []
    for error in errors:
        path = error.get("path") if isinstance(error, dict) else None
        index = None
        if prefix is not None and isinstance(path, list) and len(path) > len(prefix):
            step = path[len(prefix)]
            if [str(part) for part in path[: len(prefix)]] == prefix and isinstance(step, int):
                index = step
        if index is None or index < 0 or (count is not None and index >= count):
            unpointed.append(error)
            continue
        by_record.setdefault(index, []).append(cut_redacted(_error_text(error), MESSAGES_CHARS))
    return by_record, unpointed


def check_errors(
    data: Any,
    body: Any,
    *,
    paginator: Paginator,
    records_path: str | None,
    options: GraphQLOptions,
    method: str,
    url: str,
) -> list[Any]:
    """The ``errors`` of a GraphQL page that may be kept; raise :class:`GraphQLError` otherwise.

    Not a GraphQL source, or no errors: ``[]``. Errors and no records at the records path: the
    read fails with the server's messages, whatever ``options`` say. Errors with records (partial
    results): fail, or with ``partial_results: allow_with_warning`` log them and return them; with
    ``quarantine`` return them when each points into a record (:func:`errors_by_record`), fail
    with the ones that do not otherwise.
    """
    if not is_graphql_source(body) or not isinstance(data, dict):
        return []
    errors = data.get("errors")
    if not errors:
        return []
    errors = errors if isinstance(errors, list) else [errors]
    messages = error_messages(errors)
    records = _records_at(data, paginator, records_path)
    partial = isinstance(records, list | RawRecords)
    if partial and options.partial_results == "allow_with_warning":
        log.warning(
            "%s %s: GraphQL partial results: keeping %d records, %d errors: %s",
            method,
            redact(url),
            len(records),
            len(errors),
            messages,
        )
        return errors
    if partial and options.partial_results == "quarantine":
        _, unpointed = errors_by_record(
            errors, paginator=paginator, records_path=records_path, count=len(records)
        )
        if not unpointed:
            log.warning(
                "%s %s: GraphQL partial results: quarantining the records of %d errors: %s",
                method,
                redact(url),
                len(errors),
                messages,
            )
            return errors
        raise GraphQLError(
            f"{method} {url}: GraphQL errors that point into no record (partial_results: quarantine "
            f"quarantines only records an error's path points into): {error_messages(unpointed)}",
            method=method,
            url=url,
            errors=errors,
        )
    what = (
        "partial results (data and errors; source.graphql.partial_results: allow_with_warning keeps them)"
        if partial
        else f"no records at {records_path or 'the records path'!r}"
    )
    raise GraphQLError(
        f"{method} {url}: GraphQL errors, {what}: {messages}", method=method, url=url, errors=errors
    )
