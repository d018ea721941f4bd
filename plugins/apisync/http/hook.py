"""ApiHook: the one door every source read and CRM write goes through.

A thin subclass of the http provider's ``HttpHook``: the Connection holds the base URL and
credentials, its extras declare auth style, rate limit, header dialect, timeouts and retry rules
(see :data:`EXTRAS_EXAMPLE`). On top of ``HttpHook`` it adds a shared client-side rate limiter
(:mod:`.ratelimit`), header-driven adaptation (:mod:`.headers`), tenacity retries (:mod:`.retry`),
body decoding (:mod:`.body`), pagination strategies (:mod:`.pagination`), conditional page
requests (:mod:`.conditional`, when :attr:`ApiHook.conditional` is set) and counters
(:meth:`ApiHook.stats`).

Every request goes out through :meth:`ApiHook.request` (one ``_send``: limiter, retries, counters),
the provider's entry points too: ``run()``, ``run_and_check()`` and ``run_with_advanced_retry()``
(which calls ``run()``) become one ``request()`` each (see :meth:`ApiHook.run`). The provider's
``HttpOperator`` and ``HttpSensor`` build a plain ``HttpHook`` for an ``http`` connection and send
past all of it: use :class:`~apisync.http.provider_operators.ApiHttpOperator` and
:class:`~apisync.http.provider_operators.ApiHttpSensor`, same arguments, ApiHook inside, no
deferrable mode (the provider's defers to ``HttpAsyncHook`` on the triggerer, past the door).

Connection extras (all optional; checked by :class:`~apisync.http.settings.ApiSettings` before the
first request: an unknown key or a bad value fails with the key path and what is expected)::

    auth                 {"type": "api_key", "header"|"query": name (one of them; default header
                         "X-API-Key")} | {"type": "bearer"} | {"type": "basic"} |
                         {"type": "oauth2", "token_url" ("/oauth/token"), "scope",
                         "refresh_margin_s" (60)} | {"type": "none"}; default: basic if login is set,
                         bearer if only a password is
    rate_limit           {"requests" (> 0), "period_s" (1), "burst" (2), "backend": "sqlite"|"redis",
                         "path" (sqlite file, default $AIRFLOW_HOME/apisync_ratelimit.sqlite),
                         "redis_url", "key_prefix" (redis only), "key" (budget key, default
                         "<conn_id>|<host>")}; without "requests" the limit is learned from headers,
                         or from 429s alone (see :mod:`.ratelimit`)
    rate_limit_headers   "auto" | "github" | "ietf" | "ietf-legacy" | "hubspot" | "none" |
                         {"limit", "remaining", "reset", "reset_kind", "window", "window_kind"}
    timeout              {"connect": 10, "read": 60} (seconds; a number sets read)
    max_attempts         8 (attempts per request, first one included)
    retry                {"connect_attempts": 3, "connect_budget_s": 15}: a request that cannot
                         reach the server (refused, connect timeout, TLS handshake) gets at most
                         3 attempts and 15 s of backoff in all; unknown host / rejected TLS
                         certificate: 1 attempt. Read timeouts, 5xx, 429 keep max_attempts
    defer_after_s        60 (paginate raises RateLimitWait instead of sleeping longer)
    idempotent_post_paths  POST paths safe to retry (e.g. HubSpot batch upsert)
    verify               true (TLS verification), false, or a CA bundle path
    headers              {name: value} sent with every request (the only way to add headers:
                         unlike the provider's HttpHook, no other extra becomes a header)
    api_version          {"header": "Stripe-Version", "value": "2024-06-20"} |
                         {"query": "api-version", "value": "2024-02-01"} | {"path_prefix": "/v2"}:
                         the version the sync was written for, on every call. A ``Deprecation`` or
                         ``Sunset`` reply is logged once per notice (see :mod:`.deprecation`)
    test_endpoint        path ApiHook.test_connection() GETs (default: the base URL)
    progress_every_pages 50 (plus a progress line at least every 30 s)
"""

from __future__ import annotations

import functools
import json as jsonlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook

from apisync.errors import (
    ApiAuthError,
    ApiClientError,
    ApiConfigError,
    ApiError,
    ApiResponseError,
    RateLimitWait,
    RetriesExhaustedError,
    SourceUnreachableError,
    TruncatedBodyError,
)
from apisync.http.auth import OAuth2ClientCredentials, make_auth
from apisync.http.body import decode_response
from apisync.http.conditional import REPLAYED_HEADERS, ConditionalPages, Fetched
from apisync.http.deprecation import DeprecationNotice, deprecation_notice
from apisync.http.graphql import GraphQLOptions, check_errors, errors_by_record, graphql_options
from apisync.http.headers import parse_rate_limit, parse_retry_after
from apisync.http.latency import latency_bucket, merge_histograms
from apisync.http.network_failures import NetworkFailure, classify
from apisync.http.pagination import PageRequest, Paginator, make_paginator
from apisync.http.ratelimit import RateLimiter, Reservation, make_backend
from apisync.http.retry import (
    DEFAULT_CONNECT_ATTEMPTS,
    DEFAULT_CONNECT_BUDGET_S,
    RetryableResponseError,
    RetryPolicy,
)
from apisync.http.settings import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_DEFER_AFTER_S,
    DEFAULT_READ_TIMEOUT_S,
    ApiSettings,
)
from apisync.redaction import (
    body_excerpt,
    cut_middle,
    cut_redacted,
    is_secret_name,
    redact,
    redact_url,
    register_secret,
    strip_query_params,
)

if TYPE_CHECKING:
    from requests.auth import AuthBase

PROGRESS_EVERY_S = 30.0
DESCRIBE_CHARS = 300  # an exception's text in a retry line or an error message
URL_CHARS = 200  # a URL in a retry line or an error message (its middle goes; the cause follows it)

EXTRAS_EXAMPLE: dict[str, Any] = {
    "auth": {"type": "api_key", "header": "X-API-Key"},
    "rate_limit": {"requests": 20, "period_s": 1, "burst": 5, "backend": "sqlite"},
    "rate_limit_headers": "auto",
    "timeout": {"connect": DEFAULT_CONNECT_TIMEOUT_S, "read": DEFAULT_READ_TIMEOUT_S},
    "max_attempts": 8,
    "retry": {"connect_attempts": DEFAULT_CONNECT_ATTEMPTS, "connect_budget_s": DEFAULT_CONNECT_BUDGET_S},
    "defer_after_s": DEFAULT_DEFER_AFTER_S,
    "idempotent_post_paths": ["/crm/v3/objects/contacts/batch/upsert"],
}
STAT_KEYS = (
    "requests",
    "retries",
    "r429",
    "r5xx",
    "errors",
    "throttled_s",
    "backoff_s",
    "pages",
    "records",
    "repeated",
    "bytes",
    "token_refreshes",
    "api_errors",
    "not_modified",
)
# Stats that are dicts, merged key by key: the latency histogram (:mod:`.latency`) and the count of
# each HTTP status ("error": no status, the request failed in the network).
STAT_HISTOGRAMS = ("latency_ms", "status_counts")


@dataclass
class Page:
    """One page of a paginated read. ``state`` resumes *after* this page; ``url`` has no secrets.

    ``records`` is usually a :class:`~apisync.http.body.RawRecords`: a sequence that decodes
    a record when it is read and hands staging each record's JSON text as the server sent it.
    """

    records: Sequence[Any]
    raw: bytes
    number: int
    url: str
    resume: Callable[[], dict[str, Any]] = field(repr=False)
    repeated: int = 0  # records the server sent again, byte-identical, from the page before: dropped
    total: int | None = None  # records of the whole read, when the API said (X-Total-Count, a total field)
    total_pages: int | None = None  # pages of the whole read, when the API said (GitHub's rel="last")
    # With conditional requests (:mod:`.conditional`): what to stage next to the page, ``raw`` with it.
    validators: dict[str, Any] | None = None
    graphql_errors: list[Any] = field(default_factory=list)  # of partial results kept (http.graphql)
    # partial_results: quarantine: record index in ``records`` -> the GraphQL errors that hit it
    record_errors: dict[int, list[str]] = field(default_factory=dict)

    @functools.cached_property
    def state(self) -> dict[str, Any]:
        """``paginate(state=...)`` continues after this page; built on first use (it holds
        fingerprints of the requests made and of the page's last records, otherwise never hashed)."""
        return self.resume()


# How often a page whose body is not valid JSON (truncated in transit) is read again before failing.
MALFORMED_REREADS = 3


@dataclass(frozen=True)
class _Call:
    """One request as the hook's retry loop sees it: the attempt sends it, the callbacks log it.

    Passed as the attempt's argument, so tenacity hands it to every callback in
    ``retry_state.args``: one ``Retrying`` per hook serves every request.
    """

    method: str
    url: str
    public_url: str  # no secrets: for logs and errors
    params: dict[str, Any] | None
    json: Any
    data: Any
    headers: dict[str, str] | None
    idempotent: bool
    allow_defer: bool
    check_response: bool = True  # False: a final 4xx/5xx is returned, not raised (the provider's run())


def _call_of(retry_state: tenacity.RetryCallState) -> _Call:
    call = retry_state.args[0]
    assert isinstance(call, _Call)
    return call


def _failure_of(retry_state: tenacity.RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None


def add_stats(total: dict[str, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    """Sum two :meth:`ApiHook.stats` dicts (the operator accumulates across deferrals; a reader
    across mapped slices): numbers add, dicts (the latency histogram, the status counts) add key
    by key, so the merge is exact."""
    result = dict(total or {})
    for key, value in more.items():
        if isinstance(value, dict):
            result[key] = merge_histograms(result.get(key), value)
        elif isinstance(value, int | float):
            result[key] = round(result.get(key, 0) + value, 3)
    return result


class ApiHook(HttpHook):
    """Rate-limited, retrying, paginating HTTP hook configured from an Airflow Connection.

    :param http_conn_id: the Connection: host (+schema/port) is the base URL; login/password are
        the basic user, the OAuth2 client id/secret, or (password) the API key; extras as in
        :data:`EXTRAS_EXAMPLE`.
    :param method: default method for the provider's ``run()``; :meth:`request` takes its own.

    ``run(endpoint, data, headers, extra_options, json=, params=)`` keeps the provider's
    signature and return type (a ``requests.Response``) but is paced, retried and counted. Its
    errors are ours, not ``AirflowException("404:Not Found")``: a 4xx raises
    :class:`ApiClientError` (401/403 :class:`ApiAuthError`), retries that run out
    :class:`RetriesExhaustedError`. ``extra_options={"check_response": False}`` returns that 4xx
    or non-retried 5xx instead; 429 and retryable 5xx are retried either way. The other
    ``extra_options`` (``timeout``, ``verify``, ``stream``...) are refused with
    :class:`ApiConfigError` naming where each lives (timeouts and TLS are connection extras).
    """

    conn_name_attr = "http_conn_id"
    default_conn_name = "api_default"
    conn_type = "apisync"  # registered by provider/ (apisync-provider), so the UI Test button builds ApiHook
    hook_name = "API (apisync)"

    def __init__(self, http_conn_id: str = default_conn_name, *, method: str = "GET", **kwargs: Any) -> None:
        super().__init__(method=method, http_conn_id=http_conn_id, **kwargs)
        self.settings: ApiSettings | None = None
        self.limiter: RateLimiter | None = None
        self._session: requests.Session | None = None
        self._retrying: tenacity.Retrying | None = None
        self._auth: AuthBase | None = None
        self._secret_params: set[str] = set()
        self._stats: dict[str, Any] = dict.fromkeys(STAT_KEYS, 0)
        self._stats["throttled_s"] = 0.0  # waits for the rate limiter's budget, nothing else
        self._stats["backoff_s"] = 0.0  # sleeps backing off after an error (429, 5xx, network)
        for histogram in STAT_HISTOGRAMS:
            self._stats[histogram] = {}
        self.sleep: Callable[[float], None] = time.sleep  # every wait of the hook; tests plan them
        # Set it to make paginate()'s GETs conditional on an earlier extraction's pages.
        self.conditional: ConditionalPages | None = None
        # Deprecation/Sunset notices the server sent, one per distinct notice (see .deprecation).
        self.deprecations: list[DeprecationNotice] = []

    # -- Connection UI --------------------------------------------------------------------------
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for the connection form (needs the FAB/wtforms UI packages; none otherwise)."""
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import IntegerField, StringField
        except ImportError:
            return {}
        return {
            "auth": StringField(lazy_gettext("Auth (JSON)"), widget=BS3TextFieldWidget()),
            "rate_limit": StringField(lazy_gettext("Rate limit (JSON)"), widget=BS3TextFieldWidget()),
            "rate_limit_headers": StringField(
                lazy_gettext("Rate-limit headers"), widget=BS3TextFieldWidget()
            ),
            "defer_after_s": IntegerField(lazy_gettext("Defer after (s)"), widget=BS3TextFieldWidget()),
            "max_attempts": IntegerField(lazy_gettext("Max attempts"), widget=BS3TextFieldWidget()),
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": [],
            "relabeling": {"login": "User / OAuth2 client id", "password": "Password / API key / secret"},
            "placeholders": {
                "host": "https://api.example.com",
                "extra": jsonlib.dumps(EXTRAS_EXAMPLE, indent=1),
            },
        }

    # -- Session --------------------------------------------------------------------------------
    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Build (once) the session, auth and limiter from the Connection: the one place reading it."""
        if self._session is not None and not headers:
            return self._session
        connection = self.get_connection(self.http_conn_id)
        self._set_base_url(connection)
        settings = ApiSettings.from_extras(connection.extra_dejson, conn_id=self.http_conn_id)
        self.settings = settings
        session = requests.Session()
        session.verify = settings.verify
        session.headers.update({"Accept": "application/json", **settings.headers})
        if settings.api_version is not None and settings.api_version.header:
            session.headers[settings.api_version.header] = settings.api_version.value or ""
        if headers:
            session.headers.update(headers)
        self._auth = make_auth(
            settings.auth, connection, self.base_url, timeout=settings.timeout, verify=settings.verify
        )
        session.auth = self._auth
        register_secret(connection.password)
        for name, value in session.headers.items():
            if is_secret_name(name):
                _register_header_value(name, str(value))
        query_param = getattr(self._auth, "query_param", None)
        self._secret_params = {query_param} if query_param else set()
        session = self._configure_session_from_mount_adapters(session)
        self.limiter = self._make_limiter(settings, urlsplit(self.base_url).netloc)
        self._retrying = self._make_retrying(settings.retry)
        self._session = session
        return session

    def _make_limiter(self, settings: ApiSettings, netloc: str) -> RateLimiter:
        config = settings.rate_limit
        return RateLimiter(
            make_backend(config),
            config.key or f"{self.http_conn_id}|{netloc}",
            requests=config.requests,
            period_s=config.period_s,
            burst=config.burst,
        )

    def _make_retrying(self, policy: RetryPolicy) -> tenacity.Retrying:
        """The hook's one retry loop, configured from the policy; each request brings its :class:`_Call`.

        Per-call state lives in tenacity's ``RetryCallState``, so one object serves every request.
        """
        return tenacity.Retrying(
            stop=policy.stop,
            wait=policy.wait,
            retry=lambda retry_state: policy.should_retry(
                _failure_of(retry_state), _call_of(retry_state).idempotent
            ),
            sleep=self._sleep_before_retry,
            before_sleep=self._before_retry,
            retry_error_callback=self._give_up,
            reraise=False,
        )

    # -- Secrets --------------------------------------------------------------------------------
    def redact(self, text: str) -> str:
        """Text with every known secret and secret query parameter replaced by ``***``."""
        return redact(text)

    def _public_url(self, url: str) -> str:
        return redact_url(url, self._secret_params)

    # -- Requests -------------------------------------------------------------------------------
    def _url_for(self, endpoint_or_url: str) -> str:
        if "://" not in endpoint_or_url:
            return self.url_from_endpoint(self._versioned(endpoint_or_url))
        base, target = urlsplit(self.base_url), urlsplit(endpoint_or_url)
        if (base.scheme, base.netloc) != (target.scheme, target.netloc):
            raise ApiConfigError(
                f"refusing to send credentials to {target.scheme}://{target.netloc} "
                f"(connection host is {base.scheme}://{base.netloc})"
            )
        return endpoint_or_url

    def _versioned(self, endpoint: str) -> str:
        """``endpoint`` under the pinned ``api_version.path_prefix`` (once: ``/v2/x`` stays)."""
        pin = self.settings.api_version if self.settings is not None else None
        prefix = pin.prefix if pin is not None else ""
        if not prefix:
            return endpoint
        path = "/" + endpoint.lstrip("/")
        return path if path == prefix or path.startswith(prefix + "/") else prefix + path

    def _version_params(self, url: str, params: dict[str, Any] | None) -> dict[str, Any] | None:
        """``params`` with the pinned ``api_version.query``, unless the URL (a next link) has it."""
        pin = self.settings.api_version if self.settings is not None else None
        if pin is None or not pin.query or pin.query in (params or {}):
            return params
        if pin.query in parse_qs(urlsplit(url).query):
            return params
        return {**(params or {}), pin.query: pin.value}

    def _note_deprecation(self, response: requests.Response, public_url: str) -> None:
        notice = deprecation_notice(response.headers, urlsplit(public_url).path or public_url)
        if notice is None:
            return
        known = {(n.deprecated, n.sunset, n.links) for n in self.deprecations}
        if (notice.deprecated, notice.sunset, notice.links) in known:
            return
        self.deprecations.append(notice)
        self.log.warning("API deprecation: %s", self.redact(notice.describe()))

    def request(
        self,
        method: str,
        endpoint: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        allow_defer: bool = False,
        check_response: bool = True,
    ) -> requests.Response:
        """Send one request: paced by the shared limiter, retried per :class:`RetryPolicy`.

        Returns the 2xx/3xx response. Raises :class:`ApiClientError` at once on other 4xx,
        :class:`RetriesExhaustedError` when retries run out, and (only with ``allow_defer``)
        :class:`RateLimitWait` when a wait longer than ``defer_after_s`` is needed. With
        ``check_response=False`` a 4xx or 5xx that is not retried is returned instead of raised.
        """
        self.get_conn()
        assert self.settings is not None and self._retrying is not None
        method = method.upper()
        url = self._url_for(endpoint)
        params = self._version_params(url, params)
        call = _Call(
            method=method,
            url=url,
            public_url=self._public_url(_with_params(url, params)),
            params=params,
            json=json,
            data=data,
            headers=headers,
            idempotent=self.settings.retry.is_idempotent(method, url, json),
            allow_defer=allow_defer,
            check_response=check_response,
        )
        try:
            response: requests.Response = self._retrying(self._send_counted, call)
            return response
        except requests.RequestException as exc:  # a failure the policy does not retry at all
            self._stats["errors"] += 1
            failure = classify(exc, call.url)
            if failure is not None and failure.connect_phase:
                raise self._unreachable(call, failure, attempts=1, elapsed_s=0.0, waited_s=0.0) from None
            raise ApiResponseError(
                f"{method} {cut_middle(call.public_url, URL_CHARS)}: {self._describe(exc)} "
                "(not retried: request is not idempotent)",
                method=method,
                url=call.public_url,
            ) from None

    # -- The provider's entry points ------------------------------------------------------------
    # HttpHook's run() prepares and sends its own request, past the limiter, the retries and the
    # counters; HttpOperator and HttpSensor call it. Here each is one call of request().
    def run(
        self,
        endpoint: str | None = None,
        data: dict[str, Any] | str | None = None,
        headers: dict[str, Any] | None = None,
        extra_options: dict[str, Any] | None = None,
        **request_kwargs: Any,
    ) -> requests.Response:
        """The provider's ``run()`` as one :meth:`request` with this hook's ``method``.

        ``data`` is the query of a GET or HEAD (the provider drops it on HEAD) and the body
        otherwise; ``json=`` and ``params=`` may come as keywords; ``headers`` add to the
        connection's. ``extra_options`` takes ``check_response`` (see :func:`_check_response_option`).
        """
        check_response = _check_response_option("run", extra_options)
        json_body = request_kwargs.pop("json", None)
        params = request_kwargs.pop("params", None)
        if request_kwargs:
            raise ApiConfigError(
                f"ApiHook.run() does not send {', '.join(map(repr, sorted(request_kwargs)))}: it sends "
                "data, json=, params= and headers, as hook.request(method, endpoint, params=, json=, "
                "data=, headers=) does"
            )
        if self.method in ("GET", "HEAD"):
            if isinstance(data, str):
                raise ApiConfigError(
                    f"ApiHook.run(): {self.method} data is the query: pass a dict of parameters, not a string"
                )
            params, body = {**(params or {}), **(data or {})} or None, None
        else:
            body = data or None
        return self.request(
            self.method,
            endpoint or "",
            params=params,
            json=json_body,
            data=body,
            headers=headers or None,
            check_response=check_response,
        )

    def run_and_check(
        self,
        session: requests.Session,
        prepped_request: requests.PreparedRequest,
        extra_options: dict[Any, Any],
    ) -> requests.Response:
        """The provider's ``run_and_check()``: the prepared request sent as one :meth:`request`.

        ``session`` must be this hook's own (``hook.get_conn()``), whose auth the request already
        carries: a query-parameter key it added is taken off, and the door adds it back once.
        """
        check_response = _check_response_option("run_and_check", extra_options)
        if session is not self.get_conn():
            raise ApiConfigError(
                "ApiHook.run_and_check() sends through the hook's own session: pass hook.get_conn(), "
                "or call hook.request(method, endpoint, ...)"
            )
        if not prepped_request.method or not prepped_request.url:
            raise ApiConfigError("ApiHook.run_and_check(): the prepared request has no method or URL")
        return self.request(
            prepped_request.method,
            strip_query_params(prepped_request.url, self._secret_params),
            data=prepped_request.body,
            headers={
                name: value.decode("latin-1") if isinstance(value, bytes) else value
                for name, value in prepped_request.headers.items()
            },
            check_response=check_response,
        )

    # -- The retry loop's callbacks (see _make_retrying) ----------------------------------------
    def _before_retry(self, retry_state: tenacity.RetryCallState) -> None:
        """Count and log the retry; defer instead when the wait is longer than ``defer_after_s``
        (never for a connect-phase failure: its budget is short, and a resumed task would start it
        over)."""
        assert self.settings is not None
        call = _call_of(retry_state)
        seconds = retry_state.upcoming_sleep
        error = _failure_of(retry_state)
        self._stats["retries"] += 1
        self.log.warning(
            "%s %s: backing off %.1f s after %s; then attempt %d of at most %d",
            call.method,
            cut_middle(call.public_url, URL_CHARS),
            seconds,
            self._describe(error, call.url),
            retry_state.attempt_number + 1,
            self.settings.retry.attempts_for(error),
        )
        failure = classify(error, call.url) if error is not None else None
        connect_phase = failure is not None and failure.connect_phase
        if call.allow_defer and seconds > self.settings.defer_after_s and not connect_phase:
            raise RateLimitWait(seconds, time.time() + seconds)

    def _sleep_before_retry(self, seconds: float) -> None:
        self._stats["backoff_s"] += seconds  # error backoff only: throttled_s is the limiter's
        self.sleep(seconds)

    def _give_up(self, retry_state: tenacity.RetryCallState) -> requests.Response:
        """The attempts are spent: one error whose first line is method, URL, cause, then counts."""
        call = _call_of(retry_state)
        exc = _failure_of(retry_state)
        elapsed = time.monotonic() - retry_state.start_time
        attempts, idle = retry_state.attempt_number, retry_state.idle_for
        self._stats["errors"] += 1
        failure = classify(exc, call.url) if exc is not None else None
        if failure is not None and failure.connect_phase:
            raise self._unreachable(call, failure, attempts=attempts, elapsed_s=elapsed, waited_s=idle)
        response = exc.response if isinstance(exc, RetryableResponseError) else None
        status = exc.status if isinstance(exc, RetryableResponseError) else None
        body = body_excerpt(response.content) if response is not None else ""  # a 429 Response is falsy
        raise RetriesExhaustedError(
            f"{call.method} {cut_middle(call.public_url, URL_CHARS)}: {self._describe(exc, call.url)} "
            f"{_after(attempts, elapsed, idle)}" + (f"; body: {self.redact(body)}" if body else ""),
            method=call.method,
            url=call.public_url,
            status=status,
            attempts=attempts,
            waited_s=round(idle, 3),
            body=self.redact(body),
        )

    def _unreachable(
        self, call: _Call, failure: NetworkFailure, *, attempts: int, elapsed_s: float, waited_s: float
    ) -> SourceUnreachableError:
        cause = cut_redacted(failure.describe(), DESCRIBE_CHARS)
        return SourceUnreachableError(
            f"{call.method} {cut_middle(call.public_url, URL_CHARS)}: {cause} "
            f"{_after(attempts, elapsed_s, waited_s)}",
            method=call.method,
            url=call.public_url,
            cause=str(failure.cause),
            attempts=attempts,
            waited_s=round(waited_s, 3),
        )

    def _describe(self, exc: BaseException | None, url: str = "") -> str:
        """The failure's cause first, in few words: ``HTTP 503``, ``connection refused (...)``."""
        if isinstance(exc, RetryableResponseError):
            after = f" (Retry-After {exc.retry_after:g} s)" if exc.retry_after else ""
            return f"HTTP {exc.status}{after}"
        if exc is None:
            return "unknown error"
        failure = classify(exc, url)
        text = failure.describe() if failure is not None else f"{type(exc).__name__}: {exc}"
        return cut_redacted(text, DESCRIBE_CHARS)

    def _send(self, call: _Call) -> requests.Response:
        """One attempt: wait for a slot, send, and sort the reply (the retry loop's ``fn``)."""
        assert self.settings is not None and self.limiter is not None and self._session is not None
        method = call.method
        refreshed = False
        while True:
            reservation = self._wait_for_slot(call.allow_defer)
            sent = time.perf_counter()
            response = self._session.request(
                method,
                call.url,
                params=call.params,
                json=call.json,
                data=call.data,
                headers=call.headers,
                timeout=self.settings.timeout,
                stream=True,
            )
            _read_body(response)
            self._count_outcome(str(response.status_code), (time.perf_counter() - sent) * 1000)
            for cookie in response.cookies:  # a session cookie the server set is a credential too
                register_secret(cookie.value)
            self._stats["requests"] += 1
            self._stats["bytes"] += len(response.content)
            self.limiter.observe(parse_rate_limit(response.headers, self.settings.dialect))
            self._note_deprecation(response, call.public_url)
            status = response.status_code
            if status == 401 and isinstance(self._auth, OAuth2ClientCredentials) and not refreshed:
                self.log.info("401 from %s: refreshing the OAuth2 token and repeating once", method)
                self._auth.invalidate()
                self._stats["token_refreshes"] += 1
                refreshed = True
                continue
            if status < 400:
                return response
            public_url = self._public_url(response.url or call.url)
            if status == 429:
                self._stats["r429"] += 1
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                self.limiter.throttled(reservation, retry_after)  # the request waits Retry-After
                raise RetryableResponseError(status, retry_after, response)
            if status >= 500:
                self._stats["r5xx"] += 1
                if self.settings.retry.should_retry_status(status, call.idempotent):
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    raise RetryableResponseError(status, retry_after, response)
            if not call.check_response:
                return response  # run(extra_options={"check_response": False}): the caller judges it
            self._stats["errors"] += 1
            excerpt = body_excerpt(response.content)
            error_cls = (
                ApiAuthError if status in (401, 403) else ApiClientError if status < 500 else ApiResponseError
            )
            raise error_cls(
                f"{method} {public_url} -> HTTP {status}: {excerpt}",
                method=method,
                url=public_url,
                status=status,
                body=excerpt,
            )

    def _send_counted(self, call: _Call) -> requests.Response:
        """:meth:`_send`, counting an attempt that failed in the network under status "error"."""
        try:
            return self._send(call)
        except requests.RequestException:
            self._count_outcome("error")
            raise

    def _count_outcome(self, status: str, latency_ms: float | None = None) -> None:
        """Per request: its status ("error": failed in the network), its latency (until the whole
        body arrived), and ``api_errors`` for a network error or a 4xx/5xx other than 429."""
        counts = self._stats["status_counts"]
        counts[status] = counts.get(status, 0) + 1
        if latency_ms is not None:
            histogram, bucket = self._stats["latency_ms"], latency_bucket(latency_ms)
            histogram[bucket] = histogram.get(bucket, 0) + 1
        if status == "error" or (int(status) >= 400 and status != "429"):
            self._stats["api_errors"] += 1

    def _wait_for_slot(self, allow_defer: bool) -> Reservation:
        """Reserve a slot of the shared budget and sleep until it; reserve again when a block or a
        slower pace began while sleeping (another process's 429): the old slot predates it."""
        assert self.settings is not None and self.limiter is not None
        max_wait = self.settings.defer_after_s if allow_defer else float("inf")
        while True:
            reservation = self.limiter.reserve(max_wait=max_wait)
            if not reservation.granted:
                raise RateLimitWait(reservation.wait_s, time.time() + reservation.wait_s)
            if reservation.wait_s > 0:
                self._stats["throttled_s"] += reservation.wait_s
                self.sleep(reservation.wait_s)
            if self.limiter.recheck(reservation):
                return reservation

    # -- Pagination -----------------------------------------------------------------------------
    def paginate(
        self,
        endpoint: str,
        *,
        params: dict[str, Any] | None = None,
        pagination: dict[str, Any] | str | None = None,
        records_path: str | None = None,
        method: str = "GET",
        json: Any = None,
        state: dict[str, Any] | None = None,
        label: str | None = None,
        graphql: GraphQLOptions | dict[str, Any] | None = None,
    ) -> Iterator[Page]:
        """Yield pages one at a time (nothing accumulates); ``state`` resumes after a page.

        ``graphql``: what a GraphQL page with data and errors does (:class:`GraphQLOptions`); the
        ``errors`` array of every GraphQL page is checked (:func:`~apisync.http.graphql.check_errors`).

        Progress lines (every ``progress_every_pages`` pages and every 30 s) start with ``label``
        (default: the endpoint) and give the total and an ETA when the API says the total.

        Raises :class:`RateLimitWait` (with ``.state`` set to resume from the page not yet fetched)
        when the next wait exceeds ``defer_after_s``.
        """
        self.get_conn()
        assert self.settings is not None
        paginator = make_paginator(pagination)
        graphql_checks = graphql_options(graphql)
        if state is not None:
            if state.get("done"):
                return
            paginator.restore_extra(state)
            request = PageRequest.from_state(state["next"])
            number = int(state.get("page", 0))
        else:
            request = paginator.start(params, json)
            number = 0
        progress = _Progress(self, self.settings.progress_every_pages, label or endpoint, number)
        # A 304 replays the staged body and REPLAYED_HEADERS only, keyed by URL, params and body:
        # not for pages chosen by a request header (Range) or read from another response header.
        replayed = {name.lower() for name in REPLAYED_HEADERS}

        def replayable(request: PageRequest) -> bool:
            return not request.headers and all(h.lower() in replayed for h in paginator.response_headers())

        try:
            while True:
                for reread in range(MALFORMED_REREADS + 1):
                    try:
                        fetched = self._fetch_page(
                            method, endpoint, request, conditional=reread == 0 and replayable(request)
                        )
                        response = fetched.response
                    except RateLimitWait as wait:
                        wait.state = self._state(paginator, request, number, done=False)
                        self.log.info(
                            "rate limited for %.0f s after page %d: deferring (resume_at=%.0f)",
                            wait.wait_s,
                            number,
                            wait.resume_at,
                        )
                        raise
                    try:
                        page = self._page(
                            paginator, response, request, records_path, method, number + 1, graphql_checks
                        )
                        if self.conditional is not None:
                            page.validators = self.conditional.entry(
                                fetched, ended_read=not paginator.has_next, secret_params=self._secret_params
                            )
                        break
                    except TruncatedBodyError as exc:
                        # A body cut off mid-transfer is transient: read the same page again (the
                        # request is a read and the cursor has not moved). Anything else is final.
                        if reread == MALFORMED_REREADS:
                            raise
                        self._stats["retries"] += 1
                        self.log.warning("%s; reading it again (%d/%d)", exc, reread + 1, MALFORMED_REREADS)
                number += 1
                self._stats["pages"] += 1
                self._stats["records"] += len(page.records)
                self._stats["repeated"] += page.repeated
                yield page
                progress.tick(number, page.total, page.total_pages)
                if not paginator.has_next:
                    break
                assert paginator.next is not None
                request = paginator.next
        finally:
            self.log_summary()

    def _fetch_page(self, method: str, endpoint: str, request: PageRequest, *, conditional: bool) -> Fetched:
        """One page's response; with :attr:`conditional` set, a 304 comes back as the staged body."""

        def send(headers: dict[str, str] | None) -> requests.Response:
            return self.request(
                method,
                request.url or endpoint,
                params=request.params or None,
                json=request.json,
                # A dialect's paging headers (Range) with the conditional ones (If-None-Match).
                headers={**request.headers, **(headers or {})} or None,
                allow_defer=True,
            )

        if self.conditional is None:
            return Fetched(send(None), "")
        url = self._url_for(request.url or endpoint)
        fetched = self.conditional.fetch(
            send, method, url, request.params, request.json, conditional=conditional
        )
        self._stats["not_modified"] += fetched.not_modified
        return fetched

    def _page(
        self,
        paginator: Paginator,
        response: requests.Response,
        request: PageRequest,
        records_path: str | None,
        method: str,
        number: int,
        graphql: GraphQLOptions | None = None,
    ) -> Page:
        public_url = self._public_url(response.url)
        try:
            data = decode_response(response, paginator.records_location(records_path))
        except ValueError as exc:
            self._stats["errors"] += 1
            raise TruncatedBodyError(
                f"page {number}: {method} {public_url} returned invalid JSON ({exc}); "
                f"body starts: {body_excerpt(response.content, 200)}",
                method=method,
                url=public_url,
                status=response.status_code,
                body=body_excerpt(response.content),
            ) from None
        graphql = graphql or GraphQLOptions()
        graphql_errors = check_errors(
            data,
            request.json,
            paginator=paginator,
            records_path=records_path,
            options=graphql,
            method=method,
            url=public_url,
        )
        paginator.check(data, method=method, url=public_url)
        records = paginator.records(data, records_path, method=method, url=public_url)
        record_errors: dict[int, list[str]] = {}
        if graphql_errors and graphql.partial_results == "quarantine":
            by_record, _ = errors_by_record(graphql_errors, paginator=paginator, records_path=records_path)
            # The repeat guard dropped the page's first ``repeated`` records (copies of records
            # already staged): the indexes count from the first record kept.
            record_errors = {
                index - paginator.repeated: messages
                for index, messages in by_record.items()
                if index >= paginator.repeated
            }
        paginator.update_state(response, data, records, request)
        if paginator.next is not None and paginator.next.url:
            paginator.next.url = strip_query_params(paginator.next.url, self._secret_params)
        # Cursor cycles, max_pages and a full page without a next marker end the read here.
        paginator.follow(request, number=number, method=method, url=public_url)
        return Page(
            records=records,
            raw=response.content,
            number=number,
            url=public_url,
            resume=self._state_later(paginator, paginator.next, number, done=not paginator.has_next),
            repeated=paginator.repeated,
            total=paginator.total if paginator.total is not None else _header_total(response),
            total_pages=paginator.total_pages,
            graphql_errors=graphql_errors,
            record_errors=record_errors,
        )

    @staticmethod
    def _state(
        paginator: Paginator, request: PageRequest | None, number: int, *, done: bool
    ) -> dict[str, Any]:
        return ApiHook._state_later(paginator, request, number, done=done)()

    @staticmethod
    def _state_later(
        paginator: Paginator, request: PageRequest | None, number: int, *, done: bool
    ) -> Callable[[], dict[str, Any]]:
        """The resume state as of now, built when called."""
        head = {
            "type": paginator.type,
            "page": number,
            "done": done,
            "next": request.to_state() if request is not None and not done else None,
        }
        extra = paginator.extra_state_later()
        return lambda: {**head, **extra()}

    # -- Observability --------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters for this hook: requests, retries, r429, r5xx, errors, throttled_s (waits for the
        rate limiter's budget only), backoff_s (sleeps after a 429, 5xx or network error only: the
        two never overlap), pages, records, repeated (byte-identical repeats the paginator
        dropped), bytes, token_refreshes, api_errors (network errors and 4xx/5xx other than 429,
        per attempt), not_modified (pages a 304 answered, their staged body replayed: see
        :mod:`.conditional`); ``latency_ms`` (histogram, see :mod:`.latency`) and ``status_counts``
        ({"200": n, "error": n}) are dicts. :func:`add_stats` merges two of them exactly."""
        stats = dict(self._stats)
        for histogram in STAT_HISTOGRAMS:
            stats[histogram] = dict(self._stats[histogram])
        stats["throttled_s"] = round(stats["throttled_s"], 3)
        stats["backoff_s"] = round(stats["backoff_s"], 3)
        if isinstance(self._auth, OAuth2ClientCredentials):
            stats["token_refreshes"] = max(stats["token_refreshes"], self._auth.refreshes - 1)
        return stats

    def log_summary(self) -> None:
        s = self.stats()
        self.log.info(
            "%s summary: %d requests, %d retries, %d x 429, %.1f s throttled (rate limit), "
            "%.1f s backing off (errors), %d pages, %d records, %d bytes",
            self.http_conn_id,
            s["requests"],
            s["retries"],
            s["r429"],
            s["throttled_s"],
            s["backoff_s"],
            s["pages"],
            s["records"],
            s["bytes"],
        )

    def test_connection(self) -> tuple[bool, str]:
        """GET ``extra.test_endpoint`` (or the base URL); reachable and authorized is success."""
        try:
            self.get_conn()
            assert self.settings is not None
            response = self.request("GET", self.settings.test_endpoint or "")
            return True, f"Connection OK: HTTP {response.status_code}"
        except ApiClientError as exc:
            if exc.status in (401, 403) or self.settings is None or self.settings.test_endpoint:
                return False, str(exc)
            return True, f"Server reachable and credentials accepted ({exc.status} on the base URL)"
        except (ApiError, requests.RequestException, ValueError) as exc:
            return False, self.redact(str(exc))


BODY_READ_CHUNK = 1 << 20


def _register_header_value(name: str, value: str) -> None:
    """Register a secret header's value, and each cookie of a ``Cookie`` header on its own."""
    register_secret(value)
    if "cookie" in name.lower():
        for part in value.split(";"):
            register_secret(part.partition("=")[2].strip())


def _read_body(response: requests.Response) -> None:
    """Read the whole body now, in 1 MiB reads, and give the connection back to the pool.

    What ``stream=False`` does, but requests reads 10 KiB at a time there: ~3 ms of CPU for a
    2 MB page, on the critical path of every page. ``iter_content`` raises the same requests
    exceptions (retried the same way); the body is cached where ``.content`` looks for it.
    """
    try:
        response._content = b"".join(response.iter_content(BODY_READ_CHUNK))
    finally:
        response.close()


# extra_options of the provider's run() that ask for what the door does anyway (accepted), and
# where the others live instead.
DOOR_EXTRA_OPTIONS: dict[str, Any] = {"allow_redirects": True, "stream": False}
EXTRA_OPTION_HOMES = {
    "timeout": 'the connection extra \'timeout\' ({"connect": s, "read": s})',
    "verify": "the connection extra 'verify'",
    "verify_ssl": "the connection extra 'verify'",
    "stream": "not supported: the hook reads every body whole (paginate() reads page by page)",
    "allow_redirects": "not supported: the hook always follows redirects",
}


def _check_response_option(caller: str, extra_options: dict[str, Any] | None) -> bool:
    """``check_response`` from the provider's ``extra_options`` (default True); refuse the rest.

    True: a 4xx raises :class:`ApiClientError` (:class:`ApiAuthError` for 401/403), like
    :meth:`ApiHook.request`. False: that response is returned for the caller to judge, as the
    provider does. Either way 429 and retryable 5xx are retried, and raise
    :class:`RetriesExhaustedError` when the attempts run out: the door never hands back a 429.
    Timeouts and TLS verification are connection extras, the same for every request.
    """
    options = dict(extra_options or {})
    check_response = options.pop("check_response", True)
    if not isinstance(check_response, bool):
        raise ApiConfigError(f"ApiHook.{caller}(): extra_options 'check_response' must be true or false")
    for name, value in DOOR_EXTRA_OPTIONS.items():
        if name in options and options[name] == value:
            del options[name]
    if options:
        homes = "; ".join(
            f"{name!r}: {EXTRA_OPTION_HOMES.get(name, 'not supported by ApiHook')}"
            for name in sorted(options)
        )
        raise ApiConfigError(
            f"ApiHook.{caller}(): extra_options are not taken per call, only 'check_response' is; {homes}"
        )
    return check_response


def _after(attempts: int, elapsed_s: float, waited_s: float) -> str:
    """``after 3 attempts in 7.2 s (waited 6.9 s backing off)``; ``after 1 attempt (not retried)``."""
    if attempts <= 1:
        return "after 1 attempt (not retried)"
    return f"after {attempts} attempts in {elapsed_s:.1f} s (waited {waited_s:.1f} s backing off)"


def _with_params(url: str, params: dict[str, Any] | None) -> str:
    if not params:
        return url
    prepared = requests.Request("GET", url, params=params).prepare()
    return prepared.url or url


def _header_total(response: requests.Response) -> int | None:
    """``X-Total-Count`` (json-server, many REST APIs): the records of the whole read."""
    value = response.headers.get("X-Total-Count", "").strip()
    return int(value) if value.isdigit() else None


class _Progress:
    """Logs page, records, rate (and with a total: percent and ETA) every N pages or ~30 s.

    ``orders: page 12, 1,200 of 5,000 records (24%), 3.1 pages/s, ETA 41 s``; with a page count
    only (GitHub's ``rel="last"``) ``issues: page 12 of 50 (24%), 1,200 records, 3.1 pages/s, ETA
    12 s``; without either ``orders: page 12, 1,200 records, 3.1 pages/s, 310 records/s``. The
    counts and rates are this hook's (after a deferral: since the resume), the page number the read's.
    """

    def __init__(self, hook: ApiHook, every_pages: int, label: str, first_page: int) -> None:
        self.hook, self.every_pages, self.label = hook, max(1, every_pages), label
        self.started = self.last = time.monotonic()
        self.pages_at_start = hook._stats["pages"]
        self.records_at_start = hook._stats["records"] + hook._stats["repeated"]
        self.first_page = first_page

    def tick(self, page: int, total: int | None, total_pages: int | None = None) -> None:
        now = time.monotonic()
        stats = self.hook._stats
        pages = stats["pages"] - self.pages_at_start
        if pages % self.every_pages and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        records = stats["records"] + stats["repeated"] - self.records_at_start
        rate = records / elapsed
        if total is None and total_pages:
            pages_left = max(total_pages - page, 0)
            self.hook.log.info(
                "%s: page %d of %d (%d%%), %s records, %.1f pages/s, ETA %.0f s, %d x 429",
                self.label,
                page,
                total_pages,
                min(100, page * 100 // total_pages),
                f"{records:,}",
                pages / elapsed,
                pages_left / (pages / elapsed) if pages else 0.0,
                stats["r429"],
            )
            return
        if total is None:
            self.hook.log.info(
                "%s: page %d, %s records, %.1f pages/s, %.0f records/s, %d x 429",
                self.label,
                page,
                f"{records:,}",
                pages / elapsed,
                rate,
                stats["r429"],
            )
            return
        left = max(total - records, 0)
        eta = left / rate if rate > 0 else 0.0
        self.hook.log.info(
            "%s: page %d, %s of %s records (%d%%), %.1f pages/s, ETA %.0f s, %d x 429",
            self.label,
            page,
            f"{records:,}",
            f"{total:,}",
            min(100, records * 100 // max(total, 1)),
            pages / elapsed,
            eta,
            stats["r429"],
        )
