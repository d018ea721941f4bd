"""PagedExtractOperator: page through an API, defer to the triggerer during long rate-limit waits.

Short waits sleep in-process (the hook paces requests); a wait longer than the connection's
``defer_after_s`` makes :meth:`ApiHook.paginate` raise :class:`RateLimitWait` with the cursor of
the page not yet fetched. The operator then defers to :class:`RateLimitWaitTrigger`, freeing the
worker slot, and :meth:`execute_complete` resumes from that exact cursor: no page is fetched twice
or skipped. The page counter and the accumulated hook stats travel in the deferral kwargs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from apisync.errors import RateLimitWait
from apisync.http.hook import ApiHook, Page, add_stats
from apisync.http.trigger import RateLimitWaitTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class PagedExtractOperator(BaseOperator):
    """Extract every page of ``endpoint``; subclasses implement :meth:`handle_page` and :meth:`finish`.

    :param conn_id: Airflow connection for :class:`ApiHook`.
    :param endpoint: path relative to the connection's base URL (templated).
    :param query_params: query parameters of the first request (templated). Not ``params``:
        that is BaseOperator's DAG-params argument, which Airflow refuses to template.
    :param pagination: ``{"type": "cursor_body" | "link_header" | ..., **options}``.
    :param records_path: dotted path of the records list in the body (dialect default if omitted).
    :param method: ``GET``, or ``POST`` for GraphQL.
    :param json: request body of the first request (templated), e.g. a GraphQL query + variables.
    :param graphql: a GraphQL source's options (:class:`~apisync.http.graphql.GraphQLOptions`).
    """

    template_fields: Sequence[str] = ("endpoint", "query_params", "json")

    def __init__(
        self,
        *,
        conn_id: str,
        endpoint: str,
        query_params: dict[str, Any] | None = None,
        pagination: dict[str, Any] | str | None = None,
        records_path: str | None = None,
        method: str = "GET",
        json: Any = None,
        graphql: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.endpoint = endpoint
        self.query_params = query_params
        self.pagination = pagination
        self.records_path = records_path
        self.method = method
        self.json = json
        self.graphql = graphql
        self.api_stats: dict[str, Any] = {}
        self.deferrals = 0

    # -- for subclasses ---------------------------------------------------------------------
    def handle_page(self, context: Context, page: Page) -> None:
        """Consume one page (e.g. write it to staging). Must be idempotent per ``page.number``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_page()")

    def finish(self, context: Context) -> Any:
        """XCom return value once the last page was handled; ``self.api_stats`` holds the totals."""
        return {"pages": self.api_stats.get("pages", 0), "records": self.api_stats.get("records", 0)}

    def get_hook(self) -> ApiHook:
        return ApiHook(http_conn_id=self.conn_id)

    def hook_done(self, context: Context, stats: dict[str, Any], total: dict[str, Any]) -> None:
        """Called once per hook when it stops: the extraction finished, failed or deferred. ``stats``
        are this hook's own (each part between deferrals once: emit metrics of these), ``total``
        the extraction's so far (:func:`add_stats` of every part)."""

    @property
    def progress_label(self) -> str:
        """What the progress lines of the read start with."""
        return self.endpoint

    # -- Airflow entry points ---------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        return self._extract(context, state=None, stats=None, deferrals=0)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        *,  # Airflow resumes with keywords (the deferral's kwargs)
        state: dict[str, Any] | None = None,
        stats: dict[str, Any] | None = None,
        deferrals: int = 0,
    ) -> Any:
        """Resume after :class:`RateLimitWaitTrigger` fired, from the saved page cursor."""
        if state is None and event:
            state, stats, deferrals = event.get("state"), event.get("stats"), event.get("deferrals", 0)
        if state is None:
            raise RuntimeError("execute_complete got no pagination state: refusing to restart from page 1")
        self.log.info("resuming after rate-limit wait at page %s", (state or {}).get("page"))
        return self._extract(context, state=state, stats=stats, deferrals=deferrals)

    def _extract(
        self,
        context: Context,
        *,
        state: dict[str, Any] | None,
        stats: dict[str, Any] | None,
        deferrals: int,
    ) -> Any:
        hook = self.get_hook()
        self.deferrals = deferrals
        try:
            for page in hook.paginate(
                self.endpoint,
                params=self.query_params,
                pagination=self.pagination,
                records_path=self.records_path,
                method=self.method,
                json=self.json,
                state=state,
                label=self.progress_label,
                graphql=self.graphql,
            ):
                self.handle_page(context, page)
        except RateLimitWait as wait:
            resume = {
                "state": wait.state,
                "stats": add_stats(stats, hook.stats()),
                "deferrals": deferrals + 1,
            }
            # The cursor travels twice: in the deferral kwargs (what the scheduler passes back) and
            # in the trigger event (dag.test() in Airflow 3.3 resumes with the event only).
            self.defer(
                trigger=RateLimitWaitTrigger(
                    resume_at=wait.resume_at, payload={"page": (wait.state or {}).get("page", 0), **resume}
                ),
                method_name="execute_complete",
                kwargs=resume,
            )
        finally:
            self.hook_done(context, hook.stats(), add_stats(stats, hook.stats()))
        self.api_stats = add_stats(stats, hook.stats())
        self.api_stats["deferrals"] = deferrals
        self.log.info("extraction done: %s", self.api_stats)
        return self.finish(context)
