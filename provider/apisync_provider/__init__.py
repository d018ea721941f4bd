"""apisync's provider registration: the ``apisync`` connection type, served by ``ApiHook``.

Why a distribution of its own: Airflow finds a connection type's hook only through an installed
distribution's ``apache_airflow_provider`` entry point, and the connection *Test* button of the UI
(``POST /api/v2/connections/test``) and ``Connection.get_hook()`` build the hook registered for the
connection's type. A connection of type ``http`` gets the http provider's ``HttpHook``, which knows
none of apisync's extras, so the button could never check them. The library itself stays in
``plugins/apisync`` (what Airflow loads, and what compose mounts); this package holds only the
provider info, names the hook by its dotted path and imports nothing, so it cannot shadow the
mounted code.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

CONNECTION_TYPE = "apisync"
HOOK_CLASS = "apisync.http.hook.ApiHook"


def get_provider_info() -> dict[str, Any]:
    """The provider info Airflow's providers manager reads (runtime schema: name, description)."""
    return {
        "package-name": "apisync-provider",
        "name": "apisync",
        "description": "Rate-limit-aware API syncs: the apisync connection type (ApiHook).",
        "connection-types": [{"hook-class-name": HOOK_CLASS, "connection-type": CONNECTION_TYPE}],
    }
