"""docs/recipes.md: every recipe loads, runs against a server that pages that way, and the options
table is the option models' own.

Styles the sandbox serves run against it (fault_repeat on: pages that repeat the previous page's
last row); JSON:API and OData next links (relative URLs, a key holding dots, a filter with the
window inside a text) against a scripted loopback server; the json-server and Datasette recipes in
tests/thirdparty against those servers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from apisync.http import ApiHook
from apisync.http.pagination import options_table
from apisync.spec import load_spec, render_window
from sandbox.testing import SandboxHandle, run_sandbox
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server
from tests.load.datapath_fixtures import WINDOW
from tests.recipes import options_table_in_docs, recipes, stream

# recipe -> the sandbox resource it reads
SANDBOX = {
    "sandbox-page-number": "orders",
    "sandbox-offset": "orders",
    "github-link-header": "issues",
    "stripe-cursor": "orders",
    "body-cursor-field": "customers",
    "header-cursor": "orders",
    "range-header": "issues",
}
SCRIPTED = {"jsonapi-links-next", "odata-next-link"}
THIRD_PARTY = {  # run in tests/thirdparty
    "json-server-page-number",
    "json-server-offset",
    "json-server-link-header",
    "datasette-next-url",
}


def test_the_options_table_in_the_docs_is_the_option_models() -> None:
    assert options_table_in_docs() == options_table(), (
        "docs/recipes.md's options table differs from the code; paste this between its markers:\n"
        + options_table()
    )


def test_every_recipe_is_run_by_a_test() -> None:
    assert set(recipes()) == set(SANDBOX) | SCRIPTED | THIRD_PARTY


@pytest.mark.parametrize("name", sorted(recipes()))
def test_every_recipe_loads_as_a_stream_spec(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = tmp_path / "streams"
    streams.mkdir()
    table = name.replace("-", "_")
    (streams / f"{table}.yaml").write_text(yaml.safe_dump(stream(table, recipes()[name])))
    spec = load_spec(table, streams_dir=streams)
    assert spec.source.window_params()


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SandboxHandle]:
    with run_sandbox(records=700, max_page_size=100, fault_repeat=0.3) as sb:
        yield sb


# Inside the sandbox's data (a week from 2026-01-01): part of it, with records on both sides.
PART = (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 5, 12, tzinfo=UTC))


def _read(
    hook: ApiHook, source: dict[str, Any], tmp_path: Path, window: tuple[datetime, datetime] = WINDOW
) -> list[Any]:
    """Load the recipe as a spec, then page as the extract task does."""
    streams = tmp_path / "streams"
    streams.mkdir(exist_ok=True)
    (streams / "recipe.yaml").write_text(yaml.safe_dump(stream("recipe", source)))
    spec = load_spec("recipe", streams_dir=streams).source
    pages = hook.paginate(
        spec.endpoint,
        params=render_window(dict(spec.params), *window, spec.window_format, spec.window_bounds),
        pagination=spec.pagination.model_dump(),
        records_path=spec.records_path,
    )
    return [record for page in pages for record in page.records]


@pytest.mark.parametrize("name", sorted(SANDBOX))
def test_a_sandbox_recipe_reads_exactly_the_window(
    name: str, shared_sandbox: SandboxHandle, api_conn: Any, tmp_path: Path
) -> None:
    records = _read(ApiHook(api_conn(shared_sandbox)), recipes()[name], tmp_path, PART)
    ids = [str(r["id"]) for r in records]
    gte, lt = (moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in PART)
    truth = {str(r["id"]) for r in shared_sandbox.truth(SANDBOX[name], updated_gte=gte, updated_lt=lt)}
    assert 100 < len(truth) < 600
    assert len(ids) == len(set(ids)), "a record was read twice"
    assert set(ids) == truth


ARTICLES = [{"id": n, "updated_at": f"2026-01-02T00:00:{n:02d}Z"} for n in range(1, 121)]


def _articles(call: Call, server: ScriptedServer, *, size_param: str, offset_param: str) -> list[Any]:
    size = int(call.query[size_param])
    start = int(call.query.get(offset_param, 0))
    return ARTICLES[start : start + size]


def jsonapi(call: Call, server: ScriptedServer) -> Reply:
    """JSON:API: ``{"data": [...], "links": {"next": "/articles?page[offset]=50&..."}}`` (relative)."""
    page = _articles(call, server, size_param="page[size]", offset_param="page[offset]")
    start = int(call.query.get("page[offset]", 0))
    following = start + len(page)
    links: dict[str, Any] = {"self": call.path}
    if following < len(ARTICLES):
        links["next"] = f"/articles?page%5Bsize%5D={len(page)}&page%5Boffset%5D={following}"
    return Reply(json.dumps({"data": page, "links": links}).encode())


def odata(call: Call, server: ScriptedServer) -> Reply:
    """OData v4: ``{"value": [...], "@odata.nextLink": "Orders?$top=100&$skip=100"}`` (relative to
    the collection), ``$filter`` echoed for the test."""
    page = _articles(call, server, size_param="$top", offset_param="$skip")
    following = int(call.query.get("$skip", 0)) + len(page)
    body: dict[str, Any] = {"@odata.context": "$metadata#Orders", "value": page}
    if following < len(ARTICLES):
        body["@odata.nextLink"] = f"Orders?$top={len(page)}&$skip={following}"
    return Reply(json.dumps(body).encode())


@pytest.mark.parametrize(("name", "script"), [("jsonapi-links-next", jsonapi), ("odata-next-link", odata)])
def test_next_links_at_any_body_path_relative_ones_resolved(
    name: str, script: Any, api_conn: Any, tmp_path: Path
) -> None:
    with scripted_server(script) as server:
        records = _read(ApiHook(api_conn(server)), recipes()[name], tmp_path)
    assert [r["id"] for r in records] == [a["id"] for a in ARTICLES]
    assert len(server.calls) == {"jsonapi-links-next": 3, "odata-next-link": 2}[name]  # 50 a page, 100
    if name == "odata-next-link":
        assert {call.path for call in server.calls} == {"/odata/Orders"}
        assert server.calls[0].query["$filter"] == (
            "ModifiedAt ge 2026-01-01T00:00:00Z and ModifiedAt lt 2026-01-08T00:00:00Z"
        )
    else:
        assert {call.path for call in server.calls} == {"/articles"}
        assert server.calls[0].query["filter[updated][gte]"] == "2026-01-01T00:00:00Z"
