"""Imports between our packages run one way; this test names every import against the arrows.

``ALLOWED`` maps an importing unit (a package or a top-level module of ``apisync``, or ``dags``)
to the units it may import. An entry covers the module and everything below it: ``apisync.load``
is ``load/__init__.py`` and every ``apisync.load.*`` module. The most specific key wins, a unit
may always import itself, and a module with no key at all is reported too, so a new package has
to be given its arrows here before it can land.

Read as arrows (the layers low to high):

- ``errors`` and ``naming`` import nothing of ours; ``redaction`` only ``errors``;
- ``spec`` the errors, the naming rules and the pagination registry (not the HTTP client);
- ``http`` is the one door to the network and knows no stage: errors and redaction only;
- ``staging`` owns the row format every stage shares, on top of errors, redaction, spec, naming;
- ``transform``, ``quality`` and ``load`` build on staging and never import each other;
- ``crm`` is a stage that writes through ``http``;
- ``alerts``, ``window_params`` and ``defaults`` are the DAG-facing contract (``defaults`` wires
  ``alerts`` and re-exports the window Params the pipeline checks);
- ``coverage`` (the interval ledger, its alert and repair) reads ``load``'s ``sync_runs`` table
  and sends on ``alerts``' channels; the ``pipeline`` hands it the sync DAGs' streams;
- ``report`` reads what was synced (``sync_runs``, ``quarantine``, the ledger) for ``ui`` (the Syncs
  view) and the CLI's ``status``; nothing imports ``ui`` (``NOBODY_IMPORTS``): Airflow's plugin
  loader (plugins/apisync_syncs_view.py) loads it;
- ``pipeline`` composes everything; a DAG file imports only ``apisync.pipeline`` and
  ``apisync.defaults`` themselves (``ENTRY_POINTS_ONLY``), never their inner modules;
- ``cli`` (the command line) may import everything and nothing imports it (``NOBODY_IMPORTS``)
  but ``apisync.__main__``, which runs it.

Modules are parsed with ``ast``, never imported, and every kind of reference counts: top-level and
function-local imports, imports under ``if TYPE_CHECKING:``, relative imports,
``importlib.import_module("apisync...")`` strings and the values of a lazy package's ``_EXPORTS``
map, which are imports that merely happen later.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "plugins" / "apisync"
DAGS_DIR = ROOT / "dags"

_BASE = frozenset({"apisync.errors", "apisync.redaction", "apisync.lazy_exports"})
_STAGE = _BASE | {"apisync.staging", "apisync.spec", "apisync.naming"}

ALLOWED: dict[str, frozenset[str]] = {
    "apisync": frozenset(),  # the root __init__ stays empty: importing apisync loads nothing
    "apisync.errors": frozenset(),
    "apisync.redaction": frozenset({"apisync.errors"}),
    "apisync.naming": frozenset(),
    "apisync.pools": frozenset({"apisync.errors", "apisync.spec"}),
    "apisync.lazy_exports": frozenset(),
    # the dialects' options and a GraphQL source's (both cheap to import: no requests, no Airflow)
    "apisync.spec": frozenset(
        {"apisync.errors", "apisync.naming", "apisync.http.pagination", "apisync.http.graphql"}
    ),
    "apisync.http": _BASE,
    "apisync.staging": _BASE | {"apisync.spec", "apisync.naming"},
    "apisync.transform": _STAGE,
    "apisync.quality": _STAGE,
    "apisync.load": _STAGE,
    "apisync.crm": _STAGE | {"apisync.http"},
    "apisync.alerts": _BASE,
    # the manual-run window's Params and checks: the DAGs declare them, the pipeline enforces them
    "apisync.window_params": _BASE,
    "apisync.schedule": _BASE,  # the sync DAGs' timetable (ending where the data end)
    "apisync.defaults": _BASE | {"apisync.alerts", "apisync.schedule", "apisync.window_params"},
    # the ledger reads sync_runs through load's table definition and alerts on alerts' channels
    # ... and a replay checks a run's raw pages are still there by the extraction's manifest
    "apisync.coverage": _BASE
    | {"apisync.load.audit", "apisync.alerts", "apisync.spec", "apisync.staging.raw_pages"},
    # the read model of the Syncs view and `status`: reads the bookkeeping tables and the ledger
    # ... and merges sliced runs' latency histograms with the hook's own bucket arithmetic
    "apisync.report": _STAGE
    | {"apisync.load", "apisync.coverage", "apisync.quality", "apisync.http.latency"},
    "apisync.pipeline": frozenset({"apisync"}),  # everything of ours
    "apisync.cli": frozenset({"apisync"}),  # everything of ours; nothing imports it (NOBODY_IMPORTS)
    "apisync.__main__": frozenset({"apisync.cli"}),  # ``python -m apisync``
    # the Syncs view (an Airflow plugin's FastAPI app): shows the report, finds the sync streams
    # with the pipeline's DAG reading, acts through coverage's REST client; nothing imports it
    "apisync.ui": _BASE | {"apisync.report", "apisync.coverage", "apisync.load", "apisync.pipeline.coverage"},
    "dags": frozenset({"apisync.pipeline", "apisync.defaults"}),
}
# Importers that may use the listed modules themselves but not the modules inside them.
ENTRY_POINTS_ONLY = frozenset({"dags"})
# Units at the top: whatever ``ALLOWED`` says, no other unit may import them (``apisync.cli`` is
# the command line; ``apisync.__main__`` runs it).
NOBODY_IMPORTS = frozenset({"apisync.cli", "apisync.__main__", "apisync.ui"})


@dataclass(frozen=True)
class SourceModule:
    name: str  # dotted: apisync.load.dedupe, or dags.orders_to_warehouse
    path: str  # as reported: relative to the repository root
    source: str
    is_package: bool = False


@dataclass(frozen=True)
class Reference:
    target: str
    line: int


def unit_of(module: str) -> str | None:
    """The most specific key of ``ALLOWED`` that ``module`` belongs to (the root only exactly)."""
    best = None
    for unit in ALLOWED:
        if unit == "apisync" and module != "apisync":
            continue
        if (module == unit or module.startswith(unit + ".")) and (best is None or len(unit) > len(best)):
            best = unit
    return best


def _covers(entry: str, target: str, *, exact: bool) -> bool:
    return target == entry or (not exact and target.startswith(entry + "."))


def _ours(name: str | None) -> bool:
    return name is not None and (name == "apisync" or name.startswith("apisync."))


def references(module: SourceModule, known: frozenset[str]) -> Iterator[Reference]:
    """Every ``apisync`` module ``module`` refers to. ``from pkg import name`` refers to
    ``pkg.name`` when that is a module in ``known``, otherwise to ``pkg``."""
    tree = ast.parse(module.source, filename=module.path)
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _ours(alias.name):
                    yield Reference(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, node.module] if node.module else parts)
            if not _ours(base):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield Reference(candidate if candidate in known else base, node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            name = getattr(node.args[0], "value", None)  # a string constant, or nothing
            if called in {"import_module", "__import__"} and isinstance(name, str) and _ours(name):
                yield Reference(name, node.lineno)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = any(isinstance(target, ast.Name) and target.id == "_EXPORTS" for target in targets)
            if named and isinstance(node.value, ast.Dict):
                for value in node.value.values:
                    if (
                        isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                        and _ours(value.value)
                    ):
                        yield Reference(value.value, value.lineno)


def violations(modules: Iterable[SourceModule]) -> list[str]:
    """``path:line: rule`` for every reference against ``ALLOWED`` (and every module without a rule)."""
    modules = list(modules)
    known = frozenset(module.name for module in modules)
    found = []
    for module in modules:
        unit = unit_of(module.name)
        if unit is None:
            found.append(f"{module.path}:1: {module.name} has no rule: add its arrows to ALLOWED")
            continue
        allowed = ALLOWED[unit]
        exact = unit in ENTRY_POINTS_ONLY
        for ref in dict.fromkeys(references(module, known)):  # once per line and target
            if unit_of(ref.target) == unit and unit not in ENTRY_POINTS_ONLY:
                continue
            top = unit_of(ref.target)
            if top in NOBODY_IMPORTS and not (unit == "apisync.__main__" and top == "apisync.cli"):
                found.append(
                    f"{module.path}:{ref.line}: {module.name} imports {ref.target}; nothing imports {top}"
                )
                continue
            if any(_covers(entry, ref.target, exact=exact) for entry in allowed):
                continue
            may = ", ".join(sorted(allowed)) or "nothing of ours"
            inside = " (the modules themselves, not their insides)" if exact else ""
            where = f"{module.path}:{ref.line}"
            found.append(f"{where}: {module.name} imports {ref.target}; {unit} may import {may}{inside}")
    return found


def project_modules() -> list[SourceModule]:
    modules = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
        parts = list(relative.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules.append(
            SourceModule(".".join(parts), str(path.relative_to(ROOT)), path.read_text(), is_package)
        )
    for path in sorted(DAGS_DIR.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules.append(SourceModule(name, str(path.relative_to(ROOT)), path.read_text()))
    return modules


def test_imports_follow_the_arrows() -> None:
    modules = project_modules()
    assert any(module.name == "apisync.errors" for module in modules), "the package was not found"
    found = violations(modules)
    assert not found, "imports against the arrows (see ALLOWED):\n" + "\n".join(found)


def test_the_checker_reports_each_kind_of_violating_reference() -> None:
    source = "\n".join(
        [
            "import importlib",  # 1
            "from apisync.errors import ApiError",  # 2: allowed
            "from apisync.http.headers import parse_retry_after",  # 3: itself
            "from . import ratelimit",  # 4: itself, relative
            "import apisync.load.warehouse",  # 5: against the arrows
            "def page():",  # 6
            "    from apisync.quality import validation",  # 7: function-local
            "    return importlib.import_module('apisync.transform.normalize')",  # 8: by string
            "from ..pipeline import tasks",  # 9: relative, upwards
            "_EXPORTS = {'ok': 'apisync.http.retry', 'staged': 'apisync.staging.parts'}",  # 10: lazy
        ]
    )
    modules = [
        SourceModule("apisync.http.synthetic", "http/synthetic.py", source),
        SourceModule("apisync.quality.validation", "quality/validation.py", ""),
        SourceModule("apisync.pipeline.tasks", "pipeline/tasks.py", ""),
        SourceModule("apisync.ghost", "ghost.py", ""),
    ]
    found = violations(modules)
    reported = {line.split(": ", 1)[0]: line for line in found}
    assert set(reported) == {
        "http/synthetic.py:5",
        "http/synthetic.py:7",
        "http/synthetic.py:8",
        "http/synthetic.py:9",
        "http/synthetic.py:10",
        "ghost.py:1",
    }, found
    assert "imports apisync.quality.validation; apisync.http may import" in reported["http/synthetic.py:7"]
    assert "imports apisync.pipeline.tasks;" in reported["http/synthetic.py:9"]
    assert "apisync.staging.parts" in reported["http/synthetic.py:10"]
    assert "has no rule" in reported["ghost.py:1"]


def test_dags_use_the_entry_points_only() -> None:
    source = "\n".join(
        [
            "from apisync.defaults import START_DATE",  # 1: allowed
            "from apisync.pipeline import sync_stream",  # 2: allowed
            "from apisync.pipeline.tasks import warehouse_asset",  # 3: an inner module
            "from apisync import pipeline",  # 4: allowed, the package itself
            "from apisync.load import warehouse_from_connection",  # 5: not an entry point
        ]
    )
    modules = [
        SourceModule("dags.example", "dags/example.py", source),
        SourceModule("apisync.pipeline", "pipeline/__init__.py", "", is_package=True),
        SourceModule("apisync.pipeline.tasks", "pipeline/tasks.py", ""),
    ]
    found = violations(modules)
    assert [line.split(": ", 1)[0] for line in found] == ["dags/example.py:3", "dags/example.py:5"], found


def test_nothing_imports_the_command_line() -> None:
    """``pipeline`` may import everything of ours, the command line excepted; ``__main__`` may."""
    modules = [
        SourceModule("apisync.pipeline.tasks", "pipeline/tasks.py", "from apisync.cli import main"),
        SourceModule("apisync.cli", "cli/__init__.py", "from apisync.pipeline import tasks", is_package=True),
        SourceModule("apisync.__main__", "__main__.py", "from apisync.cli import main"),
        SourceModule("apisync.pipeline", "pipeline/__init__.py", "", is_package=True),
    ]
    found = violations(modules)
    assert [line.split(": ", 1)[0] for line in found] == ["pipeline/tasks.py:1"], found
    assert "nothing imports apisync.cli" in found[0]
