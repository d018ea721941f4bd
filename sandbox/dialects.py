"""REST pagination dialects; every resource is served in every dialect.

Orderings are ascending arrays of packed sort keys from `Dataset.ordered`; a page is a slice of one,
so pages are complete and disjoint. The repeat fault puts the previous page's last record again at
the top of the next page without ever losing one, and pages never exceed the requested size:
- cursor dialects (Stripe, HubSpot, GraphQL) drop the page's last slot; the next cursor follows
  the last record actually served, so the dropped record opens the next page;
- positional dialects (offset, page number, GitHub pages) behave as if one record had been
  inserted before the position: this and all later pages of the traversal shift back by one and
  the total grows by one. A traversal is identified by (dialect, resource, filters, page size) and
  restarts at offset 0 / page 1.

Every list page answers conditional GETs (ETag, Last-Modified, 304: :mod:`sandbox.conditional`).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from sandbox.conditional import conditional_json
from sandbox.data import INDEX_MASK, RESOURCES, TIMESTAMP_FIELDS, ResourceData, Window
from sandbox.errors import BadRequestError, NotFoundError
from sandbox.state import SandboxState
from sandbox.timestamps import iso_z, parse_instant

STRIPE_DEFAULT_LIMIT = 10
GITHUB_DEFAULT_PER_PAGE = 30
HUBSPOT_DEFAULT_LIMIT = 10
OFFSET_DEFAULT_LIMIT = 100
PAGE_DEFAULT_SIZE = 100
RANGE_DEFAULT_SIZE = 100
RANGE_UNIT = "items"
MAX_INT_PARAM = 2**31 - 1
# Positional traversals remembered for the repeat fault's shift.
MAX_TRAVERSALS = 1024


def json_response(body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(content=body, media_type="application/json", headers=headers)


def int_param(params: Any, name: str, default: int, low: int = 0, high: int = MAX_INT_PARAM) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError(f"{name} must be an integer, got {raw!r}", param=name) from None
    if not low <= value <= high:
        raise BadRequestError(f"{name} must be between {low} and {high}, got {value}", param=name)
    return value


def instant_param(params: Any, name: str, offset: int = 0) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_instant(raw) + offset
    except ValueError as exc:
        raise BadRequestError(f"{name}: {exc}", param=name) from None


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def resource_data(state: SandboxState, resource: str) -> ResourceData:
    if resource not in RESOURCES:
        raise NotFoundError(f"unknown resource {resource!r}; known: {', '.join(RESOURCES)}")
    return state.dataset.get(resource)


def cursor_slice(state: SandboxState, ordered: np.ndarray, start: int, limit: int) -> tuple[np.ndarray, int]:
    """(page, position after its last record) from `ordered` at `start`, repeat fault applied."""
    page = ordered[start : start + limit]
    if start > 0 and limit > 1 and len(page) and state.faults.chance(state.config.fault_repeat):
        state.stats.fault("repeat")
        page = np.concatenate([ordered[start - 1 : start], page[: limit - 1]])
        return page, start + len(page) - 1
    return page, start + len(page)


def positional_slice(
    state: SandboxState, traversal: tuple[Any, ...], ordered: np.ndarray, start: int, size: int
) -> tuple[np.ndarray, int]:
    """(page, total) at position `start`; the repeat fault shifts this and later pages back by one."""
    shifts = state.repeat_shifts
    if start == 0:
        shifts.pop(traversal, None)
    shift = shifts.get(traversal, 0)
    if start > 0 and size > 1 and state.faults.chance(state.config.fault_repeat):
        state.stats.fault("repeat")
        shift += 1
        if len(shifts) >= MAX_TRAVERSALS:
            shifts.clear()
        shifts[traversal] = shift
    low = max(0, start - shift)
    return ordered[low : max(low, start - shift + size)], len(ordered) + shift


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/{resource}")
    async def stripe_list(resource: str, request: Request) -> Response:
        """Stripe: newest first by (created, id); starting_after/ending_before object ids."""
        data = resource_data(state, resource)
        params = request.query_params
        limit = int_param(params, "limit", STRIPE_DEFAULT_LIMIT, 1, state.config.max_page_size)
        window = Window(
            updated_gte=_first(
                instant_param(params, "updated[gte]"), instant_param(params, "updated[gt]", 1)
            ),
            updated_lt=_first(instant_param(params, "updated[lt]"), instant_param(params, "updated[lte]", 1)),
            created_gte=_first(
                instant_param(params, "created[gte]"), instant_param(params, "created[gt]", 1)
            ),
            created_lt=_first(instant_param(params, "created[lt]"), instant_param(params, "created[lte]", 1)),
        )
        keys = state.dataset.ordered(resource, "created", window)
        if params.get("ending_before"):
            key = data.sort_key(_index_param(data, params, "ending_before"), "created")
            start = int(np.searchsorted(keys, key, side="right"))
            page = keys[start : start + limit][::-1]
            has_more = start + limit < len(keys)
        else:
            start = 0
            if params.get("starting_after"):
                key = data.sort_key(_index_param(data, params, "starting_after"), "created")
                start = len(keys) - int(np.searchsorted(keys, key, side="left"))
            page, after_page = cursor_slice(state, keys[::-1], start, limit)
            has_more = after_page < len(keys)
        body = b"".join(
            (
                b'{"object":"list","data":',
                data.records_json(page & INDEX_MASK),
                b',"has_more":',
                b"true" if has_more else b"false",
                f',"url":"/v1/{resource}"}}'.encode(),
            )
        )
        return conditional_json(request, body, state.dataset.modified_at)

    @router.get("/repos/{owner}/{repo}/{resource}")
    async def github_list(owner: str, repo: str, resource: str, request: Request) -> Response:
        """GitHub: page/per_page with a Link header; since/until on updated time."""
        data = resource_data(state, resource)
        params = request.query_params
        per_page = min(int_param(params, "per_page", GITHUB_DEFAULT_PER_PAGE, 1), state.config.max_page_size)
        page_no = int_param(params, "page", 1, 1)
        sort = params.get("sort", "created")
        direction = params.get("direction", "desc")
        if sort not in ("created", "updated"):
            raise BadRequestError("sort must be created or updated", param="sort")
        if direction not in ("asc", "desc"):
            raise BadRequestError("direction must be asc or desc", param="direction")
        window = Window(updated_gte=instant_param(params, "since"), updated_lt=instant_param(params, "until"))
        keys = state.dataset.ordered(resource, sort, window)
        if direction == "desc":
            keys = keys[::-1]
        traversal = ("github", resource, window, sort, direction, per_page)
        page, total = positional_slice(state, traversal, keys, (page_no - 1) * per_page, per_page)
        last = max(1, math.ceil(total / per_page))
        links = []
        if page_no < last:
            links.append(f'<{request.url.include_query_params(page=page_no + 1)}>; rel="next"')
            links.append(f'<{request.url.include_query_params(page=last)}>; rel="last"')
        if page_no > 1:
            links.append(f'<{request.url.include_query_params(page=min(page_no - 1, last))}>; rel="prev"')
            links.append(f'<{request.url.include_query_params(page=1)}>; rel="first"')
        headers = {"Link": ", ".join(links)} if links else None
        body = data.records_json(page & INDEX_MASK)
        return conditional_json(request, body, state.dataset.modified_at, headers)

    @router.get("/crm/v3/objects/{resource}")
    async def hubspot_list(resource: str, request: Request) -> Response:
        """HubSpot CRM v3: id order, paging.next.after token, properties flattened."""
        data = resource_data(state, resource)
        params = request.query_params
        limit = int_param(params, "limit", HUBSPOT_DEFAULT_LIMIT, 1, state.config.max_page_size)
        window = Window(
            updated_gte=instant_param(params, "updatedAfter"),
            updated_lt=instant_param(params, "updatedBefore"),
        )
        keys = state.dataset.ordered(resource, "id", window)
        after = params.get("after")
        start = 0
        if after:
            try:
                start = int(np.searchsorted(keys, min(int(after), MAX_INT_PARAM), side="left"))
            except ValueError:
                raise BadRequestError(
                    f"after must be a paging token from paging.next.after, got {after!r}"
                ) from None
        page, after_page = cursor_slice(state, keys, start, limit)
        wanted = [p for p in params.get("properties", "").split(",") if p]
        body: dict[str, Any] = {"results": [hubspot_object(resource, r, wanted) for r in data.records(page)]}
        if after_page < len(keys):
            token = str(int(keys[after_page - 1]) + 1)
            body["paging"] = {
                "next": {"after": token, "link": str(request.url.include_query_params(after=token))}
            }
        return conditional_json(request, msgspec.json.encode(body), state.dataset.modified_at)

    @router.get("/api/{resource}")
    async def offset_list(resource: str, request: Request) -> Response:
        """Offset/limit with total, ordered by (updated, id)."""
        data = resource_data(state, resource)
        params = request.query_params
        limit = int_param(params, "limit", OFFSET_DEFAULT_LIMIT, 1, state.config.max_page_size)
        offset = int_param(params, "offset", 0, 0)
        window = _iso_window(params)
        keys = state.dataset.ordered(resource, "updated", window)
        page, total = positional_slice(state, ("offset", resource, window, limit), keys, offset, limit)
        body = b"".join(
            (
                b'{"items":',
                data.records_json(page & INDEX_MASK),
                f',"total":{total},"offset":{offset},"limit":{limit}}}'.encode(),
            )
        )
        return conditional_json(request, body, state.dataset.modified_at)

    @router.get("/api/v2/{resource}")
    async def page_list(resource: str, request: Request) -> Response:
        """Page number with the next page's absolute URL in the body (Django REST framework style)."""
        data = resource_data(state, resource)
        params = request.query_params
        size = int_param(params, "page_size", PAGE_DEFAULT_SIZE, 1, state.config.max_page_size)
        page_no = int_param(params, "page", 1, 1)
        window = _iso_window(params)
        keys = state.dataset.ordered(resource, "updated", window)
        start = (page_no - 1) * size
        page, total = positional_slice(state, ("page", resource, window, size), keys, start, size)
        if page_no > 1 and start >= total:
            raise NotFoundError("Invalid page.")
        next_url = str(request.url.include_query_params(page=page_no + 1)) if start + size < total else None
        previous_url = str(request.url.include_query_params(page=page_no - 1)) if page_no > 1 else None
        body = b"".join(
            (
                f'{{"count":{total},"next":'.encode(),
                msgspec.json.encode(next_url),
                b',"previous":',
                msgspec.json.encode(previous_url),
                b',"results":',
                data.records_json(page & INDEX_MASK),
                b"}",
            )
        )
        return conditional_json(request, body, state.dataset.modified_at)

    @router.get("/cursor/{resource}")
    async def header_cursor_list(resource: str, request: Request) -> Response:
        """The body is the list; the next page's cursor in an ``X-Next-Cursor`` header (id order)."""
        data = resource_data(state, resource)
        params = request.query_params
        limit = int_param(params, "limit", OFFSET_DEFAULT_LIMIT, 1, state.config.max_page_size)
        keys = state.dataset.ordered(resource, "id", _iso_window(params))
        cursor = params.get("cursor")
        start = 0
        if cursor:
            if not cursor.isdigit():
                raise BadRequestError(f"cursor must come from X-Next-Cursor, got {cursor!r}", param="cursor")
            start = int(np.searchsorted(keys, min(int(cursor), MAX_INT_PARAM), side="left"))
        page, after_page = cursor_slice(state, keys, start, limit)
        headers = {"X-Next-Cursor": str(int(keys[after_page - 1]) + 1)} if after_page < len(keys) else None
        body = data.records_json(page & INDEX_MASK)
        return conditional_json(request, body, state.dataset.modified_at, headers)

    @router.get("/range/{resource}")
    async def range_list(resource: str, request: Request) -> Response:
        """RFC 9110 ranges in a custom unit: ``Range: items=0-99`` -> 206 with ``Content-Range:
        items 0-99/1234`` (the body is the list), by (updated, id); 416 past the end."""
        data = resource_data(state, resource)
        window = _iso_window(request.query_params)
        keys = state.dataset.ordered(resource, "updated", window)
        first, size = _items_range(request.headers.get("range"), state.config.max_page_size)
        page, total = positional_slice(state, ("range", resource, window, size), keys, first, size)
        if first and first >= total:
            return Response(status_code=416, headers={"Content-Range": f"{RANGE_UNIT} */{total}"})
        if not len(page):
            return json_response(b"[]", {"Content-Range": f"{RANGE_UNIT} */{total}"})
        last = first + len(page) - 1
        headers = {"Content-Range": f"{RANGE_UNIT} {first}-{last}/{total}", "Accept-Ranges": RANGE_UNIT}
        body = data.records_json(page & INDEX_MASK)
        response = conditional_json(request, body, state.dataset.modified_at, headers)
        if response.status_code == 200 and (first or last < total - 1):
            response.status_code = 206
        return response

    return router


def _items_range(value: str | None, max_size: int) -> tuple[int, int]:
    """(first, size) of ``items=<first>-<last>``; no header: the first page."""
    if value is None:
        return 0, min(RANGE_DEFAULT_SIZE, max_size)
    unit, _, span = value.partition("=")
    first, _, last = span.partition("-")
    if unit.strip() != RANGE_UNIT or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        raise BadRequestError(f"Range must be {RANGE_UNIT}=<first>-<last>, got {value!r}", param="Range")
    return int(first), min(int(last) - int(first) + 1, max_size)


def _iso_window(params: Any) -> Window:
    return Window(
        updated_gte=instant_param(params, "updated_gte"), updated_lt=instant_param(params, "updated_lt")
    )


def _index_param(data: ResourceData, params: Any, name: str) -> int:
    try:
        return data.index_of(params[name])
    except ValueError as exc:
        raise BadRequestError(f"No such object: {params[name]!r}", param=name) from exc


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become `parent_child` keys; arrays and scalars are kept as they are."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def hubspot_object(resource: str, record: dict[str, Any], wanted: list[str] | None = None) -> dict[str, Any]:
    created_field, updated_field = TIMESTAMP_FIELDS[resource]
    created, updated = record[created_field], record[updated_field]
    if isinstance(created, int):
        created, updated = iso_z(created), iso_z(updated)
    properties = flatten(record)
    properties.update(hs_object_id=str(record["id"]), createdate=created, lastmodifieddate=updated)
    if wanted:
        properties = {k: properties.get(k) for k in wanted}
    return {
        "id": str(record["id"]),
        "properties": properties,
        "createdAt": created,
        "updatedAt": updated,
        "archived": False,
    }
