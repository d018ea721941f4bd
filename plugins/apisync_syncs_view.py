"""Airflow plugin: the "Syncs" view (sync history, coverage, quarantine) inside the Airflow UI.

Airflow loads every top-level ``.py`` of the plugins folder (``plugins/.airflowignore`` keeps it
out of ``apisync/``, which is imported as a package); this file only registers what
``apisync.ui`` builds:

- ``fastapi_apps``: the view's FastAPI app, mounted by the api-server under ``/apisync``;
- ``external_views``: a "Syncs" entry in the UI's navigation whose page (``/apisync/``, same origin)
  the UI shows inside its own layout at ``/plugin/syncs``.

An external view rather than a ``react_apps`` bundle: the page needs no build step and no copy
of the UI's React, and is still drawn inside the UI (navigation, login) like Airflow's own pages.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from apisync.ui.app import URL_PREFIX, app


class ApisyncSyncsView(AirflowPlugin):
    name = "apisync_syncs_view"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "apisync Syncs view"}]
    external_views = [
        {
            "name": "Syncs",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "syncs",
            "nav_top_level": True,
        }
    ]
