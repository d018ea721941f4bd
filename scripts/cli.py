"""`make cli ARGS="gaps orders"`: ``python -m apisync`` in the environment of `make run`.

The same Airflow home (`.airflow/`: metadata DB, staging, the SQLite warehouse), DAGs folder,
`plugins` on PYTHONPATH and connections (the sandboxes on 8901-8905, `airflow_api` at
http://127.0.0.1:8080 with the home's admin login) as :mod:`run_local` gives Airflow, so the
commands see what the UI sees. Connections added in the UI (e.g. `slack_alerts`) come from the
metadata DB; variables already set in the shell are kept unless `make run` sets them too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from localstack import DEFAULT_AIRFLOW_HOME, SANDBOX_SERVICES, airflow_env, connections_env


def cli_env(home: Path = DEFAULT_AIRFLOW_HOME) -> dict[str, str]:
    """The environment `make run` gives Airflow, for a command run next to it."""
    urls = {service.name: f"http://127.0.0.1:{service.port}" for service in SANDBOX_SERVICES}
    return {**os.environ, **airflow_env(home), **connections_env(urls, home)}


def main(argv: Sequence[str]) -> None:
    os.execve(sys.executable, [sys.executable, "-m", "apisync", *argv], cli_env())


if __name__ == "__main__":
    main(sys.argv[1:])
