"""The Airflow pools the DAGs use, declared once in ``include/pools.json``.

The file is in the format ``airflow pools import`` reads, so `make run`, `make cluster` and the
docker-compose init service create exactly these pools, and :func:`check_pool` fails a DAG at parse
time when it names a pool that is not declared (Airflow itself would only log, every scheduler
loop, that tasks in an unknown pool "will not be scheduled").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from apisync.errors import SpecError
from apisync.spec import include_dir

__all__ = ["Pool", "check_pool", "declared_pools", "pools_file"]


@dataclass(frozen=True)
class Pool:
    name: str
    slots: int
    description: str
    include_deferred: bool = False


def pools_file() -> Path:
    return include_dir() / "pools.json"


def declared_pools(path: Path | None = None) -> dict[str, Pool]:
    """{name: Pool} from the pools file; a malformed entry is an error naming it."""
    path = path or pools_file()
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected an object of pools, got {type(raw).__name__}")
    pools: dict[str, Pool] = {}
    for name, body in raw.items():
        slots = body.get("slots") if isinstance(body, dict) else None
        if not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
            raise SpecError(f"{path}: pool {name!r} needs a whole number of slots >= 1, got {slots!r}")
        if not isinstance(body.get("description"), str):
            raise SpecError(f"{path}: pool {name!r} needs a description (airflow pools import requires one)")
        include_deferred = body.get("include_deferred", False)
        if not isinstance(include_deferred, bool):  # bool("false") would be True
            raise SpecError(
                f"{path}: pool {name!r}: include_deferred must be true or false, got {include_deferred!r}"
            )
        pools[name] = Pool(name, slots, body["description"], include_deferred)
    return pools


def check_pool(name: str) -> Pool:
    """The declared pool ``name``, or a SpecError saying where pools are declared."""
    pools = declared_pools()
    if name not in pools:
        raise SpecError(
            f"pool {name!r} is not declared in {pools_file()} (declared: {sorted(pools) or 'none'}); "
            "add it there so every deployment creates it"
        )
    return pools[name]
