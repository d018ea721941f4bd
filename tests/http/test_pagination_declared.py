"""Issue 15: a REST source declared only as data (a stream spec) reads a real API as it is.

Each test goes the way a run goes: a stream YAML in an include dir of its own, the
:class:`~apisync.pipeline.extract.ExtractStreamOperator` built from it (what it hands the hook is what
a run pages with), then :meth:`ApiHook.paginate` over real HTTP against a scripted server that
answers the way json-server and friends do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from apisync.errors import PaginationError, SpecError
from apisync.http import ApiHook
from apisync.pipeline.extract import ExtractStreamOperator
from apisync.spec import load_spec, render_window
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server
from tests.load.datapath_fixtures import WINDOW

ROWS = [{"id": n, "updated_at": f"2026-01-02T00:00:{n:02d}.000Z"} for n in range(1, 24)]  # 23 rows


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def json_server(call: Call, server: ScriptedServer) -> Reply:
    """json-server 0.17: the body is the list; ``_page``/``_limit`` or ``_start``/``_limit``;
    ``X-Total-Count``; a Link header only when ``_page`` is given; unknown params ignored."""
    query = call.query
    limit = int(query.get("_limit", 10))
    start = (int(query["_page"]) - 1) * limit if "_page" in query else int(query.get("_start", 0))
    headers = {"X-Total-Count": str(len(ROWS))}
    if "_page" in query:
        page = int(query["_page"])
        last = -(-len(ROWS) // limit)
        links = [f'<{server.url}/orders?_page={page + 1}&_limit={limit}>; rel="next"'] if page < last else []
        links.append(f'<{server.url}/orders?_page={last}&_limit={limit}>; rel="last"')
        headers["Link"] = ", ".join(links)
    return Reply(_json(ROWS[start : start + limit]), headers=headers)


def ignores_the_page_param(call: Call, server: ScriptedServer) -> Reply:
    """A server that does not know the page parameter it is sent: always the first page."""
    return Reply(_json(ROWS[:10]))


STREAM: dict[str, Any] = {
    "name": "shop",
    "source": {"endpoint": "/orders"},
    "primary_key": ["id"],
    "cursor_field": "updated_at",
    "fields": {"id": {"type": "integer"}, "updated_at": {"type": "timestamp"}},
    "quality": {"suite": "shop"},
    "destination": {"table": "shop"},
}
JSON_SERVER_PAGES = {"type": "page_number", "page_param": "_page", "size_param": "_limit", "page_size": 10}
JSON_SERVER_OFFSETS = {"type": "offset", "offset_param": "_start", "limit_param": "_limit"}
WINDOW_PARAMS = {"updated_at_gte": "{window_start}", "updated_at_lte": "{window_end}"}


@pytest.fixture
def declared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[dict[str, Any]], ExtractStreamOperator]:
    """Write the stream ``shop`` with this source into an include dir of its own; its extract task."""
    include = tmp_path / "include"
    (include / "streams").mkdir(parents=True)
    monkeypatch.setenv("APISYNC_INCLUDE_DIR", str(include))

    def declare(source: dict[str, Any]) -> ExtractStreamOperator:
        spec = {**STREAM, "source": {**STREAM["source"], "params": dict(WINDOW_PARAMS), **source}}
        (include / "streams" / "shop.yaml").write_text(yaml.safe_dump(spec))
        return ExtractStreamOperator(task_id="extract", stream="shop", conn_id="unused")

    return declare


@pytest.fixture
def serve(api_conn: Callable[..., str]) -> Iterator[Callable[..., tuple[ApiHook, ScriptedServer]]]:
    servers: list[Any] = []

    def start(script: Any) -> tuple[ApiHook, ScriptedServer]:
        context = scripted_server(script)
        server = context.__enter__()
        servers.append(context)
        return ApiHook(api_conn(server)), server

    yield start
    for context in servers:
        context.__exit__(None, None, None)


def _read(extract: ExtractStreamOperator, hook: ApiHook) -> list[Any]:
    """Page as the extract task does: its endpoint, pagination, records path and rendered params."""
    spec = load_spec(extract.stream)
    params = render_window(
        dict(spec.source.params), *WINDOW, spec.source.window_format, spec.source.window_bounds
    )
    pages = hook.paginate(
        extract.endpoint,
        params=params,
        pagination=extract.pagination,
        records_path=extract.records_path,
        method=extract.method,
    )
    return [record for page in pages for record in page.records]


@pytest.mark.parametrize("records_path", ["$", ""])
def test_found1_records_at_the_root_of_the_body_can_be_declared(
    records_path: str, declared: Callable[..., ExtractStreamOperator], serve: Callable[..., Any]
) -> None:
    """Failed on main: ``records_path: ""`` became None and the dialect default ('results') applied."""
    extract = declared(
        {
            "records_path": records_path,
            "pagination": {
                "type": "page_number",
                "page_param": "_page",
                "size_param": "_limit",
                "page_size": 10,
            },
        }
    )
    hook, _ = serve(json_server)
    assert [r["id"] for r in _read(extract, hook)] == [r["id"] for r in ROWS]


def test_found2_page_number_with_the_servers_own_names(
    declared: Callable[..., ExtractStreamOperator], serve: Callable[..., Any]
) -> None:
    """Failed on main (through the spec, as found 1). ``_page``/``_limit``, the total from X-Total-Count."""
    extract = declared(
        {
            "records_path": "$",
            "pagination": {
                "type": "page_number",
                "page_param": "_page",
                "size_param": "_limit",
                "page_size": 5,
                "total_header": "X-Total-Count",
            },
        }
    )
    hook, server = serve(json_server)
    assert [r["id"] for r in _read(extract, hook)] == [r["id"] for r in ROWS]
    assert [call.query["_page"] for call in server.calls] == ["1", "2", "3", "4", "5"]
    assert {call.query["_limit"] for call in server.calls} == {"5"}
    assert server.calls[0].query["updated_at_gte"] == "2026-01-01T00:00:00Z"


def test_found2_offset_with_start_and_limit(
    declared: Callable[..., ExtractStreamOperator], serve: Callable[..., Any]
) -> None:
    """Failed on main like found 1: offset ``_start``/``_limit`` with the list as the body."""
    extract = declared(
        {
            "records_path": "$",
            "pagination": {
                "type": "offset",
                "offset_param": "_start",
                "limit_param": "_limit",
                "page_size": 5,
            },
        }
    )
    hook, server = serve(json_server)
    assert [r["id"] for r in _read(extract, hook)] == [r["id"] for r in ROWS]
    assert [call.query["_start"] for call in server.calls] == ["0", "5", "10", "15", "20"]


def test_found2_link_header_asks_for_the_first_page_by_its_declared_name(
    declared: Callable[..., ExtractStreamOperator], serve: Callable[..., Any]
) -> None:
    """json-server sends a Link header only when asked for a page: ``page_param`` sends it."""
    extract = declared(
        {
            "records_path": "$",
            "pagination": {
                "type": "link_header",
                "page_param": "_page",
                "size_param": "_limit",
                "page_size": 10,
            },
        }
    )
    hook, server = serve(json_server)
    assert [r["id"] for r in _read(extract, hook)] == [r["id"] for r in ROWS]
    assert server.calls[0].query["_page"] == "1"


@pytest.mark.parametrize(
    ("pagination", "parameter"),
    [(JSON_SERVER_PAGES, "_page"), ({**JSON_SERVER_OFFSETS, "page_size": 10}, "_start")],
)
def test_found5_a_page_made_only_of_repeats_is_an_error_naming_the_paging_parameter(
    pagination: dict[str, Any],
    parameter: str,
    declared: Callable[..., ExtractStreamOperator],
    serve: Callable[..., Any],
) -> None:
    """Failed on main: the repeated page was dropped whole and the read ended 'complete', rows lost."""
    extract = declared({"records_path": "$", "pagination": pagination})
    hook, _ = serve(ignores_the_page_param)
    with pytest.raises(PaginationError) as caught:
        _read(extract, hook)
    message = str(caught.value)
    assert "page 2" in message and "every one of its 10 records" in message
    assert f"ignores the paging parameter {parameter!r}" in message


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        ({"records_path": "$..rows"}, ["field 'source.records_path'", "'$..rows'"]),
        ({"records_path": "rows[0]"}, ["field 'source.records_path'"]),
        (
            {"params": {"updated_at_gte": "{window_start:epoch_msec}", "updated_at_lte": "{window_end}"}},
            ["field 'source.params.updated_at_gte'", "did you mean 'epoch_ms'?"],
        ),
        ({"window_format": "iso_milli"}, ["field 'source.window_format'", "did you mean 'iso_ms'?"]),
        (
            {"pagination": {"type": "page_number", "total_header": 5}},
            ["field 'source.pagination.total_header'", "total_header must be text"],
        ),
    ],
)
def test_a_misdeclared_source_option_fails_when_the_spec_loads_naming_it(
    source: dict[str, Any], fragments: list[str], declared: Callable[..., ExtractStreamOperator]
) -> None:
    """Failed on main: the records paths and the window format were accepted and failed (or
    silently matched nothing) on page 1 of a run."""
    source = {"pagination": {"type": "page_number", "page_size": 10}, **source}
    with pytest.raises(SpecError) as caught:
        declared(source)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_found5_at_the_hook_the_same_page_again_is_never_a_silent_end(serve: Callable[..., Any]) -> None:
    """Failed on main without any spec in the way: the hook read 10 rows and called it complete."""
    hook, server = serve(ignores_the_page_param)
    pages = hook.paginate("/orders", pagination={"type": "page_number", "page_size": 10}, records_path="")
    with pytest.raises(PaginationError, match="ignores the paging parameter 'page'"):
        list(pages)
    assert len(server.calls) == 2
