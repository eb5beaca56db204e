"""Imports point one way (docs/architecture.md): a pure core, one Pulumi edge, one google-cloud module."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT

PURE = [
    "infra.adoption",
    "infra.catalog",
    "infra.changes",
    "infra.column_attributes",
    "infra.contract",
    "infra.cost",
    "infra.declared",
    "infra.diffreport",
    "infra.docs",
    "infra.documents",
    "infra.drift",
    "infra.history",
    "infra.historyreport",
    "infra.migratereport",
    "infra.migration",
    "infra.planreport",
    "infra.previewgate",
    "infra.problems",
    "infra.render",
    "infra.renames",
    "infra.resourcediff",
    "infra.rules",
    "infra.schema",
    "infra.settings",
    "infra.settingsdoc",
    "infra.table_properties",
]
PULUMI_EDGE = {"infra.mockrun", "infra.program", "infra.resources"}
# Who may import what, by the longest matching prefix. protobuf is Pulumi's wire format, not google-cloud.
ALLOWED = {
    "pulumi": PULUMI_EDGE,
    "pulumi_gcp": PULUMI_EDGE,
    "google.protobuf": PULUMI_EDGE,
    "google": {"infra.live", "infra.live_migrate", "infra.live_history", "infra.live_lock"},
}
# Loaded by the CLI only inside the commands that need them, so `validate` or `diff` never pay for them.
LAZY_IN_CLI = {*PULUMI_EDGE, "infra.live", "infra.live_migrate", "infra.live_history", "infra.live_lock"}


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_loads_neither_pulumi_nor_google(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_gcp', 'google')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _imports(tree: ast.Module, top_level_only: bool) -> list[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            # `from infra import live` names the module in the alias.
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _guard(name: str) -> str | None:
    matches = [prefix for prefix in ALLOWED if name == prefix or name.startswith(f"{prefix}.")]
    return max(matches, key=len, default=None)


def test_only_the_edges_import_pulumi_and_google() -> None:
    offending = []
    for path in sorted((REPO_ROOT / "infra").glob("*.py")):
        module = f"infra.{path.stem}"
        for name in _imports(ast.parse(path.read_text(encoding="utf-8")), top_level_only=False):
            guard = _guard(name)
            if guard is not None and module not in ALLOWED[guard]:
                offending.append(f"{module} imports {name}")
    assert offending == []


@pytest.mark.parametrize("module", ["cli", "commands", "options", "reporters"])
def test_the_cli_loads_the_edges_only_inside_commands(module: str) -> None:
    tree = ast.parse((REPO_ROOT / "infra" / f"{module}.py").read_text(encoding="utf-8"))
    top_level = set(_imports(tree, top_level_only=True))
    assert top_level & LAZY_IN_CLI == set()
    assert not [name for name in top_level if _guard(name)]


@pytest.mark.parametrize(
    ("args", "unloaded"),
    [
        (["validate"], ("pulumi", "pulumi_gcp", "google", "rich")),
        (
            ["diff", "--old", "a.json", "--new", "b.json", "--format", "json"],
            ("pulumi", "google", "rich", "yaml", "msgspec", "subprocess", "tarfile"),
        ),
        # The text report wraps with rich's word division and cell widths, without its Console and Table.
        (
            ["diff", "--old", "a.json", "--new", "b.json", "--format", "text"],
            ("pulumi", "google", "rich.console", "rich.table", "yaml", "msgspec", "subprocess", "tarfile"),
        ),
    ],
)
def test_a_fast_command_loads_only_what_it_needs(tmp_path: Path, args: list[str], unloaded: tuple[str, ...]) -> None:
    (tmp_path / "a.json").write_text('[{"name": "id", "type": "STRING"}]')
    (tmp_path / "b.json").write_text('[{"name": "id", "type": "STRING"}, {"name": "note", "type": "STRING"}]')
    code = (
        "import sys; from infra.cli import main\n"
        "try: main(sys.argv[1:])\n"
        "except SystemExit as done: assert not done.code, done.code\n"
        "print(sorted({*sys.modules, *(m.split('.')[0] for m in sys.modules)}))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    loaded = done.stdout.strip().splitlines()[-1]
    assert [name for name in unloaded if repr(name) in loaded] == []


def test_nothing_refers_to_a_document_outside_the_repository() -> None:
    """The product documents itself (README, docs/): a design file its users do not have is never cited."""
    outside = ["DESIGN" + ".md", "../" + "shared/"]
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    citing = [
        name
        for name in files.stdout.splitlines()
        if (REPO_ROOT / name).is_file()
        and not name.startswith("tests/corpus/")
        and any(word in (REPO_ROOT / name).read_text(encoding="utf-8", errors="replace") for word in outside)
    ]
    assert citing == []


def test_what_the_policy_pack_imports_of_infra_needs_only_the_standard_library() -> None:
    """The pack runs in its own virtualenv, without msgspec, PyYAML or google-cloud."""
    code = (
        "import sys, policies.validators; print(sorted({m.split('.')[0] for m in sys.modules} & {'msgspec', 'yaml'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_in_process_cli_call_goes_through_helpers_invoke() -> None:
    """One runner isolates the emulator and terminal variables (FORCE_COLOR, NO_COLOR, ...): a test with its own
    click runner would inherit the developer's and fail, or pass, by the shell it runs in."""
    runners = []
    for path in sorted((REPO_ROOT / "tests").glob("*.py")):
        if path.name == "helpers.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = _imports(tree, top_level_only=False)
        if any(name == "click.testing" or name.startswith("click.testing.") for name in names):
            runners.append(path.name)
    assert runners == []


def _exits(tree: ast.Module) -> list[ast.Call]:
    """Every call that ends the process: `sys.exit(...)`, `ctx.exit(...)`, `os._exit(...)`, `SystemExit(...)`."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in ("exit", "_exit", "SystemExit")
    ]


def test_exit_codes_are_decided_in_one_place() -> None:
    """Only the CLI ends the process, and always with what cli.exit_code maps the outcome to (README, "Deadlines
    and exit codes of the live commands"): no reporter or command returns or raises a code of its own."""
    elsewhere = [
        f"{path.name}:{node.lineno}"
        for path in sorted((REPO_ROOT / "infra").glob("*.py"))
        if path.name != "cli.py"
        for node in _exits(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert elsewhere == []
    cli = (REPO_ROOT / "infra" / "cli.py").read_text(encoding="utf-8")
    exits = _exits(ast.parse(cli))
    assert exits
    assert [ast.unparse(node) for node in exits if not ast.unparse(node).startswith("sys.exit(exit_code(")] == []


# Function-level imports outside the CLI edge, each for what a fast command must not load (measured above).
LAZY_OUTSIDE_THE_CLI = {
    "infra.basediff": {"infra.mockrun"},  # pulumi: only `diff --stack` runs the program
    "infra.changes": {"infra.render", "infra.table_properties"},  # the catalog's types: not for `diff --old/--new`
    "infra.diffreport": {"html", "rich._ratio", "rich._wrap", "rich.cells"},  # the text report's, markdown's
    "infra.documents": {"yaml"},  # `diff --old/--new` reads JSON only
    "infra.problems": {"msgspec"},  # only once a document was refused
    "infra.settings": {"difflib"},  # only for a misspelt key
}


def test_laziness_is_at_the_cli_edge() -> None:
    """cli, commands, options and reporters import what a command needs inside it; every other module at its top,
    but for the imports listed with the reason they wait."""
    lazy: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / "infra").glob("*.py")):
        if path.stem in ("cli", "commands", "options", "reporters"):
            continue
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        if isinstance(node, ast.Import):
                            names = [alias.name for alias in node.names]
                        elif node.module == "infra":  # `from infra import live` names the module in the alias
                            names = [f"infra.{alias.name}" for alias in node.names]
                        else:
                            names = [str(node.module)]
                        lazy.setdefault(f"infra.{path.stem}", set()).update(names)
    assert lazy == LAZY_OUTSIDE_THE_CLI
