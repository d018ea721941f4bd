"""Per-request latency as a fixed log-bucket histogram that merges exactly by adding counts.

An extraction's latency lives in the hook's stats (key ``latency_ms``): ``{bucket: count}``, bucket
*k* holding the requests that took (2^((k-1)/8), 2^(k/8)] ms. The buckets are the same for every
hook, so two histograms merge by adding their counts (:func:`merge_histograms`, what ``add_stats``
does across rate-limit deferrals and what a reader does across mapped slices): merging loses
nothing, and a percentile of the merge is the percentile of all the requests at the buckets'
resolution. :func:`latency_percentile` answers with the bucket's geometric middle, within ±4.4 %
(half a bucket, a ratio of 2^(1/16)) of the exact value — enough for p50/p95 on a dashboard.

Our own twenty lines rather than HdrHistogram or DDSketch: the histogram has to travel as plain
JSON (deferral kwargs, XCom, the extract manifest), which their encodings (binary, protobuf) do
not, and a run's few thousand requests need none of their range or accuracy machinery. Keys are
strings so the dict is the same before and after a JSON round trip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = [
    "BUCKETS_PER_DOUBLING",
    "bucket_middle",
    "latency_bucket",
    "latency_percentile",
    "merge_histograms",
]

BUCKETS_PER_DOUBLING = 8
MIN_LATENCY_MS = 0.001  # anything faster shares the lowest bucket


def latency_bucket(ms: float) -> str:
    """The bucket of one request that took ``ms`` milliseconds (a string key, JSON-stable)."""
    return str(math.ceil(BUCKETS_PER_DOUBLING * math.log2(max(ms, MIN_LATENCY_MS))))


def bucket_middle(bucket: str | int) -> float:
    """The latency (ms) a bucket stands for: its geometric middle, within ±4.4 % of its requests'."""
    return round(2 ** ((int(bucket) - 0.5) / BUCKETS_PER_DOUBLING), 3)


def merge_histograms(*histograms: Mapping[str, int] | None) -> dict[str, int]:
    """Bucket-wise sum: the histogram of all the requests of every histogram given."""
    merged: dict[str, int] = {}
    for histogram in histograms:
        for bucket, count in (histogram or {}).items():
            merged[bucket] = merged.get(bucket, 0) + int(count)
    return merged


def latency_percentile(histogram: Mapping[str, int] | None, fraction: float) -> float | None:
    """The latency (ms) below which ``fraction`` (0.5: p50) of the requests fall, by nearest rank;
    None for no requests. The bucket's geometric middle: within ±4.4 % of the exact value."""
    if not 0 < fraction <= 1:
        raise ValueError(f"latency_percentile: fraction must be in (0, 1], got {fraction!r}")
    counts = sorted((int(bucket), int(count)) for bucket, count in (histogram or {}).items() if count)
    total = sum(count for _, count in counts)
    if not total:
        return None
    rank = math.ceil(fraction * total)
    seen = 0
    for bucket, count in counts:
        seen += count
        if seen >= rank:
            return bucket_middle(bucket)
    raise AssertionError("unreachable: the ranks end at the total")
