"""ExtractStreamOperator: the spec's endpoint, paged through ApiHook, staged as raw page files.

Pages are written as they arrive (one gzipped JSONL file per page number), so nothing accumulates
in memory. Each attempt writes into its own directory (run id + try number, see
:mod:`apisync.pipeline.staging`), named in the XCom for the tasks after it; a resumed extraction
(after a rate-limit deferral) is the same attempt and continues in the same directory. With
``params.replay_raw`` the newest complete extraction of the window is copied into the attempt's
directory instead of calling the API. With the spec's ``source.conditional_requests`` the pages'
GETs are conditional on the newest complete extraction of the window (:mod:`apisync.pipeline.conditional`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apisync.http.operator import PagedExtractOperator
from apisync.pipeline.api_cost import EXTRACT_API_COST, api_cost
from apisync.pipeline.conditional import conditional_pages
from apisync.pipeline.staging import (
    label_slice,
    newest_extraction,
    resolve_window,
    staging_paths,
    window_dir,
)
from apisync.spec import load_spec, render_window
from apisync.staging.layout import RunPaths
from apisync.staging.raw_pages import (
    clear_pages,
    copy_pages,
    write_manifest,
    write_page,
    write_page_errors,
    write_page_validators,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from apisync.http.conditional import ConditionalPages
    from apisync.http.hook import ApiHook, Page

__all__ = ["ExtractStreamOperator"]


class ExtractStreamOperator(PagedExtractOperator):
    """Extract one stream window into ``<staging>/<stream>/<window>/<run>/try-<n>/raw``; the XCom
    gets that attempt's directory (``staging_dir``) and the counts.

    ``partition`` is templated: in a mapped TaskGroup it is the group's stand-in for the slice
    number, resolved per map index when the task runs."""

    template_fields = ("endpoint", "staging_url", "partition")

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
            records_path=source.records_path,  # None: the dialect's default; "": the body
            method=source.method,
            json=source.json_body,
            graphql=source.graphql.model_dump(),
            **kwargs,
        )
        self.stream = stream
        self.staging_url = staging_url
        self.partition = partition
        self.partitions = partitions
        self._paths: RunPaths | None = None
        self._window_dir: Any = None
        self._conditional: ConditionalPages | None = None

    @property
    def _raw_dir(self) -> Any:
        assert self._paths is not None, "_prepare() sets the attempt's paths first"
        return self._paths.raw

    def _prepare(self, context: Context) -> None:
        spec = load_spec(self.stream)
        window = resolve_window(context, self.partition, self.partitions)
        label_slice(context, window)
        fmt, bounds = spec.source.window_format, spec.source.window_bounds
        self.query_params = render_window(dict(spec.source.params), *window, fmt, bounds)
        self.json = render_window(spec.source.json_body, *window, fmt, bounds)
        # A deferral's resume is the same try (Airflow does not count it as a new one): same directory.
        try_number = int(getattr(context.get("ti"), "try_number", None) or 1)
        self._window_dir = window_dir(self.stream, window, self.staging_url)
        self._paths = staging_paths(
            self.stream, window, self.staging_url, run_id=context["run_id"], try_number=try_number
        )
        # conditional requests: validators of the newest complete earlier extraction of the window
        if spec.source.conditional_requests:
            self._conditional = conditional_pages(self._window_dir, exclude=self._raw_dir)

    def execute(self, context: Context) -> Any:
        self._prepare(context)
        params = context.get("params") or {}
        if params.get("replay_raw"):
            source = newest_extraction(self._window_dir, exclude=self._raw_dir)
            if source is not None:
                self.log.info("replaying %s from staged raw pages %s, no API call", self.stream, source)
                return self._summary(copy_pages(source, self._raw_dir), replayed=True)
        clear_pages(self._raw_dir)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        self._prepare(context)
        return super().execute_complete(context, event, **kwargs)

    @property
    def progress_label(self) -> str:
        return self.stream if self.partitions == 1 else f"{self.stream} slice {self.partition}"

    def hook_done(self, context: Context, stats: dict[str, Any], total: dict[str, Any]) -> None:
        """Emit this hook's metrics; leave the attempt's API cost so far for a failed run's row."""
        from apisync.pipeline.metrics import StreamMetrics

        StreamMetrics.of(context, self.stream).api(stats)
        push = getattr(context.get("ti"), "xcom_push", None)  # none outside a task run
        if push is not None:
            push(EXTRACT_API_COST, api_cost(total))

    def get_hook(self) -> ApiHook:
        hook = super().get_hook()
        hook.conditional = self._conditional  # conditional requests (None: switched off)
        return hook

    def handle_page(self, context: Context, page: Page) -> None:
        if page.record_errors:  # partial_results: quarantine: the GraphQL errors that hit records
            write_page_errors(self._raw_dir, page.number, page.record_errors)
        write_page(self._raw_dir, page.number, page.records, page.url)
        if page.validators is not None:  # conditional requests: the body and validators with the page
            write_page_validators(self._raw_dir, page.number, page.validators, page.raw)

    def finish(self, context: Context) -> Any:
        # The hook's ``repeated`` (summed across deferrals): records dropped as byte-identical repeats.
        manifest = write_manifest(
            self._raw_dir,
            {
                "api": self.api_stats,
                "repeated": int(self.api_stats.get("repeated", 0)),
                "extracted_at": datetime.now(UTC).isoformat(),
            },
        )
        self.log.info(
            "staged %d records in %d pages at %s", manifest["records"], len(manifest["pages"]), self._raw_dir
        )
        return self._summary(manifest, replayed=False)

    def _summary(self, manifest: dict[str, Any], *, replayed: bool) -> dict[str, Any]:
        api = {} if replayed else manifest.get("api", {})
        assert self._paths is not None
        return {
            "staging_dir": str(self._paths.root),
            "raw_dir": str(self._raw_dir),
            "pages": len(manifest["pages"]),
            "records": manifest["records"],
            "repeated": manifest.get("repeated", 0),
            **api_cost(api),  # the run's sync_runs columns of its API use
            "deferrals": api.get("deferrals", 0),  # long rate-limit waits handed to the triggerer
            "replayed": replayed,
            "partition": self.partition,
            "partitions": self.partitions,
        }
