"""What an alert says: the title, the run's facts, the first error line, the failing data-quality
expectations and a link, rendered per channel (plain text, Slack mrkdwn, HTML email).

Every text is passed through :func:`apisync.redaction.redact` when the :class:`Alert` is built, so a
channel only ever sees masked text. Nothing here sends anything or imports a provider.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from apisync.redaction import cut_redacted, redact

__all__ = [
    "MAX_ERROR_CHARS",
    "MAX_LISTED_FAILURES",
    "Alert",
    "deadline_alert",
    "error_first_line",
    "failure_alert",
    "quality_failures",
]

MAX_LISTED_FAILURES = 25
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Alert:
    """One alert, already scrubbed of secrets, rendered per channel."""

    title: str
    fields: tuple[tuple[str, str], ...]
    quality_failures: tuple[str, ...] = ()
    link: str | None = None
    omitted_failures: int = 0
    link_label: str = "Log"

    def as_text(self) -> str:
        lines = [self.title, *(f"{name}: {value}" for name, value in self.fields)]
        lines.extend(self._quality_lines())
        if self.link:
            lines.append(f"{self.link_label}: {self.link}")
        return "\n".join(lines)

    def as_slack(self) -> str:
        lines = [f"*{_slack_escape(self.title)}*"]
        lines.extend(f"*{name}:* {_slack_escape(value)}" for name, value in self.fields)
        lines.extend(_slack_escape(line) for line in self._quality_lines())
        if self.link:
            lines.append(f"*{self.link_label}:* {_slack_escape(self.link)}")
        return "\n".join(lines)

    def as_html(self) -> str:
        rows = "".join(
            f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
            for name, value in self.fields
        )
        parts = [f"<h3>{html.escape(self.title)}</h3>", f"<table>{rows}</table>"]
        if self.quality_failures:
            items = "".join(f"<li>{html.escape(item)}</li>" for item in self.quality_failures)
            more = f"<p>... and {self.omitted_failures} more</p>" if self.omitted_failures else ""
            parts.append(f"<p>Failing expectations:</p><ul>{items}</ul>{more}")
        if self.link:
            link = html.escape(self.link, quote=True)
            parts.append(f'<p>{html.escape(self.link_label)}: <a href="{link}">{link}</a></p>')
        return "".join(parts)

    def _quality_lines(self) -> list[str]:
        if not self.quality_failures:
            return []
        lines = ["Failing expectations:", *(f"  - {item}" for item in self.quality_failures)]
        if self.omitted_failures:
            lines.append(f"  ... and {self.omitted_failures} more")
        return lines


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error_first_line(error: BaseException | str | None) -> str:
    """``Type: first line of the message`` — the full traceback belongs in the log, not the alert."""
    if error is None:
        return "(no exception in context: failed outside the task process, e.g. heartbeat timeout)"
    if isinstance(error, BaseException):
        message = str(error).strip()
        first = message.splitlines()[0] if message else ""
        line = f"{type(error).__name__}: {first}" if first else type(error).__name__
    else:
        text = str(error).strip()
        line = text.splitlines()[0] if text else "(empty error)"
    # A response body dumped into one line must not swamp the message (Slack caps text length);
    # redacted before the cut, so a secret straddling it leaves no prefix behind.
    return cut_redacted(line, MAX_ERROR_CHARS)


def quality_failures(error: BaseException | None) -> list[str]:
    """Lines for the failing expectations of a data-quality error (the ``failures`` protocol in the
    package docstring), found on the error or anywhere in its ``__cause__``/``__context__`` chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        failures = getattr(current, "failures", None)
        if isinstance(failures, (list, tuple)):
            return [_format_failure(item) for item in failures]
        current = current.__cause__ or current.__context__
    return []


def _format_failure(item: object) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    expectation = item.get("expectation") or "(unnamed expectation)"
    column = item.get("column")
    count = item.get("unexpected_count")
    where = f" on column {column}" if column else ""
    counted = f": {count} unexpected" if count is not None else ""
    return f"{expectation}{where}{counted}"


def _when(value: object) -> str:
    if value is None:
        return "-"
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(value)


def failure_alert(context: Mapping[str, Any]) -> Alert:
    """Build the alert for a task that failed for good, from the task's runtime context."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    error = context.get("exception")
    try:
        link = getattr(ti, "log_url", None)
    except Exception:  # log_url reads config; an alert without a link beats no alert
        link = None

    task_label = f"{task_id}[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else task_id
    # A mapped task's label from its map_index_template (a sync slice's window), once rendered.
    rendered = getattr(ti, "rendered_map_index", None)
    named = (("Slice", rendered),) if isinstance(rendered, str) and rendered.strip() else ()
    fields = (
        ("DAG", str(dag_id)),
        ("Task", str(task_label)),
        *named,
        ("Run", str(run_id)),
        (
            "Interval",
            f"{_when(context.get('data_interval_start'))} → {_when(context.get('data_interval_end'))}",
        ),
        ("Try", str(getattr(ti, "try_number", "?"))),
        ("Error", error_first_line(error)),
    )
    failures = quality_failures(error if isinstance(error, BaseException) else None)
    return _redacted_alert(
        title=f"apisync: task {dag_id}.{task_label} failed",
        fields=fields,
        failures=failures,
        link=link,
    )


def deadline_alert(context: Mapping[str, Any]) -> Alert:
    """Build the alert for a run that missed its deadline, from the triggerer's simple context."""
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id = run.get("dag_id", "?")
    fields = (
        ("DAG", str(dag_id)),
        ("Run", str(run.get("dag_run_id") or run.get("run_id") or "?")),
        ("Interval", f"{_when(run.get('data_interval_start'))} → {_when(run.get('data_interval_end'))}"),
        ("State", str(run.get("state", "?"))),
        ("Queued at", _when(run.get("queued_at"))),
        ("Started at", _when(run.get("start_date"))),
        ("Deadline", _when(deadline.get("deadline_time"))),
    )
    run_id = run.get("dag_run_id") or run.get("run_id")
    return _redacted_alert(
        # Airflow prunes deadlines only for runs that succeed: a run that already failed still
        # reports here (it may have failed without a task failure alert, e.g. dagrun_timeout).
        title=f"apisync: sync {dag_id} is late (deadline missed, run {run.get('state', 'unknown')})",
        fields=fields,
        link=_run_url(str(dag_id), str(run_id)) if run_id else None,
        link_label="Run page",
    )


def _run_url(dag_id: str, run_id: str) -> str | None:
    """The run's page in the UI, built the way Airflow builds ``ti.log_url``."""
    try:
        from airflow.sdk.configuration import conf

        base_url = str(conf.get("api", "base_url", fallback="http://localhost:8080/"))
    except Exception:
        return None
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def _redacted_alert(
    *,
    title: str,
    fields: Sequence[tuple[str, str]],
    failures: Sequence[str] = (),
    link: str | None = None,
    link_label: str = "Log",
) -> Alert:
    listed = failures[:MAX_LISTED_FAILURES]
    return Alert(
        title=redact(title),
        fields=tuple((name, redact(value)) for name, value in fields),
        quality_failures=tuple(redact(item) for item in listed),
        link=redact(link) if link else None,
        omitted_failures=len(failures) - len(listed),
        link_label=link_label,
    )
