"""`make run`: the sandbox APIs plus `airflow standalone`, in a repo-local Airflow home.

Ctrl-C (or SIGTERM) stops everything this started: each child runs in its own process group and
the whole group is terminated, so no scheduler or sandbox is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from localstack import (
    DEFAULT_AIRFLOW_HOME,
    REPO_ROOT,
    StopSignals,
    admin_password,
    airflow_env,
    bind_env,
    connections_env,
    prepare_metadata_db,
    running_sandboxes,
    stop_process_group,
    wait_for_http,
)

UI_URL = "http://localhost:8080"


def main() -> int:
    home = DEFAULT_AIRFLOW_HOME
    home.mkdir(exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    password = admin_password(home)
    stop = StopSignals()
    with running_sandboxes(log_dir=home / "logs") as urls:
        env = {**os.environ, **airflow_env(home), **bind_env(), **connections_env(urls, home)}
        print("preparing the Airflow metadata DB and pools…", flush=True)
        prepare_metadata_db(env)
        print("sandbox APIs:", ", ".join(f"{name}={url}" for name, url in urls.items()), flush=True)
        airflow = subprocess.Popen(["airflow", "standalone"], cwd=REPO_ROOT, env=env, start_new_session=True)
        try:
            wait_for_http(f"{UI_URL}/api/v2/monitor/health", 240, airflow)
            print(
                f"\n  Airflow UI: {UI_URL}\n  login: admin / {password}\n"
                "  DAGs start paused: unpause one in the UI, or trigger it.\n  Ctrl-C stops everything.\n",
                flush=True,
            )
            airflow.wait()
        except KeyboardInterrupt:
            print("\nstopping Airflow and the sandbox…", flush=True)
        finally:
            stop_process_group(airflow, grace_s=20)
    return 0 if stop.requested or airflow.returncode in (0, None, -signal.SIGTERM) else airflow.returncode


if __name__ == "__main__":
    sys.exit(main())
