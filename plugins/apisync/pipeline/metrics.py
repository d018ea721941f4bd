"""A stream's metrics through Airflow's own metrics client, so a StatsD/Datadog/OpenTelemetry setup
that already watches Airflow sees them too.

Nothing to configure beyond Airflow's ``[metrics]`` section: every task process picks its backend
from it at start (``statsd_on`` + ``statsd_host``/``statsd_port``/``statsd_prefix``,
``statsd_datadog_enabled``, or ``otel_on``), and :func:`airflow.sdk.observability.stats` sends
through it (nothing at all when metrics are off). Names start with ``apisync.`` (after Airflow's
``statsd_prefix``, default ``airflow``); every metric carries the tags ``dag_id`` and ``stream``,
which Datadog, InfluxDB-style StatsD and OpenTelemetry keep. Plain StatsD drops tags, so there each
metric also goes out with them in the name: ``apisync.<metric>.<dag_id>.<stream>`` (a dot in an id
becomes ``__``, as Airflow does for its own ``ti.finish.<dag_id>.<task_id>.<state>``). The names
are listed in the README's "Metrics" section.

Emitted per extract attempt (each part of it between rate-limit deferrals once), validate and load:
counters add up to the run's totals, ``request_latency_ms`` is one timing per request (its
bucket's middle, see :mod:`apisync.http.latency`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from apisync.http.latency import bucket_middle

__all__ = ["METRIC_PREFIX", "StreamMetrics"]

METRIC_PREFIX = "apisync"

log = logging.getLogger(f"airflow.task.{__name__}")
_warned = False  # one warning per process about a failing metrics backend


class StreamMetrics:
    """Counters and timers of one stream in one DAG, tagged (and for plain StatsD, named) with both."""

    def __init__(self, dag_id: str, stream: str) -> None:
        self.tags = {"dag_id": dag_id, "stream": stream}
        self._suffix = f"{_name_part(dag_id)}.{_name_part(stream)}"
        self._embed: bool | None = None  # read from [metrics] on first use

    @classmethod
    def of(cls, context: Mapping[str, Any], stream: str) -> StreamMetrics:
        """The metrics of ``stream`` in the DAG of a task's context (``unknown`` outside a DAG run)."""
        dag = context.get("dag")
        dag_id = getattr(dag, "dag_id", None) or getattr(context.get("ti"), "dag_id", None)
        return cls(str(dag_id or "unknown"), stream)

    def count(self, metric: str, value: int) -> None:
        """Add ``value`` to the counter ``apisync.<metric>`` (nothing for 0)."""
        if value <= 0:
            return
        from airflow.sdk.observability.stats import Stats

        for name in self._names(metric):
            _sent(Stats.incr, name, count=int(value), tags=self.tags)

    def timing(self, metric: str, milliseconds: float, times: int = 1) -> None:
        """``times`` timings of ``milliseconds`` under ``apisync.<metric>``."""
        from airflow.sdk.observability.stats import Stats

        for _ in range(times):
            for name in self._names(metric):
                _sent(Stats.timing, name, milliseconds, tags=self.tags)

    def api(self, stats: Mapping[str, Any]) -> None:
        """One hook's requests (:meth:`apisync.http.ApiHook.stats`): requests, each HTTP status,
        bytes, api errors, milliseconds throttled and backing off, records pulled, latencies."""
        self.count("requests", int(stats.get("requests", 0)))
        for status, number in sorted((stats.get("status_counts") or {}).items()):
            self.count(f"http_status.{_name_part(str(status))}", int(number))
        self.count("bytes", int(stats.get("bytes", 0)))
        self.count("api_errors", int(stats.get("api_errors", 0)))
        self.count("throttled_ms", round(float(stats.get("throttled_s", 0)) * 1000))
        self.count("backoff_ms", round(float(stats.get("backoff_s", 0)) * 1000))
        self.count("records_pulled", int(stats.get("records", 0)) + int(stats.get("repeated", 0)))
        for bucket, number in sorted((stats.get("latency_ms") or {}).items(), key=lambda item: int(item[0])):
            self.timing("request_latency_ms", bucket_middle(bucket), int(number))

    def _names(self, metric: str) -> tuple[str, ...]:
        name = f"{METRIC_PREFIX}.{metric}"
        if self._embed is None:
            self._embed = _tags_dropped()
        return (name, f"{name}.{self._suffix}") if self._embed else (name,)


def _sent(send: Callable[..., None], name: str, *args: Any, **kwargs: Any) -> None:
    """Send one metric; a metrics backend that fails never fails the sync (a warning, once)."""
    global _warned
    try:
        send(name, *args, **kwargs)
    except Exception as exc:
        if not _warned:
            _warned = True
            log.warning("could not send metric %s (%s: %s); the sync goes on", name, type(exc).__name__, exc)


def _name_part(value: str) -> str:
    """An id as one segment of a StatsD name: a dot would split it, other odd characters are ``_``."""
    from airflow.sdk.observability.stats import normalize_name_for_stats

    return normalize_name_for_stats(value.replace(".", "__"), log_warning=False)


def _tags_dropped() -> bool:
    """Plain StatsD (no Datadog, no InfluxDB tag format) sends no tags: names must carry them."""
    from airflow.sdk.configuration import conf

    return (
        conf.getboolean("metrics", "statsd_on", fallback=False)
        and not conf.getboolean("metrics", "statsd_datadog_enabled", fallback=False)
        and not conf.getboolean("metrics", "statsd_influxdb_enabled", fallback=False)
    )
