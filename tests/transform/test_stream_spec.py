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
        (
            {"source.pagination.type": "carrier_pigeon"},
            None,
            "source.pagination.type",
            "pagination type must be one of",
        ),
        (
            {"primary_key": ["order_number"]},
            None,
            "primary_key",
            "primary_key 'order_number' is not a column",
        ),
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
            "source.pagination.full_page_without_next",
            "full_page_without_next must be one of ['error', 'warn'], got 'shrug'",
        ),
        (
            {"source.pagination.max_pages": 0},
            None,
            "source.pagination.max_pages",
            "max_pages must be a whole number >= 1, got 0",
        ),
        (
            {"source.pagination.page_sise": 10},
            None,
            "source.pagination.page_sise",
            "has no option 'page_sise'",
        ),
        ({"destination.shema": "x"}, None, "destination.shema", "did you mean 'schema'?"),
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
    assert spec.source.pagination.model_dump(exclude_unset=True) == options


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


@pytest.mark.parametrize(
    ("pagination", "key", "fragments"),
    [
        (
            {"type": "cursor_body", "page_sise": 100},
            "page_sise",
            [
                "pagination 'cursor_body' has no option 'page_sise'",
                "did you mean 'page_size'?",
                "cursor_param",
            ],
        ),
        (
            {"type": "link_header", "page_size": 100, "limit_param": "limit"},
            "limit_param",
            ["pagination 'link_header' has no option 'limit_param'", "did you mean 'size_param'?"],
        ),
        (
            {"type": "cursor_body", "page_size": "abc"},
            "page_size",
            ["must be a whole number >= 1, got 'abc'"],
        ),
        (
            {"type": "page_number", "page_size": 10, "start_page": "one"},
            "start_page",
            ["must be a whole number, got 'one'"],
        ),
        (
            {"type": "cursor_body", "page_size": 10, "cursor_param": 5},
            "cursor_param",
            ["must be text, got 5"],
        ),
    ],
)
def test_case5_a_pagination_options_are_checked_per_dialect_naming_the_key(
    tmp_path: Path, pagination: dict, key: str, fragments: list[str]
) -> None:
    """Issue 13 case 5a: each dialect's options are a model; a typo or a value of the wrong shape
    fails at load time with the file, the key path and what the option expects."""
    path = _write(tmp_path, {"source.pagination": pagination})
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert f"{path}: field 'source.pagination.{key}'" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        ({"cursor_field": "Updated"}, "cursor_field 'Updated' is not a column; did you mean 'updated'?"),
        (
            {"fields.updatedAt": {"type": "timestamp", "format": "epoch_s"}, "cursor_field": "updatedAt"},
            "cursor_field 'updatedAt' is not a column; the field updatedAt becomes column 'updated_at'",
        ),
        (
            {"primary_key": ["customer.email"]},
            "primary_key 'customer.email' is not a column; the field customer.email becomes column "
            "'customer_email'",
        ),
    ],
)
def test_case5_d_a_key_given_as_a_source_field_names_its_column(
    tmp_path: Path, mutate: dict, fragment: str
) -> None:
    """Issue 13 case 5d: keys are column names (normalized); the error says which column a field becomes."""
    path = _write(tmp_path, mutate)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert fragment in str(caught.value)
