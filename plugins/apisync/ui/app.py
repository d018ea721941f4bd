"""The Syncs view's FastAPI app: one page, its static files, and the JSON it draws from.

Served by the api-server under ``/apisync`` (the plugin sets the prefix); the UI shows the page
inside its own layout (an external view, so the page is same-origin and the browser sends the
UI's ``_token`` cookie with every request of the page).

- ``GET /`` the page; ``GET /static/...`` its script, styles and Chart.js;
- ``GET /api/overview`` every stream the user may read: last run, recent runs (the charts),
  coverage;
- ``GET /api/streams/{stream}/quarantine?limit=&offset=&run_id=`` a page of quarantined rows;
- ``POST /api/streams/{stream}/backfill`` a backfill of the oldest missing range (the coverage
  repair's own logic), created through the REST API as the user;
- ``POST /api/streams/{stream}/replay`` ``{"window_start", "window_end", "run_id"?}``: that
  window re-run from its staged raw files, as the user. With ``run_id`` (what the quarantine
  browser sends), the window of that run, which must contain the one given: a quarantined row of
  a sliced run carries its slice's window, and no run has a slice's window.

**Charts: Chart.js** 4.6.1 (MIT, chartjs.org), the UMD build vendored from the npm package as
``static/chart.umd.min.js`` with its licence next to it, served by this app: no CDN (the machine
may be offline and the user's browser may have no internet), no build step, and a maintained
library instead of hand-drawn SVG. The page itself is plain JavaScript for the same reason (a
React app would need a bundle built against the UI's React).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from apisync.errors import AirflowApiError, ApisyncError
from apisync.redaction import redact
from apisync.ui.access import current_user, is_allowed, require, user_token

__all__ = ["URL_PREFIX", "app"]

log = logging.getLogger(__name__)

URL_PREFIX = "/apisync"
STATIC_DIR = Path(__file__).resolve().parent / "static"
RECENT_RUNS = 100

app = FastAPI(
    title="apisync: Syncs",
    description="The Syncs view of the Airflow UI (sync history, coverage, quarantine).",
    docs_url=None,
    redoc_url=None,
)
app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

User = Annotated[Any, Depends(current_user)]


def _api_base_url(request: Request) -> str:
    """Where the REST API is: ``[api] base_url`` when set, else the origin this request came to."""
    from airflow.configuration import conf

    configured = conf.get("api", "base_url", fallback="") or ""
    if configured.startswith(("http://", "https://")):
        return configured.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def _user_api(request: Request) -> Any:
    from apisync.coverage.repair import AirflowApi

    return AirflowApi.with_token(_api_base_url(request), user_token(request))


def _catalog() -> Any:
    """The streams of the DAGs folder. Called on the event loop's thread, not in the thread pool:
    parsing DAG files arms a SIGALRM import timeout, which only the main thread can (and once
    parsed it is quick: a stat of the folder's files)."""
    from apisync.ui.catalog import catalog

    return catalog()


def _stream_or_404(stream: str) -> Any:
    found = _catalog().find(stream)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no sync DAG in the DAGs folder syncs stream {stream!r}"
        )
    return found


def _api_error(error: AirflowApiError) -> HTTPException:
    """Airflow's refusal passed on: 401/403/404/409 as Airflow said, anything else a 502."""
    code = error.status if error.status in (400, 401, 403, 404, 409, 422) else status.HTTP_502_BAD_GATEWAY
    return HTTPException(code, redact(str(error)))


def _in_progress(api: Any, dag_id: str) -> list[tuple[datetime, datetime]]:
    """Windows of the DAG's queued and running runs (the ledger counts them in progress)."""
    return [(run.start, run.end) for run in api.active_runs(dag_id)]


def _coverage(found: Any, engine: Any, db_schema: str | None, api: Any, now: datetime) -> dict[str, Any]:
    from apisync.report.intervals import interval_coverage

    note = None
    try:
        in_progress = _in_progress(api, found.target.dag_id)
    except AirflowApiError as error:  # coverage is still worth showing, without "in progress"
        in_progress = []
        note = f"queued/running runs unknown: {redact(str(error))}"
    coverage = interval_coverage(engine, found.target, now=now, in_progress=in_progress, db_schema=db_schema)
    return {**coverage.as_dict(), "note": note}


def _entry(
    stream: str, member: Any, conn_id: str, user: Any, runs: Any = (), failed_runs: int = 0
) -> dict[str, Any]:
    dag_id = member.target.dag_id if member else None
    return {
        "stream": stream,
        "dag_id": dag_id,
        "extract_task_id": member.extract_task_id if member else None,
        "warehouse_conn_id": conn_id,
        "runs": [run.as_dict() for run in runs],
        "failed_runs": failed_runs,
        "can_backfill": bool(dag_id) and is_allowed(user, "backfill", dag_id),
        "can_replay": bool(dag_id) and is_allowed(user, "replay", dag_id),
        "coverage": None,
        "problem": None,
    }


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request) -> HTMLResponse:
    """The page (no data in it: the script fetches what the user may see)."""
    try:
        await current_user(request)
    except HTTPException as error:
        return HTMLResponse(
            "<!doctype html><title>Syncs</title><p>Not logged in to Airflow "
            f"({error.detail}). <a href='../'>Log in</a> and open Syncs again.</p>",
            status_code=error.status_code,
        )
    return HTMLResponse((STATIC_DIR / "syncs.html").read_text())


@app.get("/api/overview")
async def overview(request: Request, user: User) -> dict[str, Any]:
    """Every stream the user may read the runs of: its last run, recent runs and coverage."""
    return await run_in_threadpool(_overview, request, user, _catalog())


def _overview(request: Request, user: Any, found: Any) -> dict[str, Any]:
    from apisync.report.runs import stream_summaries
    from apisync.ui.catalog import warehouse
    from apisync.ui.settings import warehouse_conn_id

    default_conn = warehouse_conn_id()
    now = datetime.now(UTC)
    api = _user_api(request)
    by_conn: dict[str, list[Any]] = {default_conn: []}
    for stream in found.streams:
        if is_allowed(user, "read", stream.target.dag_id):
            by_conn.setdefault(stream.target.warehouse_conn_id, []).append(stream)
    known = {s.target.stream for s in found.streams}
    streams: list[dict[str, Any]] = []
    problems: list[str] = []
    for conn_id, members in sorted(by_conn.items()):
        try:
            wh = warehouse(conn_id)
            names = [s.target.stream for s in members]
            summaries = stream_summaries(wh.engine, db_schema=wh.db_schema, streams=names, limit=RECENT_RUNS)
        except Exception as error:  # one unreachable or misconfigured warehouse must not blank the page
            problem = f"warehouse {conn_id}: {type(error).__name__}: {redact(str(error)).splitlines()[0]}"
            problems.append(problem)
            for member in members:
                streams.append({**_entry(member.target.stream, member, conn_id, user), "problem": problem})
            continue
        for summary in summaries:
            member = next((s for s in members if s.target.stream == summary.stream), None)
            if member is None and (conn_id != default_conn or summary.stream in known):
                continue  # recorded here, but its DAG reads another warehouse or the user may not read it
            if member is None and not is_allowed(user, "read", None):
                continue  # no DAG to check against: only for users who may read every DAG
            entry = _entry(summary.stream, member, conn_id, user, summary.runs, summary.failed_runs)
            if member is not None:
                entry["coverage"] = _coverage(member, wh.engine, wh.db_schema, api, now)
            streams.append(entry)
    for path, import_error in found.import_errors.items():
        lines = redact(import_error).strip().splitlines()
        problems.append(f"DAG file failed to import: {path}: {lines[-1] if lines else ''}")
    return {
        "generated_at": now.isoformat(),
        "streams": sorted(streams, key=lambda s: s["stream"]),
        "problems": problems,
    }


@app.get("/api/streams/{stream}/quarantine")
async def quarantine(
    stream: str,
    user: User,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A page of the stream's quarantined rows, newest first."""
    found = _catalog().find(stream)
    require(user, "read", found.target.dag_id if found else None)
    return await run_in_threadpool(_quarantine_page, found, stream, limit, offset, run_id)


def _quarantine_page(found: Any, stream: str, limit: int, offset: int, run_id: str | None) -> dict[str, Any]:
    from apisync.report.quarantine import read_quarantine
    from apisync.ui.catalog import warehouse
    from apisync.ui.settings import warehouse_conn_id

    wh = warehouse(found.target.warehouse_conn_id if found else warehouse_conn_id())
    page = read_quarantine(
        wh.engine, stream, db_schema=wh.db_schema, limit=limit, offset=offset, run_id=run_id
    )
    return page.as_dict()


@app.post("/api/streams/{stream}/backfill")
async def backfill_gaps(request: Request, stream: str, user: User) -> dict[str, Any]:
    """A backfill of the stream's oldest missing range, exactly as the coverage repair makes it."""
    found = _stream_or_404(stream)
    require(user, "backfill", found.target.dag_id)
    return await run_in_threadpool(_backfill, request, user, found)


def _backfill(request: Request, user: Any, found: Any) -> dict[str, Any]:
    from apisync.coverage.repair import repair_missing
    from apisync.report.intervals import interval_coverage
    from apisync.ui.catalog import warehouse

    dag_id = found.target.dag_id
    api = _user_api(request)
    wh = warehouse(found.target.warehouse_conn_id)
    try:
        in_progress = _in_progress(api, dag_id)
        ledger = interval_coverage(
            wh.engine, found.target, now=datetime.now(UTC), in_progress=in_progress, db_schema=wh.db_schema
        ).ledger
        outcome = repair_missing(api, dag_id, ledger, max_windows=found.target.max_backfill_windows)
    except AirflowApiError as error:
        raise _api_error(error) from error
    log.info("Syncs view: backfill of %s asked by %s: %s", dag_id, user.get_name(), outcome.describe())
    return {
        "dag_id": dag_id,
        "backfill_id": outcome.backfill_id,
        "windows": outcome.windows,
        "reprocess_behavior": outcome.reprocess_behavior,
        "message": outcome.describe(),
    }


@app.post("/api/streams/{stream}/replay")
async def replay(
    request: Request,
    stream: str,
    user: User,
    window_start: Annotated[datetime, Body()],
    window_end: Annotated[datetime, Body()],
    run_id: Annotated[str | None, Body()] = None,
) -> dict[str, Any]:
    """Re-run one window of the stream from its staged raw files (no new call to the source);
    with ``run_id``, the whole window of that run (a quarantined row's run, maybe sliced)."""
    found = _stream_or_404(stream)
    require(user, "replay", found.target.dag_id)
    if window_end <= window_start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "window_end must be after window_start")
    window = (window_start, window_end)
    return await run_in_threadpool(_replay, request, found.target.dag_id, window, run_id)


def _replay(
    request: Request, dag_id: str, window: tuple[datetime, datetime], run_id: str | None
) -> dict[str, Any]:
    from apisync.coverage.ledger import as_utc, format_range
    from apisync.coverage.replay import replay_window, run_window

    api = _user_api(request)
    start, end = as_utc(window[0]), as_utc(window[1])
    try:
        if run_id is not None:
            run_start, run_end = run_window(api, dag_id, run_id)
            if not (run_start <= start and end <= run_end):
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_ENTITY,
                    f"window {format_range((start, end))} is not inside run {run_id}'s window "
                    f"{format_range((run_start, run_end))}",
                )
            start, end = run_start, run_end
        outcome = replay_window(api, dag_id, start, end)
    except AirflowApiError as error:
        raise _api_error(error) from error
    except ApisyncError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, redact(str(error))) from error
    return {
        "dag_id": outcome.dag_id,
        "run_id": outcome.run_id,
        "task_ids": list(outcome.task_ids),
        "message": outcome.describe(),
    }


@app.exception_handler(ValueError)
async def _bad_value(_request: Request, error: ValueError) -> JSONResponse:
    return JSONResponse({"detail": redact(str(error))}, status_code=status.HTTP_422_UNPROCESSABLE_ENTITY)
