from __future__ import annotations

from tests.http.conftest import api_conn
from tests.load.datapath_fixtures import warehouse

__all__ = ["api_conn", "warehouse"]
