"""Stage manifests: written last into a stage's output directory, they say which parts (and child
tables) it holds, with their logical column types and the counts so far.

``_normalized.json`` (normalize -> validate) and ``_validated.json`` (validate -> load and the
quarantine writer). The raw pages' manifest belongs to :mod:`apisync.staging.raw_pages`.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "NORMALIZED_MANIFEST",
    "VALIDATED_MANIFEST",
    "read_normalized_manifest",
    "read_validated_manifest",
    "write_normalized_manifest",
    "write_validated_manifest",
]

NORMALIZED_MANIFEST = "_normalized.json"
VALIDATED_MANIFEST = "_validated.json"


def _write(directory: Any, name: str, manifest: dict[str, Any]) -> None:
    with (directory / name).open("w") as handle:
        json.dump(manifest, handle)


def _read(directory: Any, name: str) -> dict[str, Any]:
    with (directory / name).open("r") as handle:
        manifest: dict[str, Any] = json.load(handle)
    return manifest


def write_normalized_manifest(out_dir: Any, manifest: dict[str, Any]) -> None:
    _write(out_dir, NORMALIZED_MANIFEST, manifest)


def read_normalized_manifest(out_dir: Any) -> dict[str, Any]:
    return _read(out_dir, NORMALIZED_MANIFEST)


def write_validated_manifest(out_dir: Any, manifest: dict[str, Any]) -> None:
    _write(out_dir, VALIDATED_MANIFEST, manifest)


def read_validated_manifest(out_dir: Any) -> dict[str, Any]:
    return _read(out_dir, VALIDATED_MANIFEST)
