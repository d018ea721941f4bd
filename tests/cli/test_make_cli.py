"""``make cli`` runs ``scripts/cli.py``: the command line in the environment ``make run`` gives Airflow.

(Only ``--help`` here: a command would act on the developer's own ``make run`` home, e.g. post a
test alert to a Slack channel configured there.)
"""

from __future__ import annotations

import subprocess
import sys

from tests.cli.conftest import REPO_ROOT


def test_the_launcher_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/cli.py", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for command in ("gaps", "replay", "test-alert"):
        assert command in done.stdout
