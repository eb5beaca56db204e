"""The data dictionary, docs/tables.md, rendered from the catalog, and the stack settings reference, docs/settings.md,
rendered from infra/model/settings.py and Pulumi.yaml: both committed and kept current."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest
from helpers import FIXTURE_ROOT, REPO_ROOT, invoke, run_cli

from infra.model.catalog import Catalog, Dataset, load_catalog
from infra.model.schema import Column
from infra.model.settings import PROJECT, StackSettings
from infra.model.table_properties import Table, TimePartitioning
from infra.reports.docs import (
    DECLARATION_FILE,
    DOCS_FILE,
    Reference,
    declaration_meanings,
    references,
    render_data_dictionary,
    render_declaration_reference,
)
from infra.reports.settingsdoc import SETTINGS_FILE, UndocumentedSetting, render_settings_reference


def one_table_dataset(*columns: Column, time_partitioning: TimePartitioning | None = None) -> Dataset:
    table = Table("d", "t", "A table.", columns, "schemas/d/t.json", time_partitioning=time_partitioning)
    return Dataset("d", "A dataset.", {}, (table,), "stacks/d.yaml")


def test_the_committed_data_dictionary_is_current() -> None:
    result = invoke("docs", "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "✓ docs/tables.md is up to date\n"


def test_a_stale_data_dictionary_fails_the_check_and_says_how_to_regenerate(repo_copy: Path) -> None:
    schema = repo_copy / "schemas" / "tenants" / "tenant_profiles.json"
    schema.write_text(schema.read_text().replace("Human-readable tenant name", "Tenant name", 1))

    stale = invoke("docs", "--check", "--root", str(repo_copy), cwd=repo_copy)
    assert stale.returncode == 1
    assert stale.stderr == (
        f"docs/tables.md is out of date; run `python -m infra.cli docs --root {repo_copy}` and commit the result.\n"
    )

    written = invoke("docs", "--root", str(repo_copy), cwd=repo_copy)
    assert written.returncode == 0, written.stderr
    assert "| `display_name` | STRING | REQUIRED | Tenant name shown" in (repo_copy / DOCS_FILE).read_text()
    assert invoke("docs", "--check", "--root", str(repo_copy), cwd=repo_copy).returncode == 0


def test_a_missing_data_dictionary_fails_the_check(repo_copy: Path) -> None:
    (repo_copy / DOCS_FILE).unlink()
    result = invoke("docs", "--check", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 1
    assert "is out of date" in result.stderr
    assert not (repo_copy / DOCS_FILE).exists()


def test_invalid_declarations_are_reported_not_rendered(repo_copy: Path) -> None:
    schema = repo_copy / "schemas" / "tenants" / "tenant_profiles.json"
    schema.write_text(schema.read_text().replace('"STRING"', '"STRNG"', 1))
    before = (repo_copy / DOCS_FILE).read_text()
    result = invoke("docs", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith("schemas/tenants/tenant_profiles.json:tenant_id.type: type 'STRNG'")
    assert "Traceback" not in result.stderr
    assert (repo_copy / DOCS_FILE).read_text() == before


@pytest.mark.parametrize("root", [REPO_ROOT, FIXTURE_ROOT], ids=["repository", "fixture"])
def test_every_table_is_documented(root: Path) -> None:
    text = (root / DOCS_FILE).read_text()
    for table in load_catalog(root).tables():
        assert f"### `{table.key}`" in text
        assert table.description in text


def test_columns_partitioning_and_clustering_are_documented() -> None:
    text = (FIXTURE_ROOT / DOCS_FILE).read_text()
    assert "| `tenant_id` | STRING | REQUIRED | Identifier of the tenant that owns this row" in text
    assert "- Partitioning: DAY on usage_date, partitions expire after 730 d" in text
    assert "- Partition filter: required" in text
    assert "- Clustering: tenant_id, status, plan_code" in text
    assert "| &emsp;`source.credential_id` | STRING | NULLABLE | Connection ref:" in text


def test_nested_columns_are_indented_under_their_record() -> None:
    dataset = one_table_dataset(
        Column("source", "RECORD", "REQUIRED", "Where from.", fields=(Column("kind", "STRING", description="Kind."),)),
        Column("tags", "STRING", "REPEATED", "A | B."),
        Column("amount", "NUMERIC", precision=10, scale=2),
    )
    text = render_data_dictionary(Catalog((dataset,)))
    assert "| `source` | RECORD | REQUIRED | Where from. |" in text
    assert "| &emsp;`source.kind` | STRING | NULLABLE | Kind. |" in text
    assert "| `tags` | STRING | REPEATED | A \\| B. |" in text  # a pipe in a description stays in its cell
    assert "| `amount` | NUMERIC(10, 2) | NULLABLE |   |" in text


def test_partitions_kept_forever_are_said_so() -> None:
    partitioned = one_table_dataset(
        Column("day", "DATE"), time_partitioning=TimePartitioning("DAY", "day", keep_forever=True)
    )
    text = render_data_dictionary(Catalog((partitioned,)))
    assert "- Partitioning: DAY on day, partitions kept" in text
    assert "- Partition filter: not required" in text


def test_the_dataset_header_shows_its_time_travel_window_and_billing_model() -> None:
    dataset = one_table_dataset(Column("id", "STRING", "REQUIRED"))
    assert (
        "Time travel 168 h (changed or deleted data recoverable 7 days back); storage billing not declared "
        "(BigQuery's default, LOGICAL).\n" in render_data_dictionary(Catalog((dataset,)))
    )
    physical = replace(dataset, max_time_travel_hours=96, storage_billing_model="PHYSICAL")
    assert (
        "Time travel 96 h (changed or deleted data recoverable 4 days back); storage billing PHYSICAL.\n"
        in render_data_dictionary(Catalog((physical,)))
    )


def test_diagram_edges_come_only_from_references_the_descriptions_state() -> None:
    dataset = load_catalog(FIXTURE_ROOT).datasets[0]
    edges = references(dataset)
    assert Reference("tenant_api_keys", "tenant_id", "tenant_profiles", "tenant_id") in edges
    assert (
        Reference("tenant_pipeline_configs", "source.credential_id", "tenant_cloud_credentials", "credential_id")
        in edges
    )
    assert Reference("scheduled_pipeline_runs", "pipeline_version", "tenant_pipeline_configs", "version") in edges
    # "Mirrors plan_code of the tenant's active subscription" names no table: no edge is guessed from it.
    assert not any(edge.table == "tenant_profiles" for edge in edges)
    text = (FIXTURE_ROOT / DOCS_FILE).read_text()
    assert "```mermaid\nflowchart LR\n" in text
    assert '  t1["tenant_profiles"]\n  t2["tenant_api_keys"]\n' in text
    assert '  t2 -->|"tenant_id"| t1' in text
    assert '  t7 -->|"pipeline_id, pipeline_version → version"| t6' in text


def test_text_that_only_looks_like_a_reference_makes_no_edge() -> None:
    dataset = one_table_dataset(
        Column("id", "STRING", description="See other.id, e.g. t.missing or t.id (its own name)."),
    )
    assert references(dataset) == []
    assert "mermaid" not in render_data_dictionary(Catalog((dataset,)))


def test_table_ids_that_are_mermaid_keywords_are_only_labels() -> None:
    """Mermaid's flowchart syntax page: a lower-case `end` breaks a flowchart; `class`, `style`, `graph`,
    `subgraph` start statements. Node ids are generated, the table id is a quoted label."""
    keywords = ("end", "class", "style", "graph", "subgraph", "click", "linkStyle", "o_table", "x_table")
    tables = tuple(
        Table("d", name, "", (Column("id", "STRING", description=f"Refers to {keywords[0]}.id."),), f"s/{name}.json")
        for name in keywords
    )
    text = render_data_dictionary(Catalog((Dataset("d", "", {}, tables, "stacks/d.yaml"),)))
    diagram = text[text.index("```mermaid") : text.index("```", text.index("```mermaid") + 3)]
    lines = diagram.splitlines()[2:]
    assert lines[: len(keywords)] == [f'  t{n}["{name}"]' for n, name in enumerate(keywords, start=1)]
    edges = lines[len(keywords) :]
    assert edges and all(re.fullmatch(r'  t\d+ -->\|"[^"]*"\| t\d+', edge) for edge in edges)
    assert '  t2 -->|"id"| t1' in edges


def test_a_range_type_is_escaped_so_github_does_not_read_it_as_html() -> None:
    dataset = one_table_dataset(
        Column("period", "RANGE", range_element_type="DATE", description="Valid <from, to> & more"),
    )
    text = render_data_dictionary(Catalog((dataset,)))
    assert "| `period` | RANGE&lt;DATE&gt; | NULLABLE | Valid &lt;from, to&gt; &amp; more |" in text
    assert "<DATE>" not in text


def test_a_directory_where_the_data_dictionary_goes_is_one_line_and_exit_2(repo_copy: Path) -> None:
    (repo_copy / DOCS_FILE).unlink()
    (repo_copy / DOCS_FILE).mkdir()
    for args in (("docs",), ("docs", "--check")):
        result = invoke(*args, "--root", str(repo_copy), cwd=repo_copy)
        verb = "read" if "--check" in args else "write"
        assert (result.returncode, result.stderr) == (2, f"error: cannot {verb} docs/tables.md: is a directory\n")


@pytest.mark.parametrize("args", [("docs",), ("docs", "--check")])
def test_a_named_pipe_where_the_data_dictionary_goes_is_one_line_and_exit_2(repo_copy: Path, args: tuple[str]) -> None:
    """Opening a FIFO blocks until the other end comes (fifo(7)): `docs` waited for a reader, `--check` for a
    writer, for ever. A process with a timeout, since the old code hangs."""
    (repo_copy / DOCS_FILE).unlink()
    os.mkfifo(repo_copy / DOCS_FILE)
    result = run_cli(*args, "--root", str(repo_copy), cwd=repo_copy, timeout=30)
    verb = "read" if "--check" in args else "write"
    assert (result.returncode, result.stderr) == (
        2,
        f"error: cannot {verb} docs/tables.md: not a regular file (a named pipe, socket or device); "
        "remove it and run docs again\n",
    )


def _as_nobody(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m infra.cli` as the unprivileged user 65534: root's writes are never denied by file modes.
    Skips, saying why, where no such user can run this interpreter."""
    command = [sys.executable, "-m", "infra.cli", *args]
    if os.geteuid() != 0:
        prefix: list[str] = []
    elif shutil.which("setpriv"):
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    else:
        pytest.skip("running as root without setpriv: no unprivileged user to be denied the write")
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.devnull}
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import infra.cli"], env=env, capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"user 65534 cannot run this interpreter with the repository: {probe.stderr.decode()[-200:]}")
    return subprocess.run(
        [*prefix, *command], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
    )


@pytest.fixture
def shared_copy() -> Iterator[Path]:
    """A copy of the fixture repository that user 65534 can read (pytest's tmp_path is private to root)."""
    top = Path(tempfile.mkdtemp(prefix="docs-permissions-"))
    try:
        root = top / "repo"
        shutil.copytree(FIXTURE_ROOT, root)
        for path in (top, *top.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield root
    finally:
        shutil.rmtree(top)


def test_a_read_only_data_dictionary_is_one_line_and_exit_2(shared_copy: Path) -> None:
    target = shared_copy / DOCS_FILE
    target.chmod(0o444)
    result = _as_nobody("docs", "--root", str(shared_copy), cwd=shared_copy)
    assert (result.returncode, result.stderr) == (2, "error: cannot write docs/tables.md: permission denied\n")
    assert target.read_text() == (FIXTURE_ROOT / DOCS_FILE).read_text()

    target.chmod(0o000)
    result = _as_nobody("docs", "--check", "--root", str(shared_copy), cwd=shared_copy)
    assert (result.returncode, result.stderr) == (2, "error: cannot read docs/tables.md: permission denied\n")


def test_the_committed_declaration_reference_is_current() -> None:
    """docs/declaration.md is generated from the declaration's structs and the table properties."""
    committed = (REPO_ROOT / DECLARATION_FILE).read_text(encoding="utf-8")
    assert committed == render_declaration_reference(), "run `python scripts/declaration_reference.py` and commit"


def test_every_key_of_the_declaration_file_is_documented() -> None:
    """A key added to a struct of infra/model/catalog.py without its meaning fails here (and in the generator)."""
    meanings = declaration_meanings()
    text = render_declaration_reference()
    assert all(f"| `{path}` |" in text for path in meanings)
    assert text.count("\n| `") == len(meanings)


def test_the_committed_settings_reference_is_current() -> None:
    committed = (REPO_ROOT / SETTINGS_FILE).read_text(encoding="utf-8")
    assert committed == render_settings_reference(REPO_ROOT), (
        f"{SETTINGS_FILE} is out of date; run `python scripts/settings_reference.py` and commit the result"
    )


def test_the_settings_reference_has_every_key_with_its_type_and_default() -> None:
    rows = {
        line.split(" | ")[0].strip("|` "): line.split(" | ")[1:3]
        for line in render_settings_reference(REPO_ROOT).splitlines()
        if line.startswith("| `")
    }
    fields = msgspec.structs.fields(StackSettings)
    assert list(rows) == ["gcp:project", *(f"{PROJECT}:{field.encode_name}" for field in fields)]
    assert rows[f"{PROJECT}:protect"] == ["boolean", "`true`"]
    assert rows[f"{PROJECT}:migrationMaxBytes"] == ["integer, optional", "unset"]
    assert rows[f"{PROJECT}:labels"] == ["map of string to string", "`{}`"]
    access = "mapping of readers (list of string), writers (list of string), owners (list of string), optional"
    assert rows[f"{PROJECT}:access"] == [access, "unset"]


def _pulumi_yaml_without(tmp_path: Path, line_start: str) -> Path:
    text = (REPO_ROOT / "Pulumi.yaml").read_text(encoding="utf-8")
    kept = [line for line in text.splitlines(keepends=True) if not line.startswith(line_start)]
    assert len(kept) == len(text.splitlines()) - 1
    (tmp_path / "Pulumi.yaml").write_text("".join(kept), encoding="utf-8")
    return tmp_path


def test_a_setting_pulumi_yaml_does_not_describe_stops_the_reference(tmp_path: Path) -> None:
    root = _pulumi_yaml_without(tmp_path, f"#   {PROJECT}:labels ")
    with pytest.raises(UndocumentedSetting, match=f"no description of {PROJECT}:labels$"):
        render_settings_reference(root)


def test_a_description_of_no_setting_stops_the_reference(tmp_path: Path) -> None:
    text = (REPO_ROOT / "Pulumi.yaml").read_text(encoding="utf-8")
    stale = text.replace(f"#   {PROJECT}:labels ", f"#   {PROJECT}:tags ", 1)
    (tmp_path / "Pulumi.yaml").write_text(stale, encoding="utf-8")
    with pytest.raises(
        UndocumentedSetting,
        match=f"no description of {PROJECT}:labels; and a description of no setting: {PROJECT}:tags$",
    ):
        render_settings_reference(tmp_path)
