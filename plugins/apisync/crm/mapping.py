"""A CRM mapping is data (``include/crm/<name>.yaml``): which warehouse table goes to which endpoint.

A mapping names its source (table, record key, change column), its destination (batch-upsert
endpoint, the CRM property and warehouse column the upsert matches on, batch size, what a NULL
sends) and the properties (CRM property -> warehouse column). A bad file fails when it is loaded,
with the file and the field in the message, before a push reads a row. Cheap to import (pydantic
only): the pipeline builder checks the mapping when the DAG file is parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apisync.errors import CrmMappingError
from apisync.spec import include_dir, read_yaml_document, validation_messages

__all__ = [
    "MAX_BATCH_INPUTS",
    "CrmDestination",
    "CrmMapping",
    "CrmSource",
    "load_mapping",
]

MAX_BATCH_INPUTS = 100  # HubSpot's batch limit; the sandbox answers 400 above it


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CrmSource(_Strict):
    table: str = Field(min_length=1)
    key: str = Field(min_length=1)
    changed_column: str = Field(min_length=1)
    db_schema: str | None = Field(default=None, alias="schema")


class CrmDestination(_Strict):
    endpoint: str = Field(min_length=1)
    id_property: str = Field(min_length=1)
    id_column: str = Field(min_length=1)
    batch_size: int = Field(default=MAX_BATCH_INPUTS, ge=1, le=MAX_BATCH_INPUTS)
    nulls: Literal["omit", "clear"] = "omit"


class CrmMapping(_Strict):
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    description: str = ""
    source: CrmSource
    destination: CrmDestination
    properties: dict[str, str] = Field(min_length=1)  # CRM property -> warehouse column


def load_mapping(name_or_path: str | Path, *, crm_dir: Path | None = None) -> CrmMapping:
    """Parse and validate ``include/crm/<name>.yaml`` (or a path); errors name the file and field."""
    path, raw = read_yaml_document(
        name_or_path, crm_dir or include_dir() / "crm", CrmMappingError, "CRM mapping"
    )
    try:
        mapping = CrmMapping.model_validate(raw)
    except ValidationError as exc:
        raise CrmMappingError("invalid CRM mapping:\n  " + validation_messages(path, exc)) from exc
    if mapping.name != path.stem:
        raise CrmMappingError(f"{path}: field 'name': {mapping.name!r} must match the file name")
    return mapping
