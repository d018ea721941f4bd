"""GraphQL endpoint with Relay connections: `products(first:, after:, updatedAfter:, updatedBefore:)`.

A small hand parser reads the root field and its arguments; the field selection is ignored and full
nodes are returned. Every resource name works as a root field; ordering is (updatedAt, id) and the
cursor encodes that position, so paging stays complete.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.data import INDEX_MASK, RESOURCES, TIMESTAMP_FIELDS, Window
from sandbox.dialects import cursor_slice
from sandbox.timestamps import iso_z, parse_instant

ROOT_FIELD = re.compile(r"\b(" + "|".join(RESOURCES) + r")\s*(\(([^)]*)\))?\s*\{")
ARGUMENT = re.compile(r'(\w+)\s*:\s*(\$\w+|"(?:[^"\\]|\\.)*"|-?\d+|null|true|false)')
CURSOR_PREFIX = "cursor:v1:"
QUERY_COST_BASE = 1
MAX_QUERY_COST = 1000
COST_RESTORE_RATE = 50


def encode_cursor(key: int) -> str:
    return base64.b64encode(f"{CURSOR_PREFIX}{key}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    text = base64.b64decode(cursor.encode(), validate=True).decode()
    if not text.startswith(CURSOR_PREFIX):
        raise ValueError("not a sandbox cursor")
    return int(text[len(CURSOR_PREFIX) :])


class GraphQLError(Exception):
    def __init__(self, message: str, code: str = "BAD_USER_INPUT") -> None:
        super().__init__(message)
        self.code = code


def _literal(raw: str, variables: dict[str, Any]) -> Any:
    if raw.startswith("$"):
        return variables.get(raw[1:])
    if raw.startswith('"'):
        return raw[1:-1].encode().decode("unicode_escape")
    if raw in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[raw]
    return int(raw)


def parse_query(query: str, variables: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(root field, arguments) of the first resource field in the query body."""
    body_start = query.find("{")
    if body_start < 0:
        raise GraphQLError("Syntax Error: expected a selection set", "GRAPHQL_PARSE_FAILED")
    match = ROOT_FIELD.search(query, body_start)
    if match is None:
        raise GraphQLError(
            f"Cannot query field on type QueryRoot; supported root fields: {', '.join(RESOURCES)}",
            "GRAPHQL_VALIDATION_FAILED",
        )
    arguments = {name: _literal(raw, variables) for name, raw in ARGUMENT.findall(match.group(3) or "")}
    return match.group(1), arguments


def build_router(state: Any) -> APIRouter:
    router = APIRouter()

    @router.post("/graphql")
    async def graphql(request: Request) -> JSONResponse:
        try:
            payload = await request.json()
            query = payload["query"]
            variables = payload.get("variables") or {}
            if not isinstance(query, str) or not isinstance(variables, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"errors": [{"message": "Body must be JSON {query, variables}"}]}, status_code=400
            )
        try:
            resource, arguments = parse_query(query, variables)
            data, cost = _connection(state, resource, arguments)
        except GraphQLError as exc:
            return JSONResponse({"errors": [{"message": str(exc), "extensions": {"code": exc.code}}]})
        throttle = {
            "maximumAvailable": MAX_QUERY_COST,
            "currentlyAvailable": MAX_QUERY_COST - cost,
            "restoreRate": COST_RESTORE_RATE,
        }
        extensions = {
            "cost": {"requestedQueryCost": cost, "actualQueryCost": cost, "throttleStatus": throttle}
        }
        return JSONResponse({"data": {resource: data}, "extensions": extensions})

    return router


def _connection(state: Any, resource: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], int]:
    first = arguments.get("first")
    if not isinstance(first, int) or isinstance(first, bool):
        raise GraphQLError("Argument 'first' of type 'Int!' is required")
    if not 1 <= first <= state.config.max_page_size:
        raise GraphQLError(f"Argument 'first' must be between 1 and {state.config.max_page_size}")
    try:
        window = Window(
            updated_gte=_instant(arguments.get("updatedAfter")),
            updated_lt=_instant(arguments.get("updatedBefore")),
        )
    except ValueError as exc:
        raise GraphQLError(f"Invalid updatedAfter/updatedBefore: {exc}") from None
    keys = state.dataset.ordered(resource, "updated", window)
    start = 0
    after = arguments.get("after")
    if after is not None:
        try:
            start = int(keys.searchsorted(decode_cursor(str(after)), side="right"))
        except (ValueError, OverflowError):
            raise GraphQLError(f"Invalid cursor {after!r}") from None
    page, after_page = cursor_slice(state, keys, start, first)
    records = state.dataset.get(resource).records(page & INDEX_MASK)
    created_field, updated_field = TIMESTAMP_FIELDS[resource]
    edges = []
    for key, record in zip(page.tolist(), records, strict=True):
        if isinstance(record[created_field], int):
            record = {
                **record,
                created_field: iso_z(record[created_field]),
                updated_field: iso_z(record[updated_field]),
            }
        edges.append({"cursor": encode_cursor(key), "node": record})
    page_info = {
        "hasNextPage": after_page < len(keys),
        "hasPreviousPage": start > 0,
        "endCursor": edges[-1]["cursor"] if edges else None,
        "startCursor": edges[0]["cursor"] if edges else None,
    }
    return {"edges": edges, "pageInfo": page_info}, QUERY_COST_BASE + first


def _instant(value: Any) -> int | None:
    return None if value is None else parse_instant(value)
