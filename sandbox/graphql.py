"""GraphQL endpoint with Relay connections: `products(first:, after:, updatedAfter:, updatedBefore:)`.

Served on ``POST /graphql`` and on the root path ``POST /`` (where json-graphql-server serves it).

A small parser covers the query subset sync clients send: one operation, fields with aliases and
arguments (literals or $variables), nested selection sets. Fragments, directives and mutations are
refused with an error. Selections are validated against the record shape (an unknown field is an
error, as on a real server) and results hold only the selected fields. Every resource name works as
a root field; ordering is (updatedAt, id) and the cursor encodes that position, so paging stays
complete. Errors come back as HTTP 200 {"errors": [...]} like GitHub's and Shopify's APIs.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.data import INDEX_MASK, RESOURCES, TIMESTAMP_FIELDS, Window
from sandbox.dialects import cursor_slice
from sandbox.timestamps import iso_z, parse_instant

CURSOR_PREFIX = "cursor:v1:"
QUERY_COST_BASE = 1
MAX_QUERY_COST = 1000
COST_RESTORE_RATE = 50
TYPE_NAMES = {"orders": "Order", "customers": "Customer", "issues": "Issue", "products": "Product"}
TOKEN = re.compile(
    r"(?P<skip>[\s,]+|#[^\n]*)"
    r"|(?P<punct>\.\.\.|[{}()\[\]:!$=@])"
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r'|(?P<string>"(?:[^"\\\n]|\\.)*")'
)
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


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


@dataclass(frozen=True)
class Field:
    name: str
    alias: str
    arguments: dict[str, Any]
    selections: tuple[Field, ...] | None


class _Parser:
    """Recursive descent over the tokens of one query document."""

    def __init__(self, query: str, variables: dict[str, Any]) -> None:
        self.tokens = _tokenize(query)
        self.pos = 0
        self.variables = variables

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("eof", "<EOF>")

    def _take(self, kind: str, value: str | None = None) -> str:
        found_kind, found = self._peek()
        if found_kind != kind or (value is not None and found != value):
            raise GraphQLError(f"Syntax Error: Expected {value or kind}, found {found}", PARSE_FAILED)
        self.pos += 1
        return found

    def document(self) -> tuple[Field, ...]:
        kind, value = self._peek()
        if kind == "name":
            if value != "query":
                raise GraphQLError(f"Only query operations are supported, got {value!r}", VALIDATION_FAILED)
            self.pos += 1
            if self._peek()[0] == "name":
                self.pos += 1
            if self._peek() == ("punct", "("):
                self._skip_variable_definitions()
        selections = self.selection_set()
        if self.pos != len(self.tokens):
            raise GraphQLError(f"Syntax Error: Unexpected {self._peek()[1]}", PARSE_FAILED)
        return selections

    def _skip_variable_definitions(self) -> None:
        depth = 0
        while True:
            kind, value = self._peek()
            if kind == "eof":
                raise GraphQLError("Syntax Error: Expected ), found <EOF>", PARSE_FAILED)
            self.pos += 1
            depth += {"(": 1, ")": -1}.get(value, 0) if kind == "punct" else 0
            if depth == 0:
                return

    def selection_set(self) -> tuple[Field, ...]:
        self._take("punct", "{")
        fields = []
        while self._peek() != ("punct", "}"):
            if self._peek()[1] in ("...", "@"):
                raise GraphQLError(
                    "Fragments and directives are not supported by the sandbox", VALIDATION_FAILED
                )
            fields.append(self.field())
        self._take("punct", "}")
        if not fields:
            raise GraphQLError("Syntax Error: Expected Name, found }", PARSE_FAILED)
        return tuple(fields)

    def field(self) -> Field:
        alias = name = self._take("name")
        if self._peek() == ("punct", ":"):
            self.pos += 1
            name = self._take("name")
        arguments: dict[str, Any] = {}
        if self._peek() == ("punct", "("):
            self.pos += 1
            while self._peek() != ("punct", ")"):
                argument = self._take("name")
                self._take("punct", ":")
                arguments[argument] = self.value()
            self._take("punct", ")")
        selections = self.selection_set() if self._peek() == ("punct", "{") else None
        return Field(name, alias, arguments, selections)

    def value(self) -> Any:
        kind, value = self._peek()
        self.pos += 1
        if kind == "punct" and value == "$":
            return self.variables.get(self._take("name"))
        if kind == "string":
            return json.loads(value)
        if kind == "number":
            return float(value) if any(c in value for c in ".eE") else int(value)
        if kind == "name":
            return {"null": None, "true": True, "false": False}.get(value, value)
        raise GraphQLError(f"Syntax Error: Unexpected {value} in an argument value", PARSE_FAILED)


def _tokenize(query: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    while pos < len(query):
        match = TOKEN.match(query, pos)
        if match is None:
            raise GraphQLError(f"Syntax Error: Unexpected character {query[pos]!r}", PARSE_FAILED)
        pos = match.end()
        if match.lastgroup != "skip":
            tokens.append((match.lastgroup or "", match.group()))
    return tokens


def parse_query(query: str, variables: dict[str, Any]) -> tuple[Field, ...]:
    """The root selection set of the query."""
    return _Parser(query, variables).document()


def project(value: Any, field: Field, type_name: str) -> Any:
    """`value` cut down to `field`'s selection; unknown fields are validation errors."""
    if isinstance(value, list):
        return [project(item, field, type_name) for item in value]
    if isinstance(value, dict):
        if field.selections is None:
            raise GraphQLError(
                f"Field '{field.name}' of type '{type_name}' must have a selection of subfields",
                VALIDATION_FAILED,
            )
        out = {}
        for sub in field.selections:
            if sub.name == "__typename":
                out[sub.alias] = type_name
            elif sub.name in value:
                out[sub.alias] = project(value[sub.name], sub, _child_type(type_name, sub.name))
            else:
                raise GraphQLError(
                    f"Field '{sub.name}' doesn't exist on type '{type_name}'", VALIDATION_FAILED
                )
        return out
    if field.selections is not None:
        raise GraphQLError(
            f"Field '{field.name}' must not have a selection since it is a scalar", VALIDATION_FAILED
        )
    return value


def _child_type(parent: str, field: str) -> str:
    """Relay type names: ProductConnection.edges -> ProductEdge, .node(s) -> Product, else nested."""
    if parent.endswith("Connection"):
        base = parent.removesuffix("Connection")
        return {"edges": f"{base}Edge", "nodes": base, "pageInfo": "PageInfo"}.get(field, "Int")
    if parent.endswith("Edge") and field == "node":
        return parent.removesuffix("Edge")
    return parent + field[:1].upper() + field[1:]


def build_router(state: Any) -> APIRouter:
    router = APIRouter()

    # Also on the root path, where json-graphql-server and many others serve GraphQL.
    @router.post("/graphql")
    @router.post("/")
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
            data: dict[str, Any] = {}
            cost = 0
            for field in parse_query(query, variables):
                if field.name == "__typename":
                    data[field.alias] = "QueryRoot"
                    continue
                if field.name not in RESOURCES:
                    roots = ", ".join(RESOURCES)
                    message = f"Field '{field.name}' doesn't exist on type 'QueryRoot' (root fields: {roots})"
                    raise GraphQLError(message, VALIDATION_FAILED)
                data[field.alias], field_cost = _connection(state, field)
                cost += field_cost
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
        return JSONResponse({"data": data, "extensions": extensions})

    return router


def _nodes(state: Any, resource: str, indexes: Any) -> list[dict[str, Any]]:
    """Records in GraphQL shape: timestamps always ISO-8601."""
    records = state.dataset.get(resource).records(indexes)
    created_field, updated_field = TIMESTAMP_FIELDS[resource]
    if records and isinstance(records[0][created_field], int):
        for record in records:
            record[created_field] = iso_z(record[created_field])
            record[updated_field] = iso_z(record[updated_field])
    return records


def _connection(state: Any, field: Field) -> tuple[dict[str, Any], int]:
    resource, arguments = field.name, field.arguments
    type_name = TYPE_NAMES[resource]
    if field.selections is None:
        raise GraphQLError(f"Field '{resource}' must have a selection of subfields", VALIDATION_FAILED)
    first = arguments.get("first")
    if not isinstance(first, int) or isinstance(first, bool):
        raise GraphQLError("Argument 'first' of type 'Int!' is required")
    if not 1 <= first <= state.config.max_page_size:
        raise GraphQLError(f"Argument 'first' must be between 1 and {state.config.max_page_size}")
    unknown = sorted(set(arguments) - {"first", "after", "updatedAfter", "updatedBefore"})
    if unknown:
        raise GraphQLError(
            f"Unknown argument(s) {unknown} on field 'QueryRoot.{resource}'", VALIDATION_FAILED
        )
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
    # Validate the selection against the record shape even when the page comes back empty.
    sample = _nodes(state, resource, [0])[0]
    connection_sample = {
        "edges": {"cursor": "", "node": sample},
        "nodes": sample,
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "endCursor": None, "startCursor": None},
        "totalCount": 0,
    }
    project(connection_sample, field, f"{type_name}Connection")
    page, after_page = cursor_slice(state, keys, start, first)
    records = _nodes(state, resource, page & INDEX_MASK)
    cursors = [encode_cursor(key) for key in page.tolist()]
    connection = {
        "edges": [{"cursor": c, "node": r} for c, r in zip(cursors, records, strict=True)],
        "nodes": records,
        "pageInfo": {
            "hasNextPage": after_page < len(keys),
            "hasPreviousPage": start > 0,
            "endCursor": cursors[-1] if cursors else None,
            "startCursor": cursors[0] if cursors else None,
        },
        "totalCount": len(keys),
    }
    return project(connection, field, f"{type_name}Connection"), QUERY_COST_BASE + first


def _instant(value: Any) -> int | None:
    return None if value is None else parse_instant(value)
