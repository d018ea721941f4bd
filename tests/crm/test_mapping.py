"""Mapping files are data: the shipped one loads, a broken one fails naming the file and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from apisync.crm.mapping import MAX_BATCH_INPUTS, load_mapping
from apisync.errors import CrmMappingError
from apisync.spec import include_dir


def contacts_raw() -> dict[str, Any]:
    return yaml.safe_load((include_dir() / "crm" / "contacts.yaml").read_text())


def write(tmp_path: Path, raw: dict[str, Any], name: str = "contacts") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_contacts_mapping_loads() -> None:
    mapping = load_mapping("contacts")

    assert (mapping.source.table, mapping.source.key, mapping.source.changed_column) == (
        "customers",
        "id",
        "updated_at",
    )
    assert mapping.destination.endpoint == "/crm/v3/objects/contacts/batch/upsert"
    assert mapping.destination.batch_size == MAX_BATCH_INPUTS
    assert mapping.properties["email"] == "email"


def test_a_mapping_is_found_by_name_in_a_given_directory(tmp_path: Path) -> None:
    write(tmp_path, contacts_raw())

    assert load_mapping("contacts", crm_dir=tmp_path).name == "contacts"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda raw: raw["destination"].update(batch_size=MAX_BATCH_INPUTS + 1), "destination.batch_size"),
        (lambda raw: raw["source"].update(colour="blue"), "source.colour"),
        (lambda raw: raw.update(properties={}), "properties"),
        (lambda raw: raw.update(name="deals"), "must match the file name"),
    ],
)
def test_a_bad_mapping_names_the_file_and_field(tmp_path: Path, change: Any, match: str) -> None:
    raw = contacts_raw()
    change(raw)
    path = write(tmp_path, raw)

    with pytest.raises(CrmMappingError, match=match) as caught:
        load_mapping(path)
    assert str(path) in str(caught.value)


def test_a_missing_mapping_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(CrmMappingError, match="not found"):
        load_mapping("deals", crm_dir=tmp_path)
