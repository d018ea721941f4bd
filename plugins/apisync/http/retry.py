"""When to retry a request, and how long to wait: the policy behind the hook's one ``tenacity.Retrying``.

What is retried:

- ``429 Too Many Requests`` and connection failures *before* the request was sent (connect
  timeout, refused): for every method, because the server did not process the request.
- ``500/502/503/504``, read timeouts and dropped connections: only for idempotent requests, since
  the server may have acted on it. Idempotent = GET, HEAD, OPTIONS, PUT, DELETE; a POST only when its
  path is listed in ``extra["idempotent_post_paths"]`` (e.g. HubSpot batch upsert by idProperty:
  sending the same inputs twice leaves one record), or when it is a GraphQL *query* on any path
  (``/``, ``/graphql``, ``/api``...): the operation the body runs (its ``operationName``, else its
  only operation; ``{ ... }`` alone is a query) is read from the document by
  :func:`graphql_operation`. A mutation, a subscription, or a document whose operation cannot be
  told is never retried after it was sent.
- Anything else (other 4xx) fails at once with a body excerpt.

Retryability is decided by exception *type* (:meth:`RetryPolicy.should_retry`): a 429/5xx is a
:class:`RetryableResponseError`; a transport failure is sorted by :func:`~.network_failures.classify`
(refused, unknown host, TLS, timeouts...), walking the wrapped exceptions.

How often: a request gets at most ``max_attempts`` (8) attempts, but a failure in the *connect
phase* (refused, connect timeout, temporary DNS failure, TLS handshake) ends it much sooner: at most
``connect_attempts`` (3) attempts and ``connect_budget_s`` (15 s) of backoff in all, since a source
that refuses connections is down, not slow, and minutes of retries only delay the alert. An unknown
host and a rejected TLS certificate are not retried at all: they are answers, not silence. Read
timeouts, 5xx and 429 keep ``max_attempts``.

How long (:class:`BackoffAtLeastRetryAfter`): exponential backoff with full jitter (tenacity's
``wait_exponential_jitter``: 0.5 s, 1 s, 2 s... capped at 60 s), and never less than the server's
``Retry-After``. ``Retry-After: 0`` or a date in the past cannot produce a hot loop: the backoff
term is at least ``MIN_RETRY_WAIT_S``. Connect-phase failures back off from
``CONNECT_INITIAL_BACKOFF_S`` (2 s, 4 s...: a restarting server gets a few seconds), each wait
clipped to what is left of the budget, and the attempts stop when the budget is spent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, wait_exponential_jitter
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from apisync.http.network_failures import NetworkFailure, classify

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MIN_RETRY_WAIT_S = 0.5
MAX_BACKOFF_S = 60.0
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_CONNECT_ATTEMPTS = 3
DEFAULT_CONNECT_BUDGET_S = 15.0
CONNECT_INITIAL_BACKOFF_S = 2.0

OPERATION_TYPES = frozenset({"query", "mutation", "subscription"})
# The lexical tokens of a GraphQL document that matter for finding its operations (spec section 2.1):
# strings and comments are skipped whole, so a "mutation" inside one is text.
_GRAPHQL_TOKEN = re.compile(
    r'(?P<skip>[\s,\ufeff]+|#[^\n\r]*|"""(?:\\"""|[^"]|"(?!""))*"""|"(?:[^"\\\n\r]|\\.)*")'
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
    r"|(?P<punct>.)",
    re.DOTALL,
)


def graphql_operations(document: str) -> list[tuple[str, str | None]]:
    """The operations of a GraphQL document as (type, name), in order; ``{ ... }`` is an anonymous
    query, fragments are not operations.

    A tokenizer, not a parser (graphql-core is not a dependency, and only the top level matters):
    it skips strings and comments, ignores what sits in parentheses (variable definitions, whose
    default values may hold braces) and counts braces to stay at the top level.
    """
    operations: list[tuple[str, str | None]] = []
    depth = parens = 0
    header: str | None = None  # "operation" or "fragment": between its keyword and its "{"
    name_next = False  # the next name is the operation's name
    for token in _GRAPHQL_TOKEN.finditer(document):
        kind, text = token.lastgroup, token.group()
        if kind == "skip":
            continue
        if text in "()" and kind == "punct":
            parens += 1 if text == "(" else -1
            name_next = False
            continue
        if parens > 0:
            continue
        if text == "{":
            if depth == 0 and header is None:
                operations.append(("query", None))
            depth, header, name_next = depth + 1, None, False
        elif text == "}":
            depth = max(0, depth - 1)
        elif depth == 0 and kind == "name":
            if name_next:
                operations[-1] = (operations[-1][0], text)
                name_next = False
            elif header is None and text in OPERATION_TYPES:
                operations.append((text, None))
                header, name_next = "operation", True
            elif header is None and text == "fragment":
                header = "fragment"
        else:
            name_next = False
    return operations


def graphql_operation(body: Any) -> str | None:
    """The type of the operation a GraphQL request body runs (``query``, ``mutation``,
    ``subscription``); None when the body is not GraphQL or the operation cannot be told (several
    operations and no ``operationName``, or an ``operationName`` the document lacks)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return None
    operations = graphql_operations(body["query"])
    wanted = body.get("operationName")
    if isinstance(wanted, str) and wanted:
        kinds = [kind for kind, name in operations if name == wanted]
        return kinds[0] if len(kinds) == 1 else None
    return operations[0][0] if len(operations) == 1 else None


def is_graphql_query(body: Any) -> bool:
    """True for a GraphQL request body whose operation is a query (safe to send again), on any path."""
    return graphql_operation(body) == "query"


class RetryableResponseError(Exception):
    """A 429/5xx response the policy retries, with the server's Retry-After (seconds) if it sent one.

    The retry loop's signal, raised by an attempt and consumed by tenacity: it never leaves the
    hook (when the attempts run out it becomes :class:`~apisync.errors.RetriesExhaustedError`).
    """

    def __init__(
        self, status: int, retry_after: float | None, response: requests.Response | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after
        self.response = response


class BackoffAtLeastRetryAfter(wait_base):
    """tenacity wait strategy: "backoff, but at least Retry-After".

    The jittered exponential backoff (``wait_exponential_jitter``, floored at ``MIN_RETRY_WAIT_S``
    so ``Retry-After: 0`` cannot hot-loop), or the Retry-After carried by the failed attempt's
    :class:`RetryableResponseError` when that is longer.
    """

    def __init__(
        self,
        *,
        multiplier: float = MIN_RETRY_WAIT_S,
        max_s: float = MAX_BACKOFF_S,
        connect_budget_s: float = DEFAULT_CONNECT_BUDGET_S,
    ) -> None:
        self.backoff = wait_exponential_jitter(
            multiplier=multiplier, max=max_s, jitter=1.0, min=MIN_RETRY_WAIT_S
        )
        self.connect_backoff = wait_exponential_jitter(
            multiplier=CONNECT_INITIAL_BACKOFF_S, max=max_s, jitter=1.0
        )
        self.connect_budget_s = connect_budget_s

    def __call__(self, retry_state: RetryCallState) -> float:
        failure = _network_failure(retry_state)
        if failure is not None and failure.connect_phase:
            left = max(0.0, self.connect_budget_s - retry_state.idle_for)
            return min(self.connect_backoff(retry_state), left)
        return max(self.backoff(retry_state), _retry_after(retry_state))


class StopWhenSpent(stop_base):
    """tenacity stop strategy: ``max_attempts`` for every failure; for a connect-phase failure also
    ``connect_attempts``, or no budget left (runs after the wait: ``upcoming_sleep`` is known)."""

    def __init__(self, max_attempts: int, connect_attempts: int, connect_budget_s: float) -> None:
        self.max_attempts = max_attempts
        self.connect_attempts = connect_attempts
        self.connect_budget_s = connect_budget_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        if retry_state.attempt_number >= self.max_attempts:
            return True
        failure = _network_failure(retry_state)
        if failure is None or not failure.connect_phase:
            return False
        spent = retry_state.idle_for >= self.connect_budget_s - 1e-9
        return retry_state.attempt_number >= self.connect_attempts or spent


def _network_failure(retry_state: RetryCallState) -> NetworkFailure | None:
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None and outcome.failed else None
    return classify(error) if error is not None else None


def _retry_after(retry_state: RetryCallState) -> float:
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None and outcome.failed else None
    if isinstance(error, RetryableResponseError) and error.retry_after:
        return error.retry_after
    return 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Retry decisions for one connection."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    idempotent_post_paths: frozenset[str] = field(default_factory=frozenset)
    initial_backoff_s: float = MIN_RETRY_WAIT_S
    max_backoff_s: float = MAX_BACKOFF_S
    connect_attempts: int = DEFAULT_CONNECT_ATTEMPTS
    connect_budget_s: float = DEFAULT_CONNECT_BUDGET_S

    @classmethod
    def for_connection(
        cls,
        max_attempts: int,
        idempotent_post_paths: Iterable[str] = (),
        *,
        connect_attempts: int = DEFAULT_CONNECT_ATTEMPTS,
        connect_budget_s: float = DEFAULT_CONNECT_BUDGET_S,
    ) -> RetryPolicy:
        """The policy of a connection's validated extras (:class:`~apisync.http.settings.ApiSettings`)."""
        return cls(
            max_attempts=max_attempts,
            idempotent_post_paths=frozenset("/" + p.strip("/") for p in idempotent_post_paths),
            connect_attempts=connect_attempts,
            connect_budget_s=connect_budget_s,
        )

    def attempts_for(self, exc: BaseException | None) -> int:
        """How many attempts a request that keeps failing with ``exc`` gets at most."""
        failure = classify(exc) if exc is not None else None
        if failure is not None and failure.connect_phase:
            return 1 if not failure.retried else min(self.max_attempts, self.connect_attempts)
        return self.max_attempts

    def is_idempotent(self, method: str, url: str, json: Any = None) -> bool:
        method = method.upper()
        if method in IDEMPOTENT_METHODS:
            return True
        if method != "POST":
            return False
        path = "/" + urlsplit(url).path.strip("/")
        if any(path == p or path.endswith(p) for p in self.idempotent_post_paths):
            return True
        return is_graphql_query(json)

    def should_retry_status(self, status: int, idempotent: bool) -> bool:
        if status == 429:
            return True
        return idempotent and status in RETRY_STATUSES

    @staticmethod
    def should_retry_exception(exc: BaseException, idempotent: bool) -> bool:
        """A transport failure: retried if the request was never sent, or is safe to repeat; an
        unknown host or a rejected certificate never."""
        failure = classify(exc)
        if failure is None or not failure.retried:
            return False
        if failure.connect_phase:
            return True
        return idempotent and isinstance(exc, requests.ConnectionError | requests.Timeout)

    def should_retry(self, exc: BaseException | None, idempotent: bool) -> bool:
        """The retry loop's predicate: a retryable response, or a retryable transport failure."""
        if isinstance(exc, RetryableResponseError):
            return True
        return isinstance(exc, requests.RequestException) and self.should_retry_exception(exc, idempotent)

    @property
    def wait(self) -> BackoffAtLeastRetryAfter:
        return BackoffAtLeastRetryAfter(
            multiplier=self.initial_backoff_s,
            max_s=self.max_backoff_s,
            connect_budget_s=self.connect_budget_s,
        )

    @property
    def stop(self) -> StopWhenSpent:
        return StopWhenSpent(self.max_attempts, self.connect_attempts, self.connect_budget_s)

    def wait_for(self, attempt: int, retry_after: float | None) -> float:
        """Seconds the retry loop waits after ``attempt`` (1-based) failed with this Retry-After.

        Asks :attr:`wait` with the retry state tenacity itself would hold at that point.
        """
        state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
        state.attempt_number = attempt
        error = RetryableResponseError(429, retry_after)
        state.set_exception((RetryableResponseError, error, None))
        return self.wait(state)
