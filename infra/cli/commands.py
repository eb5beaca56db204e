"""What each CLI command does, as one function returning a result object for a reporter (infra/cli/reporters.py).

The CLI parses options and maps outcomes to exit codes; the workflows live here. Each function loads the
catalog once and validates it before anything else. This is the CLI edge, where laziness lives: the edges
(the Pulumi mock run, the BigQuery API, git) and the core's modules are imported inside the functions that
need them, so `validate` never loads pulumi, google or rich, nor `diff --old/--new` PyYAML or msgspec
(tests/test_architecture.py measures both).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.cli.reporters import import_document_text
from infra.model.documents import NOT_REGULAR, NotRegularFileError, display_path, read_bytes, write_bytes
from infra.model.problems import DeclarationError, Problem

# The catalog is imported by the commands that read it: `diff --old/--new` does not.
if TYPE_CHECKING:
    from infra.analysis.changes import DiffResult
    from infra.analysis.drift import Check, VerifyReport
    from infra.analysis.previewgate import PreviewStep
    from infra.bigquery_edge.live import SnapshotReport
    from infra.bigquery_edge.live_migrate import MigrateReport
    from infra.model.catalog import Catalog
    from infra.model.contracts import Contract
    from infra.model.registrations import ProgramRun
    from infra.model.settings import Settings
    from infra.model.table_properties import Table


class CommandFailed(Exception):
    """What stops a command: `prefix: message` on stderr. As such, nothing could be checked or done; the kinds
    below say otherwise. What each exits with is decided in one place, infra/cli/main.py `exit_code`."""

    def __init__(self, message: str, prefix: str = "error"):
        super().__init__(message)
        self.prefix = prefix


class Refused(CommandFailed):
    """What the command checks first does not hold: a snapshot BigQuery refuses, a resource no import adopts."""

    def __init__(self, message: str, prefix: str = "refused"):
        super().__init__(message, prefix)


class Interrupted(CommandFailed):
    """Stopped by SIGINT; the message says in which state it left the table."""

    def __init__(self, message: str):
        super().__init__(message, "interrupted")


class BadOption(ValueError):
    """A usage error found while running: a --tables name that names no declared table, a --base that git
    cannot resolve. `option` names the option when the message does not."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class Validated:
    datasets: int
    tables: int
    columns: int
    stacks: list[str]
    warnings: list[Problem]
    contracts: int | None = None  # with --contracts: how many resolve against the catalog


def validate(root: Path, contracts: bool = False) -> Validated:
    """The catalog and every stack's config, all problems at once (DeclarationError); with `contracts`, every
    contract too (sqlglot is loaded for them only)."""
    from infra.model.catalog import catalog_warnings, load_catalog
    from infra.model.schema import count_columns
    from infra.model.settings import list_stacks, load_settings, read_project_config

    problems: list[Problem] = []
    catalog = None
    try:
        catalog = load_catalog(root)
    except DeclarationError as error:
        problems += error.problems
    stacks = list_stacks(root)
    try:
        project = read_project_config(root)  # once: it applies to every stack
    except DeclarationError as error:
        problems += error.problems
        stacks = []
    for stack in stacks:
        try:
            load_settings(root, stack, catalog, project)
        except DeclarationError as error:
            problems += [problem for problem in error.problems if problem not in problems]  # Pulumi.yaml's once
    checked = None
    if contracts:
        shipped, found = contract_problems(root, catalog)
        problems += found
        checked = len(shipped)
    if problems or catalog is None:
        raise DeclarationError(problems)
    tables = catalog.tables()
    columns = sum(count_columns(t.schema) for t in tables)
    return Validated(len(catalog.datasets), len(tables), columns, stacks, catalog_warnings(catalog), checked)


def contract_problems(root: Path, catalog: Catalog | None) -> tuple[list[Contract], list[Problem]]:
    """The contracts of contracts/ and their problems (their files' and, once the catalog loaded, their SQL's),
    and the problems of the views' SQL, which the same checker reads."""
    from infra.analysis.contracts import check_all
    from infra.analysis.views import view_problems
    from infra.model.contracts import read_contracts

    shipped, problems = read_contracts(root)
    if catalog is not None:
        problems += [p.problem() for checked in check_all(shipped, catalog) for p in checked.problems]
        problems += view_problems(catalog)
    return shipped, problems


def load_stack(root: Path, stack: str) -> tuple[Catalog, Settings]:
    """The validated catalog and stack settings; a missing stack file raises MissingStackError first."""
    from infra.model.catalog import load_catalog
    from infra.model.settings import load_settings, require_stack_file

    require_stack_file(root, stack)
    catalog = load_catalog(root)
    return catalog, load_settings(root, stack, catalog)


def plan(root: Path, stack: str) -> ProgramRun:
    """What the program registers for the stack, run under Pulumi's mocks."""
    from infra.pulumi_edge.mockrun import run_stack

    return run_stack(root, stack)


def diff(
    root: Path, old_file: Path | None, new_file: Path | None, external: bool, base: str | None, stack: str | None
) -> DiffResult:
    if old_file is not None and new_file is not None:
        from infra.files.filediff import diff_schema_files

        return diff_schema_files(old_file, new_file, external=external)
    from infra.files import basediff

    if stack is not None:
        from infra.model.settings import require_stack_file

        require_stack_file(root, stack)
    try:
        return basediff.diff_against_base(root, base, stack)
    except basediff.BaseRefError as error:
        raise BadOption(f"--base: {error}") from None


@dataclass(frozen=True)
class DocsResult:
    root: Path
    target: Path
    up_to_date: bool  # with --check: the committed file is what would be written
    written: bool


def docs(root: Path, check: bool) -> DocsResult:
    from infra.model.catalog import load_catalog
    from infra.reports.docs import DOCS_FILE, render_data_dictionary

    target = root / DOCS_FILE
    catalog = load_catalog(root)
    text = render_data_dictionary(catalog, contract_uses(root, catalog)).encode("utf-8")
    if check:
        try:
            current = read_bytes(target)
        except FileNotFoundError:
            current = None
        except OSError as error:  # a directory, no read permission: nothing could be checked
            raise CommandFailed(f"cannot read {display_path(target)}: {_cause(error)}") from None
        return DocsResult(root, target, up_to_date=current == text, written=False)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(target, text)
    except OSError as error:  # a directory, read-only, docs/ a file
        raise CommandFailed(f"cannot write {display_path(target)}: {_cause(error)}") from None
    return DocsResult(root, target, up_to_date=True, written=True)


def contract_uses(root: Path, catalog: Catalog) -> dict[tuple[str, str], list[str]] | None:
    """Per (dataset.table, column path) the contracts that use it; None without a contracts/ folder."""
    from infra.analysis.contracts import check_all
    from infra.model.contracts import CONTRACTS_DIR, read_contracts

    if not (root / CONTRACTS_DIR).is_dir():
        return None
    shipped, _ = read_contracts(root)
    used_by: dict[tuple[str, str], list[str]] = {}
    for checked in check_all(shipped, catalog):
        for use in sorted(checked.uses):
            used_by.setdefault(use, []).append(checked.contract.name.removesuffix(".sql"))
    return used_by


def _cause(error: OSError) -> str:
    """The operating system's reason, as a clause: "is a directory", "permission denied"."""
    if isinstance(error, NotRegularFileError):
        return f"{NOT_REGULAR}; remove it and run docs again"
    reason = error.strerror or str(error)
    return reason[:1].lower() + reason[1:]


@dataclass(frozen=True)
class GateResult:
    stack: str
    others: list[str]  # changes that neither delete nor replace
    steps: list[PreviewStep]

    @property
    def refused(self) -> list[PreviewStep]:
        return [step for step in self.steps if step.approved_by is None]


def pulumi_project(root: Path) -> str:
    """The project's name, which the engine writes into every URN (Pulumi.yaml `name`); else one line, exit 2."""
    from infra.model.settings import read_project_config

    try:
        return read_project_config(root, must_exist=True).name
    except DeclarationError as error:
        raise CommandFailed(str(error.problems[0])) from None


def preview_gate(root: Path, stack: str, preview_file: Path, migration_file: Path | None) -> GateResult:
    """Every delete and replace of a `pulumi preview --json` document, each approved or not."""
    from infra.analysis import previewgate

    _, settings = load_stack(root, stack)
    project = pulumi_project(root)
    reading = preview_file
    try:
        migrated: frozenset[str] = frozenset()
        if migration_file is not None:
            reading = migration_file
            migration_plan = previewgate.load_document(
                migration_file.read_text(encoding="utf-8"), "migrate --format json"
            )
            migrated = previewgate.migrated_tables(migration_plan, settings)
        reading = preview_file
        document = previewgate.load_document(preview_file.read_text(encoding="utf-8"))
        steps = previewgate.destructive_steps(document, settings, project, migrated)
        others = previewgate.other_changes(document)
    except OSError as error:
        raise CommandFailed(f"cannot read {display_path(reading)}: {error.strerror or error}") from None
    except (UnicodeDecodeError, previewgate.PreviewDocumentError) as error:
        raise CommandFailed(f"{display_path(reading)}: {error}") from None
    return GateResult(stack, others, list(steps))


def select_tables(catalog: Catalog, names: str | None) -> list[Table]:
    """Tables named in --tables (table or dataset.table, comma-separated), or every declared table for None."""
    declared = catalog.tables()
    if names is None:
        return declared
    chosen: list[Table] = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        matches = [t for t in declared if name in (t.key, t.table_id)]
        retired = [
            f"{d.dataset_id}.{t}"
            for d in catalog.datasets
            for t in d.retired_tables
            if name in (t, f"{d.dataset_id}.{t}")
        ]
        if not matches and retired:
            raise BadOption(
                f"{name!r} is retired ({retired[0]} in retired_tables): this stack no longer manages it", "--tables"
            )
        if len(matches) != 1:
            why = "names no declared table" if not matches else "is declared in several datasets; write dataset.table"
            known = ", ".join(t.key for t in declared)
            raise BadOption(f"{name!r} {why} (declared: {known})", "--tables")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    if not chosen:
        raise BadOption("name at least one table", "--tables")
    return chosen


def verify(root: Path, stack: str, endpoint: str | None) -> VerifyReport:
    from infra.bigquery_edge import live, live_contracts, live_history
    from infra.model import history
    from infra.model.contracts import read_contracts

    catalog, settings = load_stack(root, stack)
    shipped, _ = read_contracts(root)  # a file that cannot be read is `validate --contracts`' to say
    try:
        conn = live.connect(settings.project, endpoint)
        report = live.verify(conn, catalog, settings)
        contract_checks = live_contracts.dry_run(conn, catalog, settings, shipped, report)
        report = replace(report, checks=(*report.checks, *contract_checks))
    except live.LiveError as error:
        raise CommandFailed(str(error)) from None
    rows, why = None, ""
    try:
        rows = live_history.read(conn, settings, None)
    except live.API_FAILURES as error:  # the history informs; it never fails verify
        why = f"history not read ({live.describe(conn, error)})"
    return replace(report, migrations=tuple(history.last_migrations(rows, [t.key for t in catalog.tables()], why)))


@dataclass(frozen=True)
class SnapshotResult:
    report: SnapshotReport
    requested: int
    expire_days: int


def snapshot(root: Path, stack: str, endpoint: str | None, names: str | None, expire_days: int) -> SnapshotResult:
    from infra.bigquery_edge import live

    catalog, settings = load_stack(root, stack)
    chosen = select_tables(catalog, names)
    try:
        report = live.snapshot(live.connect(settings.project, endpoint), settings, chosen, expire_days)
    except live.SnapshotRefused as error:
        raise Refused(str(error)) from None
    except live.LiveError as error:
        raise CommandFailed(str(error)) from None
    return SnapshotResult(report, len(chosen), expire_days)


def migrate(
    root: Path,
    stack: str,
    endpoint: str | None,
    names: str | None,
    apply: bool,
    progress: Callable[[int], tuple[Callable[[str, str], None], Callable[[], None]]],
    break_lock: str | None = None,
) -> MigrateReport:
    """`progress(total)` gives the per-table callback and what stops it."""
    from infra.bigquery_edge import live, live_history, live_migrate
    from infra.model import history

    catalog, settings = load_stack(root, stack)
    chosen = select_tables(catalog, names)
    update, stop = progress(len(chosen))
    try:
        conn = live.connect(settings.project, endpoint)
        now = datetime.now(UTC)
        run = history.Run(history.new_run_id(now), stack, commit_of(root), live_history.caller(conn), now)
        return live_migrate.migrate(
            conn, settings, chosen, apply=apply, progress=update, now=now, run=run, break_lock=break_lock
        )
    except live.LiveError as error:
        raise CommandFailed(str(error)) from None
    except live_migrate.MigrationInterrupted as error:
        raise Interrupted(str(error)) from None
    finally:
        stop()


def commit_of(root: Path) -> str | None:
    """The commit a run applies: GITHUB_SHA in a workflow, else the repository's HEAD, else unknown (None)."""
    import shutil  # here only migrate runs git: `validate` and `diff --old/--new` load neither
    import subprocess

    if sha := os.environ.get("GITHUB_SHA", "").strip():
        return sha
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - the git executable, fixed arguments
            [git, "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


@dataclass(frozen=True)
class HistoryResult:
    stack: str
    history_table: str
    rows: list[dict[str, Any]] | None  # None: the history table does not exist


def history(root: Path, stack: str, endpoint: str | None, table: str | None) -> HistoryResult:
    from infra.bigquery_edge import live, live_history

    catalog, settings = load_stack(root, stack)
    if table is not None:
        table = select_tables(catalog, table)[0].key
    try:
        conn = live.connect(settings.project, endpoint)
        with live.api_errors(conn):
            rows = live_history.read(conn, settings, table)
    except live.LiveError as error:
        raise CommandFailed(str(error)) from None
    return HistoryResult(stack, live_history.history_id(conn, settings), rows)


@dataclass
class ImportFile:
    stack: str
    document: dict[str, Any] | None = None
    blockers: list[Check] = field(default_factory=list)  # differences that refuse the import
    out: Path | None = None  # where the document was written; None: it goes to stdout


def import_file(root: Path, stack: str, endpoint: str | None, skip_verify: bool, out: Path | None) -> ImportFile:
    """A `pulumi import --file` document, written to `out` if given, unless verify finds the live project differs."""
    from infra.analysis import adoption
    from infra.model.settings import require_stack_file
    from infra.pulumi_edge.mockrun import run_stack

    require_stack_file(root, stack)
    program_run = run_stack(root, stack)  # offline, and it validates everything before the live project is read
    assert program_run.catalog is not None and program_run.settings is not None
    if not skip_verify:
        from infra.bigquery_edge import live

        try:
            report = live.verify(
                live.connect(program_run.settings.project, endpoint), program_run.catalog, program_run.settings
            )
        except live.LiveError as error:
            raise CommandFailed(str(error)) from None
        if report.import_blockers:
            return ImportFile(stack, blockers=list(report.import_blockers))
    try:
        document = adoption.import_document(program_run)
    except adoption.AdoptionError as error:
        raise Refused(str(error), prefix="error") from None
    if out is not None:
        try:
            out.write_text(import_document_text(document), encoding="utf-8")
        except OSError as error:
            raise CommandFailed(f"cannot write {display_path(out)}: {error.strerror or error}") from None
    return ImportFile(stack, document=document, out=out)
