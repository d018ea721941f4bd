"""The recipes of docs/recipes.md as data: each ```yaml block that starts ``# recipe: <name>``.

The tests run the YAML the document shows, so a recipe a reader copies is one a test ran.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

RECIPES = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"
_BLOCK = re.compile(r"```yaml\n# recipe: (?P<name>[a-z0-9-]+)\n(?P<body>.*?)```", re.DOTALL)
TABLE_BEGIN, TABLE_END = "<!-- options-table: begin -->\n", "<!-- options-table: end -->"


@cache
def recipes() -> dict[str, dict[str, Any]]:
    """Recipe name -> its ``source`` section."""
    found: dict[str, dict[str, Any]] = {}
    for match in _BLOCK.finditer(RECIPES.read_text(encoding="utf-8")):
        name = match["name"]
        assert name not in found, f"two recipes named {name!r} in {RECIPES}"
        found[name] = yaml.safe_load(match["body"])["source"]
    return found


def recipe(name: str) -> dict[str, Any]:
    return dict(recipes()[name])


def options_table_in_docs() -> str:
    text = RECIPES.read_text(encoding="utf-8")
    return text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip()


def stream(name: str, source: dict[str, Any], **fields: dict[str, Any]) -> dict[str, Any]:
    """A whole stream spec around a recipe's source (the rest is what any spec needs)."""
    return {
        "name": name,
        "source": source,
        "primary_key": ["id"],
        "cursor_field": "updated_at",
        "fields": {"id": {"type": "integer"}, "updated_at": {"type": "timestamp"}, **fields},
        "quality": {"suite": name},
        "destination": {"table": name},
    }
