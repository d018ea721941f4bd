"""The command line: ``python -m apisync <command>`` (``make cli ARGS="<command>"`` under ``make run``).

One module per subcommand, each with ``register(subparsers)`` adding its parser and setting
``func`` (``args -> exit code``): :mod:`.gaps`, :mod:`.replay`, :mod:`.test_alert`, and
``status`` (``cli/status.py``, per stream like the Syncs view). Exit codes: 0 all well, 1 a problem
found (gaps exist, a channel failed, a replay refused or failed), 2 a usage error (argparse's own).

The commands run in the Airflow environment of the deployment (``AIRFLOW_HOME``, connections from
``AIRFLOW_CONN_*`` or the metadata DB, the DAGs folder of ``[core] dags_folder``) and change
nothing the user did not ask for: ``gaps`` reads the ledger without repairing.

Owns: argument parsing, printing. May import everything of ours; nothing imports it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

# The subcommand modules (each with ``register(subparsers)``), in the order ``--help`` lists them.
COMMAND_MODULES = ("status", "gaps", "replay", "test_alert")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m apisync",
        description="Look at and steer apisync's syncs from the command line.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command; its exit code (2: bad usage)."""
    # Airflow's INFO lines (DagBag filling, settings) are not the command's output; read when
    # Airflow configures its logging, so before anything imports it. A level the user set wins.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    # Connections from the metadata DB too (the UI's Connections page), not only AIRFLOW_CONN_*:
    # the task SDK reads the DB only in a process that says it is a server, as Airflow's own
    # `airflow connections get` does.
    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on bad usage, 0 on --help
        return int(exit_.code or 0)
    try:
        code: int = args.func(args)
    except Exception as error:  # a connection or service the command needs: one line, no traceback
        from apisync.alerts.message import error_first_line
        from apisync.cli.output import print_error

        print_error(f"{args.command}: {error_first_line(error)}")
        return 1
    finally:
        sys.stdout.flush()
    return code
