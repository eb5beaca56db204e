"""Imports point one way (docs/architecture.md): the layers are the subpackages of infra/, and each may
import only the layers below it; pulumi only in the Pulumi edge, google-cloud only in the BigQuery edge."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT

INFRA = REPO_ROOT / "infra"
# Each layer and the layers it may import (itself included). `contract` is shared with the policy pack.
MAY_IMPORT: dict[str, set[str]] = {
    "contract": set(),
    "model": {"contract", "model"},
    "analysis": {"contract", "model", "analysis"},
    "reports": {"contract", "model", "analysis", "reports"},
    "pulumi_edge": {"contract", "model", "analysis", "pulumi_edge"},  # analysis: a view's query as the stack sends it
    "bigquery_edge": {"contract", "model", "analysis", "bigquery_edge"},
    "files": {"contract", "model", "analysis", "pulumi_edge", "files"},
    "cli": {"contract", "model", "analysis", "reports", "pulumi_edge", "bigquery_edge", "files", "cli"},
    "__main__": {"pulumi_edge"},
}
PURE_LAYERS = ("contract", "model", "analysis", "reports")
# Who may import a library, by the longest matching prefix. protobuf is Pulumi's wire format, not google-cloud.
LIBRARY_LAYERS = {
    "pulumi": {"pulumi_edge"},
    "pulumi_gcp": {"pulumi_edge"},
    "google.protobuf": {"pulumi_edge"},
    "google": {"bigquery_edge"},
    "click": {"cli"},
    "rich": {"reports", "cli"},
    "sqlglot": {"analysis"},  # the contracts' parser: only `validate --contracts`, `diff --base`, `docs`, `verify`
}
# Loaded by the CLI only inside the commands that need them, so `validate` or `diff` never pay for them.
LAZY_IN_CLI = ("infra.pulumi_edge", "infra.bigquery_edge", "infra.files")


def _modules() -> list[tuple[str, str, Path]]:
    """(layer, dotted name, path) of every module of infra/."""
    found = []
    for path in sorted(INFRA.rglob("*.py")):
        parts = path.relative_to(INFRA).with_suffix("").parts
        layer = parts[0]
        found.append((layer, ".".join(("infra", *parts)).removesuffix(".__init__"), path))
    return found


def test_every_module_sits_in_a_layer() -> None:
    assert [name for layer, name, _ in _modules() if layer not in MAY_IMPORT and layer != "__init__"] == []


@pytest.mark.parametrize("module", [name for layer, name, _ in _modules() if layer in PURE_LAYERS])
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
            # `from infra.bigquery_edge import live` names the module in the alias.
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _layer_of(name: str) -> str | None:
    """The layer an imported infra module belongs to; None for a library."""
    parts = name.split(".")
    if parts[0] != "infra" or len(parts) == 1:
        return None
    return parts[1]


def _library_guard(name: str) -> str | None:
    matches = [prefix for prefix in LIBRARY_LAYERS if name == prefix or name.startswith(f"{prefix}.")]
    return max(matches, key=len, default=None)


def test_each_layer_imports_only_the_layers_below_it_and_its_libraries() -> None:
    offending = []
    for layer, module, path in _modules():
        for name in _imports(ast.parse(path.read_text(encoding="utf-8")), top_level_only=False):
            imported = _layer_of(name)
            if imported is not None and imported in MAY_IMPORT and imported not in MAY_IMPORT.get(layer, set()):
                offending.append(f"{module} imports {name}")
            guard = _library_guard(name)
            if guard is not None and layer not in LIBRARY_LAYERS[guard]:
                offending.append(f"{module} imports {name}")
    assert offending == []


def test_a_layer_rule_catches_an_import_from_above() -> None:
    """The rule reads what a module really imports: a model module reaching into an edge is named."""
    tree = ast.parse("def f():\n    from infra.bigquery_edge import live\n")
    names = _imports(tree, top_level_only=False)
    assert [n for n in names if _layer_of(n) not in MAY_IMPORT["model"]] == [
        "infra.bigquery_edge",
        "infra.bigquery_edge.live",
    ]


@pytest.mark.parametrize("module", [name for layer, name, _ in _modules() if layer == "cli"])
def test_the_cli_loads_the_edges_only_inside_commands(module: str) -> None:
    path = INFRA / Path(*module.split(".")[1:]).with_suffix(".py")
    if not path.exists():
        path = INFRA / Path(*module.split(".")[1:]) / "__init__.py"
    top_level = set(_imports(ast.parse(path.read_text(encoding="utf-8")), top_level_only=True))
    assert [name for name in top_level if name.startswith(LAZY_IN_CLI)] == []
    assert [name for name in top_level if _library_guard(name) in ("pulumi", "pulumi_gcp", "google")] == []


@pytest.mark.parametrize(
    ("args", "unloaded"),
    [
        (["validate"], ("pulumi", "pulumi_gcp", "google", "rich", "sqlglot")),
        (
            ["diff", "--old", "a.json", "--new", "b.json", "--format", "json"],
            ("pulumi", "google", "rich", "yaml", "msgspec", "subprocess", "tarfile", "sqlglot"),
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
        "import sys; from infra.cli.main import main\n"
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


# What else ends a click command with a code: click's Exit and Abort (raised or called), ctx.abort().
_ENDINGS = frozenset({"SystemExit", "Exit", "Abort", "abort", "_exit"})


def _endings(tree: ast.Module, module_exit: bool) -> list[str]:
    """Every name or attribute that ends the process by raising, not by calling exit: `raise SystemExit`,
    `click.exceptions.Exit(1)`, `ctx.abort()`. `module_exit`: the module's own `Exit` (cli/main.py's codes)."""
    found = []
    for node in ast.walk(tree):
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        if name in _ENDINGS and not (module_exit and name == "Exit" and isinstance(node, ast.Name)):
            found.append(f"{getattr(node, 'lineno', '?')}: {ast.unparse(node)}")
    return found


def test_exit_codes_are_decided_in_one_place() -> None:
    """Only the CLI ends the process, and always with what cli.exit_code maps the outcome to (README, "Deadlines
    and exit codes of the live commands"): no reporter or command returns or raises a code of its own."""
    elsewhere = [
        f"{path.name}:{node.lineno}"
        for _, _, path in _modules()
        if path != INFRA / "cli" / "main.py"
        for node in _exits(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert elsewhere == []
    raised = [
        f"{path.name}:{ending}"
        for _, _, path in _modules()
        for ending in _endings(ast.parse(path.read_text(encoding="utf-8")), path == INFRA / "cli" / "main.py")
    ]
    assert raised == []
    cli = (INFRA / "cli" / "main.py").read_text(encoding="utf-8")
    exits = _exits(ast.parse(cli))
    assert exits
    assert [ast.unparse(node) for node in exits if not ast.unparse(node).startswith("sys.exit(exit_code(")] == []


@pytest.mark.parametrize(
    "code", ["raise click.exceptions.Exit(1)", "raise SystemExit", "click.get_current_context().abort()"]
)
def test_the_exit_rule_catches_a_code_raised_rather_than_called(code: str) -> None:
    assert _endings(ast.parse(f"def report():\n    {code}\n"), module_exit=False) != []


# Function-level imports outside the CLI edge, each for what a fast command must not load (measured above).
LAZY_OUTSIDE_THE_CLI = {
    "infra.files.basediff": {"infra.pulumi_edge.mockrun"},  # pulumi: only `diff --stack` runs the program
    # The catalog's types: not for `diff --old/--new`.
    "infra.analysis.changes": {"infra.model.render", "infra.model.table_properties"},
    "infra.reports.diffreport": {"html", "rich._ratio", "rich._wrap", "rich.cells"},  # the text report's, markdown's
    "infra.model.documents": {"yaml"},  # `diff --old/--new` reads JSON only
    "infra.model.problems": {"msgspec"},  # only once a document was refused
    "infra.model.settings": {"difflib"},  # only for a misspelt key
}


def test_laziness_is_at_the_cli_edge() -> None:
    """The cli package imports what a command needs inside it; every other module at its top, but for the
    imports listed with the reason they wait."""
    lazy: dict[str, set[str]] = {}
    for layer, module, path in _modules():
        if layer == "cli":
            continue
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.Import):
                        lazy.setdefault(module, set()).update(alias.name for alias in node.names)
                    elif isinstance(node, ast.ImportFrom):
                        lazy.setdefault(module, set()).add(str(node.module))
    assert lazy == LAZY_OUTSIDE_THE_CLI


DOCUMENTS = ("README.md", "docs/architecture.md", "docs/declaration.md", "docs/settings.md")


def test_every_module_path_the_documents_name_exists() -> None:
    """A path such as `infra/model/settings.py` in the README or docs/ is a file (the flat layout's are gone)."""
    missing = [
        f"{document}: {path}"
        for document in DOCUMENTS
        for path in re.findall(r"\binfra/[\w/]+\.py\b", (REPO_ROOT / document).read_text(encoding="utf-8"))
        if not (REPO_ROOT / path).is_file()
    ]
    assert missing == []


def test_every_file_name_the_architecture_names_is_a_file() -> None:
    """`live.py`, `cli/main.py`: each name of a Python file in docs/architecture.md is one of the repository's."""
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    known = files.stdout.splitlines()
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w/]+\.py)`", text))
    assert sorted(name for name in named if not any(f == name or f.endswith(f"/{name}") for f in known)) == []


def _layer_rows() -> dict[str, tuple[str, str]]:
    """The layer table of docs/architecture.md: package -> (what it holds, what it may import)."""
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `infra/(\w+)(?:/|\.py)` \| (.*) \| (.*) \|$", text, re.MULTILINE)
    return {package: (holds, imports) for package, holds, imports in rows}


def test_the_layer_table_names_every_module_of_each_layer() -> None:
    rows = _layer_rows()
    assert set(rows) == set(MAY_IMPORT)
    unnamed = [
        module
        for layer, module, path in _modules()
        if path.name != "__init__.py" and layer in rows and path.parent != INFRA
        if f"`{path.stem}`" not in rows[layer][0] and path.stem != "__main__"
    ]
    assert unnamed == []


def test_the_layer_table_says_what_each_layer_may_import() -> None:
    """The layers a row names as importable are the ones the rule above allows (`contract` is everyone's)."""
    for layer, (_, imports) in _layer_rows().items():
        if layer == "cli":
            assert imports.startswith("every layer")
            continue
        named = {name for name in re.findall(r"`(\w+)`", imports) if name in MAY_IMPORT}
        assert named - {"contract"} == MAY_IMPORT[layer] - {layer, "contract"}, layer


def test_a_test_that_builds_a_rich_console_keeps_the_shell_s_terminal_out() -> None:
    """rich's Console reads NO_COLOR, TERM, COLUMNS, ... itself; helpers.invoke clears them for the CLI, the
    no_terminal_settings fixture for a Console a test builds (with NO_COLOR=1 set, a reference output lost
    its colour and the comparison failed)."""
    building = [
        path.name
        for path in sorted((REPO_ROOT / "tests").glob("test_*.py"))
        if "Console(" in (text := path.read_text(encoding="utf-8")) and "no_terminal_settings" not in text
    ]
    assert building == []


def test_one_class_name_means_one_thing() -> None:
    """No two classes of infra/ and policies/ share a name (a policy rule was once called Citation like the
    classifier's source of a verdict, and a column attribute's Change like a classified Change)."""
    files = subprocess.run(
        ["git", "ls-files", "infra/*.py", "policies/*.py"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    where: dict[str, list[str]] = {}
    for name in files.stdout.splitlines():
        for node in ast.walk(ast.parse((REPO_ROOT / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(name)
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
