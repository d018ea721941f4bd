"""The "Syncs" view inside the Airflow UI: a FastAPI app mounted in Airflow's api-server.

The Airflow plugin (``plugins/apisync_syncs_view.py``) registers :data:`apisync.ui.app.app`
under ``/apisync`` and an external view "Syncs" in the UI's navigation that shows its page inside
the UI. Every endpoint checks the caller's Airflow JWT and permissions itself (:mod:`.access`):
Airflow does not protect a plugin's app. The numbers come from :mod:`apisync.report`; the streams
from the DAGs folder (:func:`apisync.pipeline.coverage.find_sync_streams`); "Backfill gaps" and
"Replay" act through Airflow's REST API as the logged-in user. Nothing imports this package.
May import: report, coverage, load, pipeline.coverage, errors, redaction.
"""
