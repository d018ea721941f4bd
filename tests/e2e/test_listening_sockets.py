"""What the stack listens on (issue 13 case 6): `make run`'s servers answer this machine only.

The shared stack starts ``airflow standalone`` with the settings `make run` gives it
(:func:`scripts.localstack.airflow_env` and :func:`~scripts.localstack.bind_env`), so the sockets
checked here are the ones a user's laptop opens. tests/e2e/test_cluster.py checks `make cluster`'s.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AirflowStack, assert_listening_on_loopback_only

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_make_run_listens_on_loopback_only(airflow_stack: AirflowStack) -> None:
    assert airflow_stack.process is not None
    assert_listening_on_loopback_only(
        [airflow_stack.process.pid],
        {
            "api-server": int(airflow_stack.api_url.rsplit(":", 1)[1]),
            "scheduler log server": int(airflow_stack.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]),
            "triggerer log server": int(airflow_stack.env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]),
        },
    )
