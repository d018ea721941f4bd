"""ExtractStreamOperator: the spec's endpoint, paged through ApiHook, staged as raw page files.

Pages are written as they arrive (one gzipped JSONL file per page number), so nothing accumulates
in memory, a resumed extraction (after a rate-limit deferral) continues where it stopped, and a
retry overwrites the same files. With ``params.replay_raw`` a window is replayed from its files
without calling the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apisync.http.operator import PagedExtractOperator
from apisync.pipeline.staging import resolve_window, staging_paths
from apisync.spec import load_spec, render_window
from apisync.staging.raw_pages import MANIFEST_NAME, clear_pages, read_manifest, write_manifest, write_page

if TYPE_CHECKING:
    from airflow.sdk import Context

    from apisync.http.hook import Page

__all__ = ["ExtractStreamOperator"]


class ExtractStreamOperator(PagedExtractOperator):
    """Extract one stream window into ``<staging>/<stream>/<window>/raw``; XCom gets path and counts."""

    template_fields = ("endpoint", "staging_url")

    def __init__(
        self,
        *,
        stream: str,
        conn_id: str,
        staging_url: str | None = None,
        partition: int = 0,
        partitions: int = 1,
        **kwargs: Any,
    ) -> None:
        spec = load_spec(stream)
        source = spec.source
        # The query parameters depend on the run's window: rendered from the spec in execute().
        super().__init__(
            conn_id=conn_id,
            endpoint=source.endpoint,
            pagination=source.pagination.model_dump(),
            records_path=source.records_path or None,
            method=source.method,
            json=source.json_body,
            **kwargs,
        )
        self.stream = stream
        self.staging_url = staging_url
        self.partition = partition
        self.partitions = partitions
        self._raw_dir: Any = None

    def _prepare(self, context: Context) -> None:
        spec = load_spec(self.stream)
        window = resolve_window(context, self.partition, self.partitions)
        fmt = spec.source.window_format
        self.query_params = render_window(dict(spec.source.params), *window, fmt)
        self.json = render_window(spec.source.json_body, *window, fmt)
        self._raw_dir = staging_paths(self.stream, window, self.staging_url).raw

    def execute(self, context: Context) -> Any:
        self._prepare(context)
        params = context.get("params") or {}
        if params.get("replay_raw") and (self._raw_dir / MANIFEST_NAME).exists():
            manifest = read_manifest(self._raw_dir)
            self.log.info("replaying %s from staged raw pages, no API call: %s", self.stream, self._raw_dir)
            return self._summary(manifest, replayed=True)
        clear_pages(self._raw_dir)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        self._prepare(context)
        return super().execute_complete(context, event, **kwargs)

    def handle_page(self, context: Context, page: Page) -> None:
        write_page(self._raw_dir, page.number, page.records)

    def finish(self, context: Context) -> Any:
        # The hook's ``repeated`` (summed across deferrals): records dropped as byte-identical repeats.
        manifest = write_manifest(
            self._raw_dir, {"api": self.api_stats, "repeated": int(self.api_stats.get("repeated", 0))}
        )
        self.log.info(
            "staged %d records in %d pages at %s", manifest["records"], len(manifest["pages"]), self._raw_dir
        )
        return self._summary(manifest, replayed=False)

    def _summary(self, manifest: dict[str, Any], *, replayed: bool) -> dict[str, Any]:
        api = {} if replayed else manifest.get("api", {})
        return {
            "raw_dir": str(self._raw_dir),
            "pages": len(manifest["pages"]),
            "records": manifest["records"],
            "repeated": manifest.get("repeated", 0),
            "api_calls": api.get("requests", 0),
            "api_429s": api.get("r429", 0),
            "throttled_seconds": api.get("throttled_s", 0.0),
            "replayed": replayed,
            "partition": self.partition,
            "partitions": self.partitions,
        }
