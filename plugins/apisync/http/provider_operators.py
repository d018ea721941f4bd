"""ApiHttpOperator and ApiHttpSensor: the http provider's HttpOperator and HttpSensor through ApiHook.

Pointed at an apisync connection, the provider's own classes send past the door: ``HttpOperator``
asks the connection for its hook (type ``http``: a plain ``HttpHook``) and ``HttpSensor`` builds a
plain ``HttpHook`` itself, so no rate limit, no retries, no counters, and our extras sent as
headers. These subclasses keep the provider's arguments and behaviour (``endpoint``, ``data``,
``headers``, ``pagination_function``, ``retry_args``, ``response_check``, the 404 allowlist...) and
use :class:`ApiHook` instead: one hook per task try, so its :meth:`ApiHook.stats` cover every
request of the try (each page of a ``pagination_function``, each poke) and are logged at the end.

Neither defers: the provider's deferrable mode sends from the triggerer through
``HttpAsyncHook``, past the door, so ``deferrable=True`` is refused (and the
``[operators] default_deferrable`` setting does not apply). A sensor frees its worker slot between
pokes with ``mode="reschedule"``; long rate-limit waits of a paged read defer in
:class:`~apisync.http.operator.PagedExtractOperator`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from airflow.providers.http.operators.http import HttpOperator
from airflow.providers.http.sensors.http import HttpSensor
from airflow.sdk.exceptions import AirflowException

from apisync.errors import ApiConfigError, ApiResponseError
from apisync.http.hook import ApiHook

if TYPE_CHECKING:
    from airflow.sdk import Context, PokeReturnValue
    from requests import Response


def _api_hook(task: HttpOperator | HttpSensor) -> ApiHook:
    """The task's :class:`ApiHook`, with the provider's connection and keep-alive arguments."""
    return ApiHook(
        task.http_conn_id,
        method=task.method,
        tcp_keep_alive=task.tcp_keep_alive,
        tcp_keep_alive_idle=task.tcp_keep_alive_idle,
        tcp_keep_alive_count=task.tcp_keep_alive_count,
        tcp_keep_alive_interval=task.tcp_keep_alive_interval,
    )


def _refuse_deferrable(cls_name: str, deferrable: bool, instead: str) -> None:
    if deferrable:
        raise ApiConfigError(
            f"{cls_name} does not defer: the http provider's deferrable mode sends from the triggerer "
            "through HttpAsyncHook, past ApiHook's rate limit and retries; "
            f"leave deferrable=False ({instead})"
        )


class ApiHttpOperator(HttpOperator):
    """``HttpOperator`` whose every request (each page too) goes through :class:`ApiHook`.

    Auth, rate limit, timeouts and retries come from the connection extras; ``extra_options``
    takes ``check_response`` only (see :meth:`ApiHook.run`). ``retry_args`` add an outer loop of
    attempts around the hook's own retries. Returns what ``HttpOperator`` returns.
    """

    def __init__(self, *, deferrable: bool = False, auth_type: Any = None, **kwargs: Any) -> None:
        _refuse_deferrable(
            type(self).__name__,
            deferrable,
            "long rate-limit waits of a paged read defer in PagedExtractOperator",
        )
        if auth_type is not None:
            raise ApiConfigError(
                f"{type(self).__name__} takes its auth from the connection extra 'auth' "
                '({"type": "basic" | "bearer" | "api_key" | "oauth2" | "none"}), not from auth_type'
            )
        super().__init__(deferrable=False, **kwargs)

    @functools.cached_property
    def hook(self) -> ApiHook:
        """One :class:`ApiHook` for the task try (HttpOperator builds a new hook at every use)."""
        return _api_hook(self)

    def execute(self, context: Context) -> Any:
        try:
            return super().execute(context)
        finally:
            self.hook.log_summary()

    def process_response(self, context: Context, response: Response | list[Response]) -> Any:
        """The provider's, with the Task SDK's ``determine_kwargs``: 6.3.0 imports it from
        ``airflow.utils.operator_helpers``, which warns (deprecated) on every run under Airflow 3.3."""
        from airflow.sdk.bases.decorator import determine_kwargs

        make_default_response = self._default_response_maker(response=response)
        if self.log_response:
            self.log.info(make_default_response())
        if self.response_check:
            kwargs = determine_kwargs(self.response_check, [response], context)
            if not self.response_check(response, **kwargs):
                raise AirflowException("Response check returned False.")
        if self.response_filter:
            kwargs = determine_kwargs(self.response_filter, [response], context)
            return self.response_filter(response, **kwargs)
        return make_default_response()


class ApiHttpSensor(HttpSensor):
    """``HttpSensor`` whose every poke goes through :class:`ApiHook`, paced and counted.

    As in the provider, a status in ``response_error_codes_allowlist`` (default ``["404"]``) makes
    the poke return False; any other failure raises the hook's error (:class:`ApiClientError`,
    :class:`RetriesExhaustedError`...). With ``extra_options={"check_response": False}`` every
    final response reaches ``response_check``.
    """

    def __init__(self, *, deferrable: bool = False, **kwargs: Any) -> None:
        _refuse_deferrable(
            type(self).__name__, deferrable, 'mode="reschedule" frees the worker slot between pokes'
        )
        super().__init__(deferrable=False, **kwargs)

    @functools.cached_property
    def hook(self) -> ApiHook:
        """One :class:`ApiHook` for every poke of the task try."""
        return _api_hook(self)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """The provider's ``poke()`` with :class:`ApiHook` (it builds a plain ``HttpHook`` inline)."""
        from airflow.sdk.bases.decorator import determine_kwargs

        self.log.info("Poking: %s", self.endpoint)
        try:
            response = self.hook.run(
                self.endpoint,
                data=self.request_params,
                headers=self.headers,
                extra_options=self.extra_options,
                **self.request_kwargs,
            )
        except ApiResponseError as exc:
            if exc.status is not None and str(exc.status) in self.response_error_codes_allowlist:
                return False
            raise
        if self.response_check:
            kwargs = determine_kwargs(self.response_check, [response], context)
            return self.response_check(response, **kwargs)
        return True

    def execute(self, context: Context) -> Any:
        try:
            return super().execute(context)
        finally:
            self.hook.log_summary()
