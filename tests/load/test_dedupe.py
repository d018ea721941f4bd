"""Cross-part deduplication: the latest version of every key, decided from the key columns alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from apisync.load import dedupe
from apisync.load.dedupe import latest_per_key
from apisync.staging.columns import ROW

T0 = datetime(2026, 1, 1, tzinfo=UTC)
COLUMNS = {"id": "string", "region": "string", "updated": "timestamp", "status": "string"}


def _parts(tmp_path: Path, *parts: list[tuple[Any, ...]]) -> list[Path]:
    """Write parts of (id, region, updated offset in s or None, status) rows, numbered across parts."""
    paths, number = [], 0
    for index, rows in enumerate(parts):
        table = pa.table(
            {
                "id": pa.array([r[0] for r in rows], pa.large_string()),
                "region": pa.array([r[1] for r in rows], pa.large_string()),
                "updated": pa.array(
                    [None if r[2] is None else T0 + timedelta(seconds=r[2]) for r in rows],
                    pa.timestamp("us", tz="UTC"),
                ),
                "status": pa.array([r[3] for r in rows], pa.large_string()),
                ROW: pa.array(range(number, number + len(rows)), pa.int64()),
            }
        )
        number += len(rows)
        paths.append(tmp_path / f"part-{index:05d}.parquet")
        pq.write_table(table, paths[-1])
    return paths


def _kept(tmp_path: Path, parts: list[Path], key: list[str]) -> list[str]:
    winners = latest_per_key(parts, COLUMNS, key, "updated")
    statuses = [s for p in parts for s in pq.read_table(p, columns=["status"]).column(0).to_pylist()]
    if winners.losers is None:
        assert winners.kept == winners.staged == len(statuses)
        return sorted(statuses)
    assert winners.kept == winners.staged - int(winners.losers.sum())
    return sorted(
        s for row, s in enumerate(statuses) if row >= len(winners.losers) or not winners.losers[row]
    )


def test_no_repeated_key_keeps_every_row_without_a_mask(tmp_path: Path) -> None:
    parts = _parts(tmp_path, [("a", "x", 1, "a1"), ("b", "x", 2, "b1")], [("c", "x", 3, "c1")])
    winners = latest_per_key(parts, COLUMNS, ["id"], "updated")
    assert (winners.staged, winners.kept, winners.losers) == (3, 3, None)


def test_latest_cursor_wins_then_the_later_row_and_null_cursors_lose(tmp_path: Path) -> None:
    parts = _parts(
        tmp_path,
        [
            ("a", "x", 10, "a-old"),
            ("b", "x", 50, "b-new"),
            ("c", "x", 5, "c-first"),
            ("d", "x", None, "d-null"),
        ],
        [
            ("a", "x", 20, "a-new"),
            ("b", "x", 40, "b-old"),
            ("c", "x", 5, "c-later"),
            ("d", "x", 1, "d-dated"),
        ],
        [("e", "x", None, "e-null-1"), ("e", "x", None, "e-null-2")],
    )
    assert _kept(tmp_path, parts, ["id"]) == sorted(["a-new", "b-new", "c-later", "d-dated", "e-null-2"])
    winners = latest_per_key(parts, COLUMNS, ["id"], "updated")
    assert (winners.staged, winners.kept) == (10, 5)


def test_multi_column_keys_compare_every_column(tmp_path: Path) -> None:
    parts = _parts(
        tmp_path,
        [("a", "eu", 1, "a-eu"), ("a", "us", 1, "a-us-old"), ("b", None, 1, "b-none-old")],
        [("a", "us", 2, "a-us-new"), ("b", None, 3, "b-none-new"), ("b", "eu", 0, "b-eu")],
    )
    assert _kept(tmp_path, parts, ["id", "region"]) == sorted(["a-eu", "a-us-new", "b-none-new", "b-eu"])


def test_a_part_without_the_cursor_column_still_deduplicates(tmp_path: Path) -> None:
    first = _parts(tmp_path, [("a", "x", 5, "a-dated")])[0]
    second = tmp_path / "part-00001.parquet"
    pq.write_table(
        pa.table({"id": ["a"], "region": ["x"], "status": ["a-undated"], ROW: pa.array([1], pa.int64())}),
        second,
    )
    assert _kept(tmp_path, [first, second], ["id"]) == ["a-dated"]


def test_hash_collisions_are_settled_on_the_keys_themselves(tmp_path: Path, monkeypatch: Any) -> None:
    """Every row hashing alike (as if all keys collided) still keeps one row per distinct key."""
    parts = _parts(
        tmp_path, [("a", "x", 1, "a1"), ("b", "x", 2, "b1")], [("c", "x", 3, "c1"), ("a", "x", 4, "a2")]
    )

    def all_alike(parts: list[Path], columns: dict[str, str], key: list[str]) -> list[np.ndarray]:
        return [np.zeros(pq.read_metadata(path).num_rows, np.uint64) for path in parts]

    monkeypatch.setattr(dedupe, "_key_hashes", all_alike)
    assert _kept(tmp_path, parts, ["id"]) == ["a2", "b1", "c1"]
    (tmp_path / "distinct").mkdir()
    only_collisions = _parts(tmp_path / "distinct", [("a", "x", 1, "a1")], [("b", "x", 2, "b1")])
    winners = latest_per_key(only_collisions, COLUMNS, ["id"], "updated")
    assert (winners.staged, winners.kept, winners.losers) == (2, 2, None)


def test_integer_and_timestamp_keys(tmp_path: Path) -> None:
    path = tmp_path / "part-00000.parquet"
    stamps = [T0, T0, T0 + timedelta(days=1), T0]
    pq.write_table(
        pa.table(
            {
                "n": pa.array([1, 1, 1, 2]),
                "at": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                "status": ["first", "second", "other-day", "two"],
                ROW: pa.array([0, 1, 2, 3], pa.int64()),
            }
        ),
        path,
    )
    columns = {"n": "integer", "at": "timestamp", "status": "string"}
    winners = latest_per_key([path], columns, ["n", "at"], "missing_cursor")
    assert (winners.staged, winners.kept) == (4, 3)
    assert winners.losers is not None and winners.losers.tolist() == [True]  # row 0 loses to row 1
