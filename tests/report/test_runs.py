"""Per-run numbers from sync_runs rows as the pipeline writes them (insert_run), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from apisync.http.latency import bucket_middle, latency_bucket, latency_percentile
from apisync.load.audit import RunRecord, record_run
from apisync.report.runs import read_runs, recorded_streams, stream_summaries

HOUR = timedelta(hours=1)
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
NEW_COLUMNS = {
    "latency_p50_ms": "FLOAT",
    "latency_p95_ms": "FLOAT",
    "bytes_received": "BIGINT",
    "status_counts": "TEXT",
    "api_errors": "BIGINT",
    "backoff_seconds": "FLOAT",
}


def _row(warehouse, run_id: str, start: datetime, end: datetime, *, at: datetime, **values) -> None:
    record_run(
        warehouse.engine,
        RunRecord(
            stream=values.pop("stream", "orders"),
            interval_start=start,
            interval_end=end,
            run_id=run_id,
            status=values.pop("status", "success"),
            recorded_at=at,
            **values,
        ),
        warehouse.db_schema,
    )


def test_a_run_is_its_slices_newest_rows_added_up_and_failed_when_one_slice_failed(warehouse) -> None:
    # run A: two slices of the 10:00 window; slice 2 failed, then a re-run of the same run id
    # succeeded for it (newer row). run B: one failed slice of 11:00.
    half = T0 + HOUR / 2
    _row(
        warehouse,
        "A",
        T0,
        half,
        at=T0 + 2 * HOUR,
        records_pulled=10,
        records_inserted=6,
        records_updated=2,
        records_quarantined=1,
        api_calls=3,
        api_429s=1,
        throttled_seconds=1.5,
        duration_seconds=4.0,
    )
    _row(
        warehouse,
        "A",
        half,
        T0 + HOUR,
        at=T0 + 2 * HOUR,
        status="failed",
        records_pulled=7,
        api_calls=9,
        error="extract: ApiServerError: HTTP 503\nTraceback ...",
    )
    _row(
        warehouse,
        "A",
        half,
        T0 + HOUR,
        at=T0 + 3 * HOUR,
        records_pulled=8,
        records_inserted=8,
        api_calls=2,
        duration_seconds=9.0,
    )
    _row(
        warehouse,
        "B",
        T0 + HOUR,
        T0 + 1.5 * HOUR,
        at=T0 + 4 * HOUR,
        status="failed",
        records_pulled=0,
        api_calls=5,
        error="extract: ConnectionError: refused",
    )
    _row(warehouse, "X", T0, T0 + HOUR, at=T0, stream="customers", records_pulled=1)

    runs = read_runs(warehouse.engine, "orders", db_schema=warehouse.db_schema)
    assert [r.run_id for r in runs] == ["A", "B"]  # oldest first
    a, b = runs
    assert a.status == "success" and a.slices == 2
    assert (a.interval_start, a.interval_end) == (T0, T0 + HOUR)
    assert a.records_pulled == 18 and a.records_loaded == 16 and a.records_quarantined == 1
    assert a.api_calls == 5 and a.api_429s == 1 and a.throttled_seconds == 1.5
    assert a.duration_seconds == 9.0  # the slowest slice, not the sum
    assert a.recorded_at == T0 + 3 * HOUR and a.error is None
    assert b.status == "failed" and b.error == "extract: ConnectionError: refused"
    assert b.records_loaded is None  # nothing merged is not "0 loaded"
    # Columns this warehouse does not have yet read as None, not as an error.
    assert a.latency_p95_ms is None and a.error_rate is None and a.status_counts is None

    assert read_runs(warehouse.engine, "orders", db_schema=warehouse.db_schema, limit=1)[0].run_id == "B"
    assert sorted(recorded_streams(warehouse.engine, db_schema=warehouse.db_schema)) == [
        "customers",
        "orders",
    ]
    summaries = stream_summaries(warehouse.engine, db_schema=warehouse.db_schema, streams=["issues"])
    assert [(s.stream, len(s.runs), s.failed_runs) for s in summaries] == [
        ("customers", 1, 0),
        ("issues", 0, 0),
        ("orders", 2, 1),
    ]
    assert summaries[2].last is not None and summaries[2].last.run_id == "B"


def test_the_metrics_columns_are_read_when_the_warehouse_has_them_and_null_in_older_rows(warehouse) -> None:
    # An older release's table and row; the columns added as its next write adds them, except the
    # latency histogram (absent: the run's latency is the slowest slice's, below).
    warehouse.create_older_sync_runs()
    from sqlalchemy import text

    prefix = f'"{warehouse.db_schema}".' if warehouse.db_schema else ""
    with warehouse.engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO {prefix}sync_runs (stream, interval_start, interval_end, run_id, status,"
                " api_calls, recorded_at) VALUES ('orders', :s, :e, 'old', 'success', 4, :at)"
            ),
            {"s": T0, "e": T0 + HOUR, "at": T0},
        )
    warehouse.add_columns("sync_runs", NEW_COLUMNS)
    with warehouse.engine.begin() as conn:
        for slice_no, (p50, p95, counts, errors) in enumerate(
            [(20.0, 80.0, {"200": 40, "429": 2}, 1), (30.0, 60.0, {"200": 10, "error": 3}, 3)]
        ):
            start = T0 + HOUR + slice_no * HOUR / 2
            conn.execute(
                text(
                    f"INSERT INTO {prefix}sync_runs (stream, interval_start, interval_end, run_id, status,"
                    " api_calls, latency_p50_ms, latency_p95_ms, bytes_received, status_counts, api_errors,"
                    " backoff_seconds, recorded_at) VALUES ('orders', :s, :e, 'new', 'success', :calls,"
                    " :p50, :p95, 1000, :counts, :errors, 2.5, :at)"
                ),
                {
                    "s": start,
                    "e": start + HOUR / 2,
                    "calls": sum(counts.values()),
                    "p50": p50,
                    "p95": p95,
                    "counts": json.dumps(counts),
                    "errors": errors,
                    "at": T0 + 2 * HOUR,
                },
            )
    old, new = read_runs(warehouse.engine, "orders", db_schema=warehouse.db_schema)
    assert old.run_id == "old" and old.latency_p50_ms is None and old.api_errors is None
    assert old.error_rate is None
    assert new.latency_p50_ms == 30.0 and new.latency_p95_ms == 80.0  # the slowest slice's
    assert new.status_counts == {"200": 50, "429": 2, "error": 3}
    assert new.api_calls == 55 and new.api_errors == 4 and new.error_rate == pytest.approx(4 / 55)
    assert new.bytes_received == 2000 and new.backoff_seconds == 5.0
    assert new.as_dict()["error_rate"] == pytest.approx(4 / 55)
    assert new.as_dict()["interval_start"] == (T0 + HOUR).isoformat()


def test_no_sync_runs_table_is_no_history(warehouse) -> None:
    assert read_runs(warehouse.engine, "orders", db_schema=warehouse.db_schema) == []
    assert stream_summaries(warehouse.engine, db_schema=warehouse.db_schema) == []
    with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
        read_runs(warehouse.engine, "orders", db_schema=warehouse.db_schema, limit=0)


def test_a_sliced_runs_latency_is_the_percentile_of_its_slices_merged_histograms(warehouse) -> None:
    """Slice 1: 19 requests of ~10 ms; slice 2: 1 request of ~100 ms. All 20 requests: p50 ~10 ms
    and p95 (rank 19 of 20) ~10 ms — not the slowest slice's 100 ms, which ignores how few they were."""
    fast, slow = latency_bucket(10.0), latency_bucket(100.0)
    slices = [({fast: 19}, 19), ({slow: 1}, 1)]
    for slice_no, (histogram, calls) in enumerate(slices):
        start = T0 + slice_no * HOUR / 2
        _row(
            warehouse,
            "merged",
            start,
            start + HOUR / 2,
            at=T0 + HOUR,
            api_calls=calls,
            latency_p50_ms=latency_percentile(histogram, 0.5),
            latency_p95_ms=latency_percentile(histogram, 0.95),
            latency_histogram=json.dumps(histogram),
        )
    (run,) = read_runs(warehouse.engine, "orders", db_schema=warehouse.db_schema)
    assert run.slices == 2 and run.api_calls == 20
    assert run.latency_p50_ms == bucket_middle(fast) and run.latency_p95_ms == bucket_middle(fast)
    assert run.latency_p95_ms == pytest.approx(10.0, rel=0.045)

    # One more request of ~100 ms in a third slice: 2 of 21 now, so the p95 (rank 20) is ~100 ms.
    _row(
        warehouse,
        "merged",
        T0 + HOUR,
        T0 + 1.5 * HOUR,
        at=T0 + HOUR,
        api_calls=1,
        latency_p50_ms=bucket_middle(slow),
        latency_p95_ms=bucket_middle(slow),
        latency_histogram=json.dumps({slow: 1}),
    )
    (run,) = read_runs(warehouse.engine, "orders", db_schema=warehouse.db_schema)
    assert run.latency_p50_ms == bucket_middle(fast) and run.latency_p95_ms == bucket_middle(slow)


def test_a_slice_without_a_histogram_makes_the_run_fall_back_to_the_slowest_slice(warehouse) -> None:
    """A row written before ``latency_histogram`` existed (NULL there): merging the others would
    leave its requests out, so the run's p50/p95 are the highest of the slices' own."""
    fast = latency_bucket(10.0)
    _row(
        warehouse,
        "mixed",
        T0,
        T0 + HOUR / 2,
        at=T0 + HOUR,
        latency_p50_ms=bucket_middle(fast),
        latency_p95_ms=bucket_middle(fast),
        latency_histogram=json.dumps({fast: 19}),
    )
    _row(warehouse, "mixed", T0 + HOUR / 2, T0 + HOUR, at=T0 + HOUR, latency_p50_ms=90.0, latency_p95_ms=120)
    (run,) = read_runs(warehouse.engine, "orders", db_schema=warehouse.db_schema)
    assert (run.latency_p50_ms, run.latency_p95_ms) == (90.0, 120.0)


def test_a_rerun_of_a_loaded_window_counts_its_unchanged_rows_as_loaded(warehouse) -> None:
    """A replay merges the same rows again: all unchanged. "Loaded 0" read like lost data."""
    _row(warehouse, "first", T0, T0 + HOUR, at=T0 + HOUR, records_pulled=30, records_inserted=30)
    _row(
        warehouse,
        "replay",
        T0,
        T0 + HOUR,
        at=T0 + 2 * HOUR,
        records_pulled=30,
        records_inserted=0,
        records_updated=0,
        records_unchanged=30,
    )
    first, replay = read_runs(warehouse.engine, "orders", db_schema=warehouse.db_schema)
    assert (first.records_loaded, replay.records_loaded) == (30, 30)
