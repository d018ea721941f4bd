"""The contract every sync DAG shares (start date, default_args, deadline), so a DAG file states
only what is particular to it.

Retries back off exponentially (APIs recover in seconds to minutes; a fixed short delay just burns
attempts), and the failure alerts fire once the retries are spent.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum

from apisync.alerts import alert_default_args, sync_deadline

__all__ = ["DEFAULT_OWNER", "START_DATE", "sync_deadline", "sync_default_args"]

DEFAULT_OWNER = "data-platform"
DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAY = timedelta(seconds=30)
DEFAULT_MAX_RETRY_DELAY = timedelta(minutes=10)

# Where catchup starts: APISYNC_START_DATE, the first interval a deployment wants synced. The
# default is where the sandbox's example data begin (the first week of 2026).
START_DATE = pendulum.parse(os.environ.get("APISYNC_START_DATE", "2026-01-01T00:00:00Z"))


def sync_default_args(
    *, owner: str = DEFAULT_OWNER, retries: int = DEFAULT_RETRIES, **overrides: Any
) -> dict[str, Any]:
    """default_args for a sync DAG: owner, retries with exponential backoff, failure alerts."""
    return alert_default_args(
        {
            "owner": owner,
            "retries": retries,
            "retry_delay": DEFAULT_RETRY_DELAY,
            "retry_exponential_backoff": True,
            "max_retry_delay": DEFAULT_MAX_RETRY_DELAY,
            **overrides,
        }
    )
