"""Airflow's log servers listen where `make run` binds, not on every interface (issue 13 case 6).

The scheduler (LocalExecutor) and the triggerer each start a log server (``[logging]
worker_log_server_port`` 8793, ``trigger_log_server_port`` 8794). Airflow 3.3.2 has no host
setting for it: ``airflow.utils.serve_logs.core.serve_logs`` calls ``uvicorn.run(..., host="")``,
every interface. The one switch Airflow offers is ``--skip-serve-logs``, which ``airflow
standalone`` cannot pass to the components it starts; and without a log server the UI shows a
running task's log with "Could not read served logs". So this module, which Airflow imports in
every one of its processes (``airflow_local_settings`` on ``PYTHONPATH``), gives the log server
the host it lacks: ``uvicorn.run`` called with host ``""`` (in 3.3.2 only the log server does)
gets ``APISYNC_LOG_SERVER_HOST`` instead; any other host is left alone. Unset (compose, Helm, a
user who opted into every interface), nothing changes.

The api-server fetches a running task's log from ``http://<task hostname>:<port>``; on a laptop
the machine's name can resolve to 127.0.1.1 or a LAN address the loopback socket does not
answer, so the task hostname is the bind address too (``[core] hostname_callable``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

__all__: list[str] = []  # Airflow copies public names into airflow.settings; there are none

LOG_SERVER_HOST_ENV = "APISYNC_LOG_SERVER_HOST"


def log_server_hostname() -> str:
    """``[core] hostname_callable``: the address the log servers listen on."""
    return os.environ[LOG_SERVER_HOST_ENV]


def _pin_log_server_host(host: str) -> None:
    import uvicorn

    all_interfaces_run = uvicorn.run

    def run(app: Any, **kwargs: Any) -> None:
        if kwargs.get("host") == "":
            kwargs["host"] = host
            # Airflow has just logged "Starting log server on http://[::]:<port>": say where it is.
            logging.getLogger(__name__).info("log server bound to %s:%s only", host, kwargs.get("port"))
        all_interfaces_run(app, **kwargs)

    uvicorn.run = run


if os.environ.get(LOG_SERVER_HOST_ENV):
    _pin_log_server_host(os.environ[LOG_SERVER_HOST_ENV])
