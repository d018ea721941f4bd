"""Pagination dialects as small strategies, one class per dialect, chosen by ``type`` from config.

Contract (dlt-style): :meth:`Paginator.start` gives the first request, :meth:`Paginator.update_state`
reads a response and sets :attr:`Paginator.has_next` and :attr:`Paginator.next`, the next request.
The next request *is* the resumable state: ``PageRequest.to_state()`` is plain JSON, so a task that
defers (or crashes) resumes exactly after the last page it handled, neither repeating nor missing one.

=============== ============================================ =====================================
type            dialect                                      options (defaults)
=============== ============================================ =====================================
cursor_body     Stripe ``starting_after=<last id>``,         cursor_param, id_field ("id"),
                ``has_more``                                 has_more_field, limit_param, page_size
link_header     GitHub ``Link: <...>; rel="next"``            page_size, size_param ("per_page")
hubspot         HubSpot ``paging.next.after``                 cursor_param ("after"), page_size
offset          ``offset``/``limit`` with ``total``           offset_param, limit_param,
                                                             page_size (100), total_path ("total")
page_number     ``page``/``page_size`` (+ optional total)     page_param, size_param, page_size,
                                                             start_page (1), total_path
next_url        absolute next URL in the body                 next_path ("next")
graphql_relay   Relay ``pageInfo {hasNextPage endCursor}``    connection_path (required),
                                                             page_size, first_var, after_var
=============== ============================================ =====================================

All dialects accept ``dedupe_field`` (default ``"id"``): records at the top of a page whose key was
already on the previous page are dropped (servers that shift rows between requests repeat them).

Bodies are decoded before a paginator sees them (:mod:`apisync.http.body`): the records list is
usually a :class:`~apisync.http.body.RawRecords`, and a paginator reads only the fields it needs.
:data:`PAGINATORS` is the one registry of dialect names (the stream spec validates against it), so
this module stays cheap to import (no requests, no Airflow).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from apisync.errors import ApiConfigError, GraphQLError, MalformedResponseError
from apisync.http.body import RawRecords, dig, record_keys

if TYPE_CHECKING:
    import requests


@dataclass
class PageRequest:
    """The request for one page: ``url`` (absolute) overrides the endpoint when a server hands it out."""

    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    url: str | None = None

    def to_state(self) -> dict[str, Any]:
        return {"params": self.params, "json": self.json, "url": self.url}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PageRequest:
        return cls(params=dict(state.get("params") or {}), json=state.get("json"), url=state.get("url"))


class _PageKeys:
    """The dedupe keys of the page before, for the repeat guard: decoded only when a byte search
    cannot rule a key out (usually never: one search per page instead of decoding 5,000 keys)."""

    __slots__ = ("_keys", "name", "records")

    def __init__(
        self, name: str, records: Sequence[Any] | None = None, keys: dict[Any, None] | None = None
    ) -> None:
        self.name, self.records, self._keys = name, records, keys

    def keys(self) -> dict[Any, None]:
        if self._keys is None:
            self._keys = record_keys(self.records or [], self.name)
        return self._keys

    def __contains__(self, key: Any) -> bool:
        if (
            self._keys is None
            and isinstance(key, str)
            and isinstance(self.records, RawRecords)
            and not self.records.may_hold_string(key)
        ):
            return False
        return key in self.keys()


class Paginator:
    """Base strategy: one request, no next page."""

    type: ClassVar[str] = "single"
    default_records_path: ClassVar[str | None] = None

    def __init__(
        self, *, dedupe_field: str | None = "id", page_size: int | None = None, **options: Any
    ) -> None:
        if options:
            raise ApiConfigError(f"pagination {self.type!r}: unknown options {sorted(options)}")
        self.dedupe_field = dedupe_field
        self.page_size = page_size
        self.has_next = False
        self.next: PageRequest | None = None
        self._previous = _PageKeys(dedupe_field or "", keys={})

    # -- the contract -------------------------------------------------------------------------
    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        return PageRequest(params=dict(params or {}), json=copy.deepcopy(json))

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        """Read one response; set ``has_next`` and ``next``."""
        self.has_next, self.next = False, None

    # -- shared behaviour ---------------------------------------------------------------------
    def records_location(self, records_path: str | None) -> str | None:
        """Where :func:`decode_body` keeps the records raw ("" = the body); None = decode it all."""
        return records_path if records_path is not None else (self.default_records_path or "")

    def check(self, data: Any, *, method: str, url: str) -> None:
        """Raise on error payloads that come with a 2xx (GraphQL)."""

    def records(self, data: Any, records_path: str | None, *, method: str, url: str) -> Sequence[Any]:
        path = records_path if records_path is not None else self.default_records_path
        found = dig(data, path)
        if found is None and isinstance(data, list | RawRecords) and not path:
            found = data
        if not isinstance(found, list | RawRecords):
            raise MalformedResponseError(
                f"{method} {url}: expected a list at {path or '<body>'!r}, got {type(found).__name__}",
                method=method,
                url=url,
            )
        return self._drop_repeats(found)

    def _drop_repeats(self, records: Sequence[Any]) -> Sequence[Any]:
        if not self.dedupe_field:
            return records
        start = 0
        while start < len(records):
            record = records[start]  # a RawRecords decodes just this one
            if not (isinstance(record, dict) and record.get(self.dedupe_field) in self._previous):
                break
            start += 1
        kept = records[start:] if start else records
        self._previous = _PageKeys(self.dedupe_field, kept)
        return kept

    def restore_extra(self, state: dict[str, Any]) -> None:
        """Restore dialect-private state (the last keys seen, for the repeat guard)."""
        self._previous = _PageKeys(
            self.dedupe_field or "", keys=dict.fromkeys(state.get("previous_keys") or [])
        )

    def extra_state_later(self) -> Callable[[], dict[str, Any]]:
        """Dialect-private state as of now (what :meth:`restore_extra` reads back), built when
        called: a page's keys are decoded only if someone asks for its resume state."""
        previous = self._previous
        return lambda: {"previous_keys": list(previous.keys())}

    def _with_size(self, params: dict[str, Any], size_param: str) -> dict[str, Any]:
        if self.page_size and size_param not in params:
            params[size_param] = self.page_size
        return params


class CursorBodyPaginator(Paginator):
    """Stripe lists: ``starting_after=<id of the last record>`` while ``has_more`` is true."""

    type = "cursor_body"
    default_records_path = "data"

    def __init__(
        self,
        *,
        cursor_param: str = "starting_after",
        id_field: str = "id",
        has_more_field: str = "has_more",
        limit_param: str = "limit",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.cursor_param, self.id_field = cursor_param, id_field
        self.has_more_field, self.limit_param = has_more_field, limit_param

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        self._with_size(request.params, self.limit_param)
        return request

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        has_more = bool(dig(data, self.has_more_field))
        raw_records = dig(data, self.default_records_path) or records
        if has_more and raw_records:
            last = raw_records[-1]
            params = dict(request.params)
            params[self.cursor_param] = last[self.id_field]
            self.has_next, self.next = True, PageRequest(params=params, json=request.json)
        else:
            self.has_next, self.next = False, None


class LinkHeaderPaginator(Paginator):
    """GitHub REST: follow ``Link: <url>; rel="next"`` until it is absent."""

    type = "link_header"

    def __init__(self, *, size_param: str = "per_page", **options: Any) -> None:
        super().__init__(**options)
        self.size_param = size_param

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        self._with_size(request.params, self.size_param)
        return request

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        next_url = response.links.get("next", {}).get("url")
        self.has_next = bool(next_url)
        self.next = PageRequest(url=next_url, json=request.json) if next_url else None


class HubSpotPaginator(Paginator):
    """HubSpot CRM v3: ``after=<paging.next.after>`` until ``paging.next`` is absent."""

    type = "hubspot"
    default_records_path = "results"

    def __init__(self, *, cursor_param: str = "after", limit_param: str = "limit", **options: Any) -> None:
        super().__init__(**options)
        self.cursor_param, self.limit_param = cursor_param, limit_param

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        self._with_size(request.params, self.limit_param)
        return request

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
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

    def __init__(
        self,
        *,
        offset_param: str = "offset",
        limit_param: str = "limit",
        total_path: str | None = "total",
        page_size: int | None = 100,
        **options: Any,
    ) -> None:
        super().__init__(page_size=page_size, **options)
        self.offset_param, self.limit_param, self.total_path = offset_param, limit_param, total_path

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        request.params.setdefault(self.offset_param, 0)
        self._with_size(request.params, self.limit_param)
        return request

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        raw_records = dig(data, self.default_records_path)
        received = len(raw_records) if isinstance(raw_records, list | RawRecords) else len(records)
        # Advance by what the server returned, but never by more than the limit: a page that starts
        # with a repeated row carries limit + 1 items, and skipping by that would lose a row.
        limit = request.params.get(self.limit_param)
        step = min(received, int(limit)) if limit else received
        offset = int(request.params.get(self.offset_param, 0)) + step
        total = dig(data, self.total_path) if self.total_path else None
        if received == 0:
            more = False
        elif isinstance(total, int):
            more = offset < total
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

    def __init__(
        self,
        *,
        page_param: str = "page",
        size_param: str = "page_size",
        start_page: int = 1,
        total_path: str | None = "count",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.page_param, self.size_param = page_param, size_param
        self.start_page, self.total_path = start_page, total_path

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        request.params.setdefault(self.page_param, self.start_page)
        self._with_size(request.params, self.size_param)
        return request

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        raw_records = dig(data, self.default_records_path)
        received = len(raw_records) if isinstance(raw_records, list | RawRecords) else len(records)
        page = int(request.params[self.page_param])
        size = request.params.get(self.size_param)
        total = dig(data, self.total_path) if self.total_path else None
        if received == 0:
            more = False
        elif isinstance(total, int) and size:
            more = (page - self.start_page + 1) * int(size) < total
        else:
            more = not size or received >= int(size)
        params = dict(request.params)
        params[self.page_param] = page + 1
        self.has_next = more
        self.next = PageRequest(params=params, json=request.json) if more else None


class NextUrlPaginator(Paginator):
    """Follow an absolute next-page URL found in the body (``{"next": "https://..."}``)."""

    type = "next_url"
    default_records_path = "results"

    def __init__(self, *, next_path: str = "next", size_param: str = "page_size", **options: Any) -> None:
        super().__init__(**options)
        self.next_path, self.size_param = next_path, size_param

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        self._with_size(request.params, self.size_param)
        return request

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        next_url = dig(data, self.next_path)
        self.has_next = bool(next_url)
        self.next = PageRequest(url=next_url, json=request.json) if next_url else None


class GraphQLRelayPaginator(Paginator):
    """GraphQL Relay connection: ``after: $after`` from ``pageInfo.endCursor`` while ``hasNextPage``.

    Records are the ``node`` of each edge. A 200 with a top-level ``errors`` array raises
    :class:`~apisync.errors.GraphQLError`.
    """

    type = "graphql_relay"

    def __init__(
        self,
        *,
        connection_path: str | None = None,
        first_var: str = "first",
        after_var: str = "after",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not connection_path:
            raise ApiConfigError("pagination graphql_relay needs connection_path, e.g. 'data.products'")
        self.connection_path, self.first_var, self.after_var = connection_path, first_var, after_var

    def start(self, params: dict[str, Any] | None, json: Any) -> PageRequest:
        request = super().start(params, json)
        if not isinstance(request.json, dict) or "query" not in request.json:
            raise ApiConfigError("pagination graphql_relay needs json={'query': ..., 'variables': {...}}")
        variables = request.json.setdefault("variables", {})
        if self.page_size and self.first_var not in variables:
            variables[self.first_var] = self.page_size
        return request

    def records_location(self, records_path: str | None) -> str | None:
        # Records are the ``node`` of each edge: without an explicit path the body is decoded whole.
        return records_path

    def check(self, data: Any, *, method: str, url: str) -> None:
        errors = data.get("errors") if isinstance(data, dict) else None
        if errors:
            messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            raise GraphQLError(
                f"{method} {url}: GraphQL errors: {messages[:500]}", method=method, url=url, errors=errors
            )

    def records(self, data: Any, records_path: str | None, *, method: str, url: str) -> Sequence[Any]:
        if records_path is not None:
            return super().records(data, records_path, method=method, url=url)
        edges = dig(data, f"{self.connection_path}.edges")
        if not isinstance(edges, list):
            raise MalformedResponseError(
                f"{method} {url}: no list at {self.connection_path}.edges", method=method, url=url
            )
        return self._drop_repeats([e.get("node") if isinstance(e, dict) else e for e in edges])

    def update_state(
        self, response: requests.Response, data: Any, records: Sequence[Any], request: PageRequest
    ) -> None:
        info = dig(data, f"{self.connection_path}.pageInfo") or {}
        cursor = info.get("endCursor")
        if info.get("hasNextPage") and cursor:
            body = copy.deepcopy(request.json)
            body.setdefault("variables", {})[self.after_var] = cursor
            self.has_next, self.next = True, PageRequest(params=dict(request.params), json=body)
        else:
            self.has_next, self.next = False, None


PAGINATORS: dict[str, type[Paginator]] = {
    cls.type: cls
    for cls in (
        CursorBodyPaginator,
        LinkHeaderPaginator,
        HubSpotPaginator,
        OffsetPaginator,
        PageNumberPaginator,
        NextUrlPaginator,
        GraphQLRelayPaginator,
    )
}
"""The one registry of pagination dialects, by ``type``: ``make_paginator`` and the stream spec
(``PaginationSpec.type``) both accept exactly these names. No pagination (``None``) is the base
:class:`Paginator`: one request, no next page."""


def make_paginator(config: dict[str, Any] | str | None) -> Paginator:
    """Paginator from ``{"type": name, **options}`` (or just the name); ``None``: a single request."""
    if config is None:
        return Paginator()
    if isinstance(config, str):
        config = {"type": config}
    options = dict(config)
    kind = options.pop("type", None)
    if kind == Paginator.type:
        return Paginator(**options)
    if kind not in PAGINATORS:
        raise ApiConfigError(f"pagination type must be one of {sorted(PAGINATORS)}, got {kind!r}")
    return PAGINATORS[kind](**options)
