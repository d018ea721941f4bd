"""What went wrong on the wire, in a few words: a transport exception sorted by cause and phase.

requests wraps urllib3, which wraps the socket's error: ``ConnectionError(MaxRetryError(reason=
NewConnectionError(... [Errno 111] Connection refused)))``, printed as one 250-character repr whose
cause comes last (and is the first thing a cut loses). :func:`classify` walks the wrapped exceptions
(``args``, ``reason``, ``__cause__``, ``__context__``) and names the cause up front:

============================  ===========  ====================================================
cause                         phase        retried (see :mod:`.retry`)
============================  ===========  ====================================================
unknown host                  connect      never: the name does not exist (EAI_NONAME/NODATA)
TLS certificate rejected      connect      never: the certificate will not change by itself
connection refused            connect      the connect budget: few attempts, short backoff
name resolution failed        connect      (temporary DNS failure, EAI_AGAIN) the connect budget
connect timeout               connect      the connect budget
TLS handshake failed          connect      the connect budget
host unreachable              connect      (no route, network down) the connect budget
read timeout                  response     idempotent requests, up to ``max_attempts``
connection dropped            response     idempotent requests, up to ``max_attempts``
============================  ===========  ====================================================

"Connect phase" means nothing reached the server: safe to repeat for every method. Written here
rather than taken from a library: urllib3 and requests expose the pieces (exception types, the
wrapped ``OSError``) but no classification of them.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

__all__ = ["Cause", "NetworkFailure", "classify", "wrapped"]


class Cause(StrEnum):
    UNKNOWN_HOST = "unknown host"
    TLS_CERTIFICATE = "TLS certificate rejected"
    REFUSED = "connection refused"
    NAME_RESOLUTION = "name resolution failed"
    CONNECT_TIMEOUT = "connect timeout"
    TLS_HANDSHAKE = "TLS handshake failed"
    UNREACHABLE = "host unreachable"
    READ_TIMEOUT = "read timeout"
    DROPPED = "connection dropped"
    OTHER = "network error"


CONNECT_PHASE = frozenset(
    {
        Cause.UNKNOWN_HOST,
        Cause.TLS_CERTIFICATE,
        Cause.REFUSED,
        Cause.NAME_RESOLUTION,
        Cause.CONNECT_TIMEOUT,
        Cause.TLS_HANDSHAKE,
        Cause.UNREACHABLE,
    }
)
# Answers, not silence: another attempt a few seconds later meets the same answer.
NOT_RETRIED = frozenset({Cause.UNKNOWN_HOST, Cause.TLS_CERTIFICATE})

_NO_SUCH_NAME = {getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)}
_NO_SUCH_NAME_TEXT = ("name or service not known", "nodename nor servname", "no address associated")
# urllib3's "HTTPConnectionPool(host='h', port=1): " / "HTTPSConnection(host='h', port=1): " prefix.
_POOL_PREFIX = re.compile(r"^\w+\(host='[^']*', port=\d+\): ")


@dataclass(frozen=True)
class NetworkFailure:
    """A transport failure: its :class:`Cause`, the root error's own words, and the host."""

    cause: Cause
    detail: str
    host: str = ""

    @property
    def connect_phase(self) -> bool:
        """Nothing reached the server (refused, DNS, TLS, connect timeout): safe to repeat."""
        return self.cause in CONNECT_PHASE

    @property
    def retried(self) -> bool:
        return self.cause not in NOT_RETRIED

    def describe(self) -> str:
        """``connection refused ([Errno 111] Connection refused)``: the cause first, then its words."""
        what = f"{self.cause} {self.host!r}" if self.cause is Cause.UNKNOWN_HOST and self.host else self.cause
        return f"{what} ({self.detail})" if self.detail else str(what)


def wrapped(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (``args``, urllib3's ``reason``, cause, context)."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        error = pending.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        pending.extend((*error.args, getattr(error, "reason", None), error.__cause__, error.__context__))


def classify(exc: BaseException, url: str = "") -> NetworkFailure | None:
    """The :class:`NetworkFailure` behind a requests exception, or None when ``exc`` is not one."""
    if not isinstance(exc, requests.RequestException):
        return None
    chain = list(wrapped(exc))
    host = urlsplit(url).hostname or "" if url else ""
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            return NetworkFailure(Cause.TLS_CERTIFICATE, _words(error), host)
    for error in chain:
        if isinstance(error, socket.gaierror | NameResolutionError):
            gai = next((e for e in chain if isinstance(e, socket.gaierror)), None)
            detail = _words(gai if gai is not None else error)
            unknown = (gai is not None and gai.errno in _NO_SUCH_NAME) or any(
                text in detail.lower() for text in _NO_SUCH_NAME_TEXT
            )
            return NetworkFailure(Cause.UNKNOWN_HOST if unknown else Cause.NAME_RESOLUTION, detail, host)
    for error in chain:
        if isinstance(error, ConnectionRefusedError):
            return NetworkFailure(Cause.REFUSED, _words(error), host)
    new_connection = next((e for e in chain if isinstance(e, NewConnectionError)), None)
    # urllib3's NewConnectionError subclasses ConnectTimeoutError (history): not a timeout.
    connect_timeout = next(
        (e for e in chain if isinstance(e, ConnectTimeoutError) and not isinstance(e, NewConnectionError)),
        None,
    )
    if connect_timeout is not None or (isinstance(exc, requests.ConnectTimeout) and new_connection is None):
        return NetworkFailure(Cause.CONNECT_TIMEOUT, _words(connect_timeout or exc), host)
    if isinstance(exc, requests.exceptions.SSLError):
        ssl_error = next((e for e in chain if isinstance(e, ssl.SSLError)), exc)
        return NetworkFailure(Cause.TLS_HANDSHAKE, _words(ssl_error), host)
    if new_connection is not None:  # another OSError while connecting: no route, network down...
        return NetworkFailure(Cause.UNREACHABLE, _words(_os_error(chain) or new_connection), host)
    read_timeout = next((e for e in chain if isinstance(e, ReadTimeoutError)), None)
    if read_timeout is not None or isinstance(exc, requests.ReadTimeout):
        return NetworkFailure(Cause.READ_TIMEOUT, _words(read_timeout or exc), host)
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        root = _os_error(chain) or next((e for e in chain if isinstance(e, ProtocolError)), exc)
        return NetworkFailure(Cause.DROPPED, _words(root), host)
    return NetworkFailure(Cause.OTHER, f"{type(exc).__name__}: {_words(exc)}", host)


def _os_error(chain: list[BaseException]) -> OSError | None:
    """The socket's own error in the chain (requests' exceptions are OSErrors too: not those)."""
    return next(
        (e for e in chain if isinstance(e, OSError) and not isinstance(e, requests.RequestException)), None
    )


def _words(error: BaseException) -> str:
    """The error's own message without urllib3's pool/connection prefix."""
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return f"certificate verify failed: {error.verify_message}"
    text = str(error).strip()
    if len(error.args) > 1 and isinstance(error.args[-1], str) and text.startswith("("):
        text = error.args[-1]  # urllib3's ConnectTimeoutError(conn, message) prints as a tuple
    if isinstance(error, NewConnectionError):
        text = text.partition("Failed to establish a new connection: ")[2] or text
    return _POOL_PREFIX.sub("", text)
