"""Authentication strategies, as ``requests.auth.AuthBase`` objects built from the Connection.

Connection fields: ``login``/``password`` hold the basic user/password, the OAuth2 client id/secret,
or (password only) the API key / bearer token; ``extra["auth"]`` picks the strategy::

    {"type": "api_key", "header": "X-API-Key"}    {"type": "api_key", "query": "api_key"}
    {"type": "bearer"}    {"type": "basic"}    {"type": "none"}
    {"type": "oauth2", "token_url": "/oauth/token", "scope": "...", "refresh_margin_s": 60}

Every secret is registered (:func:`apisync.redaction.register_secret`) the moment it is known: the
connection's when the strategy is built, an OAuth2 access token when it is received.
"""

from __future__ import annotations

import base64
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from apisync.errors import ApiAuthError, ApiConfigError, SourceUnreachableError
from apisync.http.network_failures import classify
from apisync.http.settings import (
    DEFAULT_REFRESH_MARGIN_S,
    ApiKeyAuthSettings,
    AuthSettings,
    OAuth2AuthSettings,
)
from apisync.redaction import body_excerpt, cut_redacted, redact_url, register_secret

if TYPE_CHECKING:
    from airflow.sdk import Connection


class ApiKeyAuth(AuthBase):
    """API key in a header (``X-API-Key``) or a query parameter (``api_key``)."""

    def __init__(self, key: str, *, header: str | None = None, query: str | None = None) -> None:
        if bool(header) == bool(query):
            raise ApiConfigError("auth api_key needs exactly one of 'header' or 'query'")
        self.key, self.header, self.query = key, header, query
        register_secret(key)

    @property
    def query_param(self) -> str | None:
        return self.query

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.header:
            request.headers[self.header] = self.key
        else:
            assert self.query is not None and request.url is not None
            request.prepare_url(request.url, {self.query: self.key})
        return request


class BearerAuth(AuthBase):
    """Static bearer token (personal access tokens, API keys sent as ``Authorization: Bearer``)."""

    def __init__(self, token: str) -> None:
        self.token = token
        register_secret(token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class BasicAuth(HTTPBasicAuth):
    """HTTP basic auth, with the password registered as a secret."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(username, password)
        register_secret(password)
        # The header carries base64("user:password"): an echoed request must not reveal it either.
        register_secret(base64.b64encode(f"{username}:{password}".encode()).decode("ascii"))


class OAuth2ClientCredentials(AuthBase):
    """RFC 6749 §4.4 client credentials with a cached token refreshed ahead of expiry.

    The token is refreshed when less than ``refresh_margin_s`` (capped at a tenth of its lifetime) is
    left, and :meth:`invalidate` forces a refresh: the hook calls it on a 401 and repeats the request
    once. A lock keeps threads of one process from fetching twice.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
        timeout: tuple[float, float] = (10.0, 30.0),
        verify: bool | str = True,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.refresh_margin_s = refresh_margin_s
        self.timeout = timeout
        self.verify = verify
        self._token: str | None = None
        self._expires_at = 0.0
        self._lifetime = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0
        register_secret(client_secret)
        # The token request sends base64("id:secret") as HTTP basic: an echo must not reveal it.
        register_secret(base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii"))

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fresh(self, now: float) -> bool:
        margin = min(self.refresh_margin_s, 0.1 * self._lifetime)
        return self._token is not None and now < self._expires_at - margin

    def token(self) -> str:
        with self._lock:
            if not self._fresh(time.time()):
                self._fetch()
            assert self._token is not None
            return self._token

    def _fetch(self) -> None:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        try:
            response = requests.post(
                self.token_url,
                data=form,
                auth=(self.client_id, self.client_secret),
                timeout=self.timeout,
                verify=self.verify,
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as exc:
            url = redact_url(self.token_url)
            failure = classify(exc, self.token_url)
            cause = cut_redacted(failure.describe(), 300) if failure is not None else type(exc).__name__
            if failure is not None and failure.connect_phase:  # the source is down, not the credentials
                raise SourceUnreachableError(
                    f"OAuth2 token request POST {url}: {cause} after 1 attempt (not retried)",
                    method="POST",
                    url=url,
                    cause=str(failure.cause),
                    attempts=1,
                    waited_s=0.0,
                ) from None
            raise ApiAuthError(
                f"OAuth2 token request POST {url} failed: {cause}", method="POST", url=url
            ) from None
        if response.status_code != 200:
            raise ApiAuthError(
                f"OAuth2 token request POST {redact_url(self.token_url)} -> {response.status_code}: "
                f"{body_excerpt(response.content)}",
                method="POST",
                url=redact_url(self.token_url),
                status=response.status_code,
                body=body_excerpt(response.content),
            )
        try:
            payload = response.json()
            token = payload["access_token"]
        except (ValueError, KeyError, TypeError):
            raise ApiAuthError(
                f"OAuth2 token response from {redact_url(self.token_url)} has no access_token",
                method="POST",
                url=redact_url(self.token_url),
                status=200,
            ) from None
        register_secret(token)
        refresh_token = payload.get("refresh_token") if isinstance(payload, dict) else None
        if isinstance(refresh_token, str):
            register_secret(refresh_token)
        lifetime = float(payload.get("expires_in") or 3600)
        self._token = token
        self._lifetime = lifetime
        self._expires_at = time.time() + lifetime
        self.refreshes += 1

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


def make_auth(
    config: AuthSettings | None,
    connection: Connection,
    base_url: str,
    *,
    timeout: tuple[float, float],
    verify: bool | str,
) -> AuthBase | None:
    """Auth strategy named by the validated ``extra["auth"]``; without it: basic when login is set,
    bearer when only a password is, else none."""
    kind = (
        config.type
        if config is not None
        else ("basic" if connection.login else "bearer" if connection.password else "none")
    )
    login, password = connection.login, connection.password
    if kind == "none":
        return None
    if kind == "basic":
        if not login:
            raise ApiConfigError("auth basic needs the connection login (and password)")
        return BasicAuth(login, password or "")
    if kind in ("api_key", "bearer"):
        secret = password or login
        if not secret:
            raise ApiConfigError(f"auth {kind} needs the key in the connection password")
        if kind == "bearer":
            return BearerAuth(secret)
        header = config.header if isinstance(config, ApiKeyAuthSettings) else None
        query = config.query if isinstance(config, ApiKeyAuthSettings) else None
        return ApiKeyAuth(secret, header=header or (None if query else "X-API-Key"), query=query)
    assert isinstance(config, OAuth2AuthSettings)  # the validated union leaves no other type
    if not login or not password:
        raise ApiConfigError("auth oauth2 needs client id (login) and client secret (password)")
    token_url = config.token_url
    return OAuth2ClientCredentials(
        urljoin(base_url.rstrip("/") + "/", token_url.lstrip("/")) if "://" not in token_url else token_url,
        login,
        password,
        scope=config.scope,
        refresh_margin_s=config.refresh_margin_s,
        timeout=timeout,
        verify=verify,
    )
