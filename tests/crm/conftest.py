from __future__ import annotations

from tests.load.datapath_fixtures import warehouse

__all__ = ["warehouse"]
