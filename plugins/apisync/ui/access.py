"""Who is calling, and may they: the Airflow JWT checked with Airflow's own code, per request.

A plugin's FastAPI app is mounted in the api-server but Airflow does not guard it. So every
endpoint depends on :func:`current_user`, which is Airflow's own ``get_user`` (the dependency of
the core REST API): the ``Authorization: Bearer`` header first, else the UI's ``_token`` cookie
(what the browser sends to a page inside the UI), validated by the auth manager's JWT validator
(signature, expiry, revocation). No token: 401; a bad or expired one: 401/403, as the REST API
answers. Permissions are the auth manager's: reading a stream is reading its DAG's runs, "Backfill
gaps" is creating DAG runs, "Replay" is clearing task instances; :func:`user_token` is the token
the view then calls the REST API with, so Airflow checks the same user again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import HTTPException, Request, status

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod

__all__ = ["Action", "current_user", "is_allowed", "require", "user_token"]

Action = Literal["read", "backfill", "replay"]
COOKIE_NAME = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN


async def current_user(request: Request) -> Any:
    """The logged-in Airflow user, or HTTPException 401/403 (raised by Airflow's ``get_user``)."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    return await get_user(request, None, credentials)


def user_token(request: Request) -> str:
    """The JWT the request was authenticated with (bearer header wins, as in ``get_user``)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated")
    return cookie


def is_allowed(user: Any, action: Action, dag_id: str | None) -> bool:
    """The auth manager's answer for ``action`` on the DAG (``None``: every DAG)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    permissions: dict[Action, tuple[ResourceMethod, DagAccessEntity]] = {
        "read": ("GET", DagAccessEntity.RUN),
        "backfill": ("POST", DagAccessEntity.RUN),
        "replay": ("PUT", DagAccessEntity.TASK_INSTANCE),
    }
    method, entity = permissions[action]
    return bool(
        get_auth_manager().is_authorized_dag(
            method=method, access_entity=entity, details=DagDetails(id=dag_id), user=user
        )
    )


def require(user: Any, action: Action, dag_id: str | None) -> None:
    """HTTP 403 naming what is missing unless ``user`` may do ``action`` on the DAG."""
    if not is_allowed(user, action, dag_id):
        what = {"read": "read the runs of", "backfill": "create runs of", "replay": "clear tasks of"}[action]
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"user may not {what} {dag_id if dag_id else 'every DAG'}"
        )
