"""RateLimitWaitTrigger: sleep on the triggerer (not on a worker slot) until a rate limit lifts.

The module is importable as ``apisync.http.trigger`` on the triggerer because ``plugins/`` is on
``sys.path``; :meth:`RateLimitWaitTrigger.serialize` returns that classpath.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

MAX_SLEEP_STEP_S = 60.0  # re-read the clock at least this often (suspend/resume, clock steps)


class RateLimitWaitTrigger(BaseTrigger):
    """Fire once ``resume_at`` (epoch seconds) has passed; the event echoes ``payload`` back.

    :param resume_at: epoch seconds when requests may be sent again.
    :param payload: small JSON the operator wants back (it also gets its deferral kwargs).
    """

    def __init__(self, resume_at: float, payload: dict[str, Any] | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__ is unannotated
        self.resume_at = float(resume_at)
        self.payload = dict(payload or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "apisync.http.trigger.RateLimitWaitTrigger",
            {"resume_at": self.resume_at, "payload": self.payload},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while (remaining := self.resume_at - time.time()) > 0:
            self.log.info("rate limited: %.0f s until resume", remaining)
            await asyncio.sleep(min(remaining, MAX_SLEEP_STEP_S))
        yield TriggerEvent({"status": "resume", "resume_at": self.resume_at, **self.payload})
