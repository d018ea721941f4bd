"""Repair a stream's gap by asking Airflow for a backfill, through its REST API.

The client is small on purpose: a JWT from ``POST /auth/token`` (the login and password of the
``airflow_api`` connection), then ``/api/v2`` calls with it. The repair:

- creates at most **one backfill per DAG at a time** (Airflow refuses a second one, and the runs
  of a running backfill are "in progress" in the ledger, so a repair never doubles one);
- backfills the **oldest missing range** (at most ``max_windows`` of it), the rest on a later check;
- asks for ``reprocess_behavior: "none"`` (only logical dates without a run), escalating to
  ``"failed"`` when a window of the range has a failed run and to ``"completed"`` when one has a
  run that is *success* in Airflow but wrote no success row (marked success by hand): ``none``
  would skip those, and the gap would stay.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from apisync.coverage import DEFAULT_API_CONN_ID
from apisync.coverage.ledger import Ledger, LedgerWindow, Window, as_utc, format_range
from apisync.errors import AirflowApiError
from apisync.redaction import body_excerpt, redact, register_secret

__all__ = [
    "ACTIVE_RUN_STATES",
    "DEFAULT_API_CONN_ID",
    "AirflowApi",
    "DagRunWindow",
    "RepairOutcome",
    "repair_missing",
    "reprocess_behavior",
]

ACTIVE_RUN_STATES = ("queued", "running")
PAGE_LIMIT = 100
TIMEOUT_S = 60  # a busy api-server (backfill creation locks the DAG's runs) can be slow


@dataclass(frozen=True)
class DagRunWindow:
    """A DAG run's data interval and state, as the REST API lists it."""

    run_id: str
    start: datetime
    end: datetime
    state: str


class AirflowApi:
    """Airflow's REST API (v2) with a JWT from ``/auth/token``; raises :class:`AirflowApiError`."""

    def __init__(
        self, base_url: str, *, username: str, password: str, session: requests.Session | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.session = session or requests.Session()
        self._token: str | None = None
        self._given_token = False
        register_secret(password)

    @classmethod
    def with_token(cls, base_url: str, token: str, *, session: requests.Session | None = None) -> AirflowApi:
        """The same client calling as whoever ``token`` (an Airflow JWT) belongs to, e.g. the user
        logged into the UI, so Airflow applies that user's permissions. No login and password: a
        token Airflow refuses is an :class:`AirflowApiError` with status 401, never a new token.

        The token is not registered as a secret: a long-running api-server would keep every user's
        token in the registry, and JWTs are masked by pattern anyway."""
        if not token:
            raise AirflowApiError(
                f"{base_url}: no Airflow token to call the REST API with",
                method="POST",
                url=base_url,
                status=401,
            )
        api = cls(base_url, username="", password="", session=session)
        api._token = token
        api._given_token = True
        return api

    @classmethod
    def from_connection(cls, conn_id: str = DEFAULT_API_CONN_ID) -> AirflowApi:
        """From an HTTP connection: host (with scheme, or schema + host + port), login, password."""
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        host = conn.host or ""
        if "://" not in host:
            scheme = conn.schema or "http"
            host = f"{scheme}://{host}{f':{conn.port}' if conn.port else ''}"
        return cls(host, username=conn.login or "", password=conn.password or "")

    def _authenticate(self) -> str:
        url = f"{self.base_url}/auth/token"
        if self._given_token:  # with_token(): the user's token was refused; a password we do not have
            raise AirflowApiError(
                f"{self.base_url}: Airflow refused the user's token (expired or revoked): log in again",
                method="POST",
                url=url,
                status=401,
            )
        try:
            response = self.session.post(
                url, json={"username": self.username, "password": self.password}, timeout=TIMEOUT_S
            )
        except requests.RequestException as error:
            raise AirflowApiError(
                f"POST {url}: Airflow API unreachable: {redact(str(error))}", method="POST", url=url
            ) from error
        if response.status_code not in (200, 201):
            raise AirflowApiError(
                f"POST {url}: token refused with HTTP {response.status_code} "
                f"(check login/password of the Airflow API connection): {body_excerpt(response.text, 300)}",
                method="POST",
                url=url,
                status=response.status_code,
            )
        token = str(response.json()["access_token"])
        register_secret(token)
        return token

    def call(self, method: str, path: str, *, ok: Sequence[int] = (200,), **kwargs: Any) -> Any:
        """One ``/api/v2`` call; a 401 gets one fresh token. Returns the JSON body."""
        url = f"{self.base_url}/api/v2{path}"
        for attempt in (1, 2):
            if self._token is None:
                self._token = self._authenticate()
            try:
                response = self.session.request(
                    method,
                    url,
                    headers={"Authorization": f"Bearer {self._token}"},
                    timeout=TIMEOUT_S,
                    **kwargs,
                )
            except requests.RequestException as error:
                raise AirflowApiError(
                    f"{method} {url}: Airflow API unreachable: {redact(str(error))}", method=method, url=url
                ) from error
            if response.status_code == 401 and attempt == 1:
                self._token = None
                continue
            if response.status_code not in ok:
                raise AirflowApiError(
                    f"{method} {url}: HTTP {response.status_code}: {body_excerpt(response.text, 500)}",
                    method=method,
                    url=url,
                    status=response.status_code,
                )
            return response.json() if response.content else None
        raise AssertionError("unreachable")  # pragma: no cover

    def is_paused(self, dag_id: str) -> bool:
        return bool(self.call("GET", f"/dags/{quote(dag_id, safe='')}")["is_paused"])

    def dag_runs(self, dag_id: str, **params: Any) -> list[DagRunWindow]:
        """Every DAG run matching ``params`` (``state``, ``logical_date_gte``...), all pages."""
        return list(self._dag_runs(dag_id, params))

    def _dag_runs(self, dag_id: str, params: Mapping[str, Any]) -> Iterator[DagRunWindow]:
        offset = 0
        while True:
            body = self.call(
                "GET",
                f"/dags/{quote(dag_id, safe='')}/dagRuns",
                params={**params, "limit": PAGE_LIMIT, "offset": offset},
            )
            runs = body.get("dag_runs") or []
            for run in runs:
                if run.get("data_interval_start") and run.get("data_interval_end"):
                    yield DagRunWindow(
                        run_id=str(run["dag_run_id"]),
                        start=as_utc(datetime.fromisoformat(run["data_interval_start"])),
                        end=as_utc(datetime.fromisoformat(run["data_interval_end"])),
                        state=str(run.get("state")),
                    )
            offset += len(runs)
            if not runs or offset >= int(body.get("total_entries", 0)):
                return

    def active_runs(self, dag_id: str) -> list[DagRunWindow]:
        """Queued and running runs: their windows are in progress, not missing."""
        return self.dag_runs(dag_id, state=list(ACTIVE_RUN_STATES))

    def active_backfill(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG's backfill that has not completed yet, if any."""
        body = self.call("GET", "/backfills", params={"dag_id": dag_id, "limit": PAGE_LIMIT})
        for backfill in body.get("backfills") or []:
            if not backfill.get("completed_at"):
                return dict(backfill)
        return None

    def create_backfill(
        self, dag_id: str, *, from_date: datetime, to_date: datetime, reprocess_behavior: str = "none"
    ) -> dict[str, Any]:
        """``POST /backfills``: runs for the logical dates ``from_date``..``to_date`` (inclusive)."""
        body = {
            "dag_id": dag_id,
            "from_date": from_date.astimezone(UTC).isoformat(),
            "to_date": to_date.astimezone(UTC).isoformat(),
            "reprocess_behavior": reprocess_behavior,
        }
        return dict(self.call("POST", "/backfills", json=body))


@dataclass(frozen=True)
class RepairOutcome:
    """What the repair did for one DAG: a backfill created, or why not."""

    dag_id: str
    backfill_id: int | None = None
    window: Window | None = None
    windows: int = 0
    reprocess_behavior: str | None = None
    skipped: str | None = None

    def describe(self) -> str:
        if self.backfill_id is not None and self.window is not None:
            return (
                f"backfill {self.backfill_id} created for {self.windows} windows "
                f"{format_range(self.window)} (reprocess {self.reprocess_behavior})"
            )
        return f"no backfill: {self.skipped}"


def _first_range(missing: Sequence[LedgerWindow], max_windows: int) -> list[LedgerWindow]:
    """The oldest run of adjacent missing windows, cut to ``max_windows``."""
    chosen: list[LedgerWindow] = []
    for window in missing:
        if chosen and (window.start != chosen[-1].end or len(chosen) >= max_windows):
            break
        chosen.append(window)
    return chosen


def reprocess_behavior(runs: Sequence[DagRunWindow]) -> str:
    """The weakest reprocess behaviour that gives every logical date of the range a fresh run.

    ``runs`` are the DAG's runs on the range's logical dates: the backfill finds existing runs by
    logical date, so that is what decides whether ``none`` would skip one.
    """
    states = {r.state for r in runs}
    if "success" in states:
        return "completed"
    if "failed" in states:
        return "failed"
    return "none"


def repair_missing(api: AirflowApi, dag_id: str, ledger: Ledger, *, max_windows: int) -> RepairOutcome:
    """Create one backfill for the oldest missing range of ``ledger`` (see the module docstring)."""
    missing = ledger.missing_windows()
    if not missing:
        return RepairOutcome(dag_id, skipped="nothing missing")
    running = api.active_backfill(dag_id)
    if running is not None:
        return RepairOutcome(dag_id, skipped=f"backfill {running.get('id')} of this DAG is still running")
    chosen = _first_range(missing, max_windows)
    first, last = chosen[0], chosen[-1]
    runs = api.dag_runs(
        dag_id,
        logical_date_gte=first.start.isoformat(),
        logical_date_lte=last.start.isoformat(),
    )
    behavior = reprocess_behavior(runs)
    created = api.create_backfill(
        dag_id, from_date=first.start, to_date=last.start, reprocess_behavior=behavior
    )
    return RepairOutcome(
        dag_id,
        backfill_id=int(created["id"]),
        window=(first.start, last.end),
        windows=len(chosen),
        reprocess_behavior=behavior,
    )
