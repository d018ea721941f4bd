"""``test-alert``: send a test message on every alert channel and say which delivered.

The channels every sync DAG alerts on (Slack ``slack_alerts``, email ``smtp_alerts``, or the ids
given), through the same connections and provider notifiers as a failure alert. Exit code 1 when
a channel did not deliver; the reason (missing connection, refused, login rejected...) is printed
with every secret masked.
"""

from __future__ import annotations

import argparse
from typing import Any

from apisync.alerts.channels import DEFAULT_SLACK_CONN_ID, DEFAULT_SMTP_CONN_ID, alert_channels
from apisync.cli.output import print_table

__all__ = ["register", "run_test_alert"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "test-alert",
        help="send a test message on every alert channel and say which delivered",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--slack-conn-id", default=DEFAULT_SLACK_CONN_ID, help="['slack_alerts']; '' skips Slack"
    )
    parser.add_argument(
        "--smtp-conn-id", default=DEFAULT_SMTP_CONN_ID, help="['smtp_alerts']; '' skips email"
    )
    parser.add_argument("--to", action="append", default=[], help="email recipient (repeatable)")
    parser.set_defaults(func=run_test_alert)


def run_test_alert(args: argparse.Namespace) -> int:
    import logging

    from apisync.alerts.probe import send_test_alert

    logging.getLogger("apisync.alerts").setLevel(logging.ERROR)  # the table says it, once
    channels = alert_channels(
        slack_conn_id=args.slack_conn_id or None, smtp_conn_id=args.smtp_conn_id or None, to=args.to
    )
    if not channels:
        print("no alert channel selected")
        return 1
    checks = send_test_alert(channels)
    print_table(
        "test alert",
        ["channel", "connection", "result"],
        ([c.channel, c.conn_id, "delivered" if c.delivered else f"FAILED: {c.problem}"] for c in checks),
    )
    return 0 if all(c.delivered for c in checks) else 1
