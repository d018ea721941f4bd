"""Instant parsing/formatting shared by the dialects: epoch ints or ISO-8601, always UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import formatdate

# Instants are clamped to ±2**38 s (years -6700..10700) so packed sort keys stay inside int64.
EPOCH_LIMIT = 2**38


def parse_instant(value: str | int | float) -> int:
    """Epoch seconds from an epoch number or an ISO-8601 string (naive means UTC), clamped."""
    return max(-EPOCH_LIMIT, min(EPOCH_LIMIT, _parse_instant(value)))


def _parse_instant(value: str | int | float) -> int:
    if isinstance(value, int | float):
        return int(value)
    text = value.strip()
    if not text:
        raise ValueError("empty timestamp")
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "+") if "T" in text else text)
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 timestamp or epoch seconds: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def iso_z(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)
