"""Stream specs are data; a bad one fails at load time naming the file and the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from apisync.spec import SpecError, include_dir, load_spec, render_window

SHIPPED = sorted(path.stem for path in (include_dir() / "streams").glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_specs_are_valid(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name
    assert (include_dir() / "expectations" / f"{spec.quality.suite}.json").is_file()


def _write(tmp_path: Path, mutate: dict | None = None, drop: str | None = None) -> Path:
    raw = yaml.safe_load((include_dir() / "streams" / "orders.yaml").read_text())
    if drop:
        raw.pop(drop)
    for dotted, value in (mutate or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    path = tmp_path / "orders.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("mutate", "drop", "field", "fragment"),
    [
        ({"source.pagination.type": "carrier_pigeon"}, None, "source.pagination.type", "Input should be"),
        ({"primary_key": ["order_number"]}, None, "<root>", "primary_key column 'order_number'"),
        ({"fields.amount.type": "money"}, None, "fields.amount.type", "Input should be"),
        ({"destination.write_mode": "upsert"}, None, "destination.write_mode", "Input should be"),
        (
            {"quality.quarantine_threshold": 1.5},
            None,
            "quality.quarantine_threshold",
            "less than or equal to 1",
        ),
        ({"destination.table": 'orders"; DROP'}, None, "destination.table", "should match pattern"),
        (
            {"arrays.items.mode": "child_table", "arrays.items.table": None},
            None,
            "arrays.items",
            "needs a 'table'",
        ),
        ({"colour": "blue"}, None, "colour", "Extra inputs are not permitted"),
        (
            {"source.pagination.full_page_without_next": "shrug"},
            None,
            "source.pagination",
            "full_page_without_next must be one of ['error', 'warn']",
        ),
        ({"source.pagination.max_pages": 0}, None, "source.pagination", "max_pages must be a whole number"),
        ({"source.pagination.page_sise": 10}, None, "source.pagination", "unknown options ['page_sise']"),
        (None, "destination", "destination", "Field required"),
    ],
)
def test_malformed_spec_error_names_file_and_field(
    tmp_path: Path, mutate: dict | None, drop: str | None, field: str, fragment: str
) -> None:
    path = _write(tmp_path, mutate, drop)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert f"{path}: field '{field}'" in message
    assert fragment in message


def test_pagination_options_of_issue_9_are_accepted(tmp_path: Path) -> None:
    options = {"type": "cursor_body", "page_size": 100, "max_pages": 500, "full_page_without_next": "warn"}
    spec = load_spec(_write(tmp_path, {"source.pagination": options}))
    assert spec.source.pagination.model_dump() == options


def test_missing_window_filter_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, {"source.params": {"limit": 100}})
    with pytest.raises(SpecError, match=r"orders.yaml: field 'source.params'.*\{window_end\}"):
        load_spec(path)


def test_not_yaml_and_wrong_name(tmp_path: Path) -> None:
    bad = tmp_path / "orders.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SpecError, match=r"orders.yaml: not valid YAML"):
        load_spec(bad)
    renamed = tmp_path / "sales.yaml"
    renamed.write_text((include_dir() / "streams" / "orders.yaml").read_text())
    with pytest.raises(SpecError, match=r"sales.yaml: field 'name'"):
        load_spec(renamed)
    with pytest.raises(SpecError, match="stream spec not found"):
        load_spec("no_such_stream")


def test_window_renders_epoch_and_iso() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, 6, tzinfo=UTC)
    orders = load_spec("orders").source
    assert render_window(orders.params, start, end, orders.window_format) == {
        "updated[gte]": 1767225600,
        "updated[lt]": 1767333600,
    }
    products = load_spec("products").source
    body = render_window(products.json_body, start, end, products.window_format)
    assert body["variables"] == {
        "updatedAfter": "2026-01-01T00:00:00Z",
        "updatedBefore": "2026-01-02T06:00:00Z",
    }


@pytest.mark.parametrize("dialect", ["link_header", "hubspot", "next_url", "cursor_body"])
def test_case3_a_dialect_ending_on_a_marker_without_a_page_size_fails_at_parse_time(
    tmp_path: Path, dialect: str
) -> None:
    """Without a page size a full page that lacks its next-page marker cannot be told from the
    last page: the read could stop after page 1 silently, so the spec must say the size."""
    path = _write(tmp_path, {"source.pagination": {"type": dialect}})
    with pytest.raises(SpecError, match=r"field 'source'.*pagination.page_size") as caught:
        load_spec(path)
    assert "full_page_without_next: warn" in str(caught.value)


@pytest.mark.parametrize(
    "mutate",
    [
        {"source.pagination": {"type": "link_header", "page_size": 50}},
        {"source.pagination": {"type": "link_header"}, "source.params.per_page": 50},
        {"source.pagination": {"type": "link_header", "full_page_without_next": "warn"}},
        {"source.pagination": {"type": "offset"}},
    ],
)
def test_case3_a_known_page_size_or_a_declared_warning_or_a_total_is_enough(
    tmp_path: Path, mutate: dict
) -> None:
    load_spec(_write(tmp_path, mutate))
