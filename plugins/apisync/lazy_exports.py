"""Package attributes that load their module on first use (PEP 562), so importing a package is cheap.

A DAG file imports ``apisync.pipeline`` at parse time, every few seconds, in every parsing
process; pandas, pyarrow, GX and SQLAlchemy must load only inside the tasks that use them. Each
package ``__init__`` names its public attributes and their modules in one ``_EXPORTS`` map (the
import-direction test reads those strings too) and sets ``__getattr__ = lazy_exports(...)``.
``lazy_loader`` (scientific-python) does the same, but takes submodule-relative names only and is
one more pinned dependency for these ten lines.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: attribute name -> the module that defines it."""

    def attribute(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            setattr(sys.modules[package], name, value)  # later lookups skip this function
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return attribute
