"""Staging layout of one stream window: raw pages, normalized parts, validated parts (no heavy
imports: used at DAG parse time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["RunPaths", "window_key"]


@dataclass(frozen=True)
class RunPaths:
    """``<root>/raw`` (API pages), ``normalized`` (typed parts), ``validated`` (good parts + quarantine)."""

    root: Any

    @property
    def raw(self) -> Any:
        return self.root / "raw"

    @property
    def normalized(self) -> Any:
        return self.root / "normalized"

    @property
    def validated(self) -> Any:
        return self.root / "validated"


def window_key(start: datetime, end: datetime) -> str:
    return f"{start.astimezone(UTC):%Y%m%dT%H%M%SZ}_{end.astimezone(UTC):%Y%m%dT%H%M%SZ}"
