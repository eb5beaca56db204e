"""What `diff --base` compares: the catalog at a git ref vs the working tree, or with a stack what the
program registers at a git ref vs in the working tree (two schema files are infra/files/filediff.py's).

The edge around infra/analysis/changes.py and infra/analysis/resourcediff.py: it runs git and the program under mocks,
then hands catalogs and registrations to the pure classifiers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import fnmatch
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.analysis.changes import BrokenContract, DiffResult, classify_catalogs
from infra.analysis.contracts import broken_by_change
from infra.analysis.migration import mark_migration
from infra.analysis.resourcediff import compare_registrations
from infra.analysis.views import broken_views
from infra.model.catalog import Catalog, load_catalog, read_catalog
from infra.model.contracts import read_contracts
from infra.model.problems import DeclarationError, Problem
from infra.model.registrations import Registration, Registrations
from infra.model.settings import Settings, load_settings, stack_file

if TYPE_CHECKING:
    from infra.model.registrations import ProgramRun


class BaseRefError(Exception):
    """The --base ref cannot be resolved or read; the message says how to fix it."""


DEFAULT_BRANCHES = ("origin/HEAD", "main", "master")
# git's fetch-options: --deepen=<n> moves the shallow boundary n commits back, --unshallow fetches the rest;
# actions/checkout fetches one commit by default, and all history with fetch-depth: 0 (its action.yml).
_SHALLOW_ADVICE = (
    "this clone is shallow: fetch more history with `git fetch --deepen=<N>` (or all of it with "
    "`git fetch --unshallow`); in GitHub Actions give actions/checkout `fetch-depth: 0`"
)
_CATALOG_PATHS = ("stacks", "schemas", "views", "Pulumi.*.yaml", "Pulumi.yaml")  # Pulumi.yaml: config defaults
# Every run's temporary folder, in the system's temporary directory: tenant-bigquery-base-<random>/.lock, and
# the base's files (with --stack its git worktree) in tenant-bigquery-base-<random>/tree.
_FOLDER_PREFIX = "tenant-bigquery-base-"
_LOCK = ".lock"


def diff_against_base(root: Path, base: str | None, stack: str | None) -> DiffResult:
    """The catalog at `base` (default: the merge base with the default branch) vs the working tree; with
    `stack`, what the program registers for that stack at `base` vs now (infra/analysis/resourcediff.py)."""
    if stack:
        return _diff_registrations(root, base, stack)
    new_catalog = load_catalog(root)
    git = _Git(root)
    commit, label = git.resolve(base)
    with _base_folder(git) as folder:
        old_root = folder / "tree"
        git.extract(commit, old_root)
        old_catalog, problems = _load_catalog_leniently(old_root, label)
    warnings = [f"{_relative(p, old_root)} (at {label}; compared as far as it loads)" for p in problems]
    tables, unchanged = classify_catalogs(old_catalog, new_catalog)
    result = DiffResult(label, "working tree", tuple(tables), None, unchanged, tuple(warnings))
    return _with_contracts(result, root, old_catalog, new_catalog)


def _with_contracts(result: DiffResult, root: Path, old: Catalog, new: Catalog) -> DiffResult:
    """Marks each table change with the working tree's contracts and views it breaks (infra/analysis/contracts.py,
    views.py): a contract or view this change edits counts in its new form. A contract that cannot be read is
    `validate --contracts`' to name, not diff's."""
    if not any(t.kind == "table" for t in result.resources):
        return result
    contracts, _ = read_contracts(root)
    broken = broken_by_change(contracts, old, new)
    for table, problems in broken_views(old, new).items():  # a view it breaks counts as a broken contract
        broken[table] = (*broken.get(table, ()), *problems)
    marked = tuple(
        dataclasses.replace(
            t,
            broken_contracts=tuple(
                BrokenContract(p.contract.name, p.line, p.column, p.message) for p in broken[t.name]
            ),
        )
        if t.kind == "table" and t.name in broken
        else t
        for t in result.resources
    )
    return dataclasses.replace(result, resources=marked)


# Run in the base's own tree (cwd, first on sys.path): its program, its mock runner, its declarations.
_BASE_RUN = """
import json, sys
from pathlib import Path
try:
    from infra.pulumi_edge.mockrun import run_stack
    from infra.model.problems import DeclarationError as Invalid
except ImportError:  # a base from before the layers: infra/mockrun.py
    from infra.mockrun import plan_stack as run_stack
    try:
        from infra.problems import DeclarationError as Invalid
    except ImportError:  # a base from before infra/problems.py
        from infra.catalog import CatalogError as Invalid
try:
    result = run_stack(Path.cwd(), sys.argv[1])
except Invalid as error:
    more = f" (and {len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
    sys.exit(f"{error.problems[0]}{more}")
resources = [
    {"urn": getattr(r, "urn", ""), "parent": getattr(r, "parent", ""), "type": r.type, "name": r.name,
     "inputs": r.inputs, "options": r.options}
    for r in result.resources
]
Path(sys.argv[2]).write_text(json.dumps({"config": result.config, "resources": resources}))
"""


def _diff_registrations(root: Path, base: str | None, stack: str) -> DiffResult:
    git = _Git(root)
    commit, label = git.resolve(base)
    with _base_folder(git) as folder:
        tree = folder / "tree"
        git.run("worktree", "add", "--detach", "--no-checkout", "--quiet", str(tree), commit)
        try:
            old, new, now = _run_both(git, commit, tree, stack, label, root)
            result = compare_registrations(old, new, stack=stack, old_label=label, new_label="working tree")
            return _with_migrations(result, tree / git.prefix, now, stack, root)
        finally:
            git.run("worktree", "remove", "--force", str(tree))


@contextlib.contextmanager
def _base_folder(git: _Git) -> Iterator[Path]:
    """A new temporary folder, locked (flock) while this run lives. A run killed by SIGKILL removes neither its
    folder nor its worktree, but the kernel drops its lock: each run first removes the folders whose lock it
    can take, then lets git forget worktrees whose folder is gone (`git worktree prune`; git locks a worktree
    while `worktree add` creates it, so a concurrent run's is kept, as is every folder still locked)."""
    _remove_stale_folders()
    git.forget_missing_worktrees()
    folder = Path(tempfile.mkdtemp(prefix=_FOLDER_PREFIX))
    with (folder / f"{_LOCK}.new").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Named .lock only once locked: a .lock that another run can lock has no live owner.
            (folder / f"{_LOCK}.new").rename(folder / _LOCK)
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # still locked: no other run takes it for stale


def _remove_stale_folders() -> None:
    """The folders of killed runs: their lock is free. One without a .lock is still being made, or not ours."""
    for folder in Path(tempfile.gettempdir()).glob(_FOLDER_PREFIX + "*"):
        try:
            with (folder / _LOCK).open() as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: its run is alive
                for entry in folder.iterdir():
                    if entry.name != _LOCK:
                        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                (folder / _LOCK).unlink()  # last, so that a removal cut short is taken up by the next run
                folder.rmdir()
        except OSError:
            continue


def _with_migrations(result: DiffResult, base_root: Path, now: ProgramRun, stack: str, root: Path) -> DiffResult:
    """Marks the table changes `migrate --apply` covers (infra/analysis/migration.py), from both catalogs, and
    the contracts each breaks."""
    if not any(t.kind == "table" for t in result.resources):
        return result
    assert now.catalog is not None and now.settings is not None  # the working tree's real program ran
    new_catalog, new_settings = now.catalog, now.settings
    try:
        old_catalog, _ = _load_catalog_leniently(base_root, result.old_label)
    except DeclarationError:
        return result  # the base's program ran, but today's reader cannot read its catalog: nothing to mark
    old_settings: Settings = new_settings
    if stack_file(base_root, stack).is_file():
        with contextlib.suppress(DeclarationError):  # the base's program ran; its settings loaded there
            old_settings = load_settings(base_root, stack)
    marked = tuple(
        mark_migration(t, old_catalog, new_catalog, old_settings, new_settings) if t.kind == "table" else t
        for t in result.resources
    )
    return _with_contracts(dataclasses.replace(result, resources=marked), root, old_catalog, new_catalog)


def _run_both(
    git: _Git, commit: str, tree: Path, stack: str, label: str, root: Path
) -> tuple[Registrations, Registrations, ProgramRun]:
    """The base's registrations, run in its worktree, and the working tree's, run here meanwhile (with the
    working tree's plan, which holds the catalog and settings it read)."""
    # Only what the program reads: a checkout of the tests' corpus would cost more than the run.
    wanted = [git.prefix + name for name in git.names(commit, (*_CATALOG_PATHS, "infra"))]
    if wanted:
        git.run("-C", str(tree), "checkout", "--quiet", commit, "--", *wanted)
    base_root = tree / git.prefix
    output = tree.parent / "registrations.json"
    running = None
    # Without its stack file or its declarations the base registered nothing for the stack: everything is added,
    # as the catalog's own diff has it.
    if stack_file(base_root, stack).is_file() and (base_root / "stacks").is_dir():
        running = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
            [sys.executable, "-c", _BASE_RUN, stack, str(output)],
            cwd=base_root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        # The program under mocks loads pulumi: only `diff --stack` does.
        from infra.pulumi_edge.mockrun import run_stack

        now = run_stack(root, stack)
    finally:
        _, stderr = running.communicate() if running else (None, "")
    if running and running.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {running.returncode}"
        raise BaseRefError(f"the program at {label} fails for stack {stack}: {detail}")
    before: dict[str, Any] = json.loads(output.read_text()) if running else {"config": {}, "resources": []}
    return (
        Registrations(tuple(Registration.from_json(r) for r in before["resources"]), before["config"]),
        now.registrations(),
        now,
    )


def _relative(problem: Problem, root: Path) -> Problem:
    prefix = root.as_posix() + "/"
    file = problem.file[len(prefix) :] if problem.file.startswith(prefix) else problem.file
    return Problem(file, problem.path, problem.message.replace(prefix, ""))  # messages name files too


def _load_catalog_leniently(root: Path, label: str) -> tuple[Catalog, list[Problem]]:
    """The base was deployed as it was, so rules added since must not hide its tables: load what
    loads, and refuse only when a declared table cannot be read at all."""
    if not (root / "stacks").is_dir():
        return Catalog(()), []
    read = read_catalog(root)
    if read.unreadable:
        prefix = root.as_posix() + "/"
        unreadable = [name.removeprefix(prefix) for name in read.unreadable]
        raise DeclarationError(
            [_relative(p, root) for p in read.problems]
            + [
                Problem(
                    "--base",
                    label,
                    f"cannot read {', '.join(unreadable)} there; fix the ref's catalog or pick another --base",
                )
            ]
        )
    return read.catalog, read.problems


class _Git:
    def __init__(self, root: Path):
        executable = shutil.which("git")
        if executable is None:
            raise BaseRefError("git is not installed; compare two files with --old/--new instead")
        self.executable = executable
        self.root = root
        self.prefix = self.run("rev-parse", "--show-prefix").decode().strip()
        # From a subfolder, ls-tree and archive list only that subfolder: run them from the top.
        self.root = Path(self.run("rev-parse", "--show-toplevel").decode().strip())

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(  # noqa: S603 - fixed git executable, refs verified below
            [self.executable, "-C", str(self.root), *args], capture_output=True, check=False
        )

    def run(self, *args: str) -> bytes:
        return self._checked(self._run(*args), args[0])

    def _checked(self, completed: subprocess.CompletedProcess[bytes], command: str) -> bytes:
        if completed.returncode != 0:
            message = completed.stderr.decode(errors="replace").strip().splitlines()
            detail = message[0] if message else f"git {command} failed"
            if "not a git repository" in detail:
                detail = f"{self.root} is not inside a git repository; compare two files with --old/--new instead"
            raise BaseRefError(detail)
        return completed.stdout

    def commit_of(self, ref: str) -> str | None:
        try:
            commit = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        except BaseRefError:
            return None
        return commit.decode().strip()

    def resolve(self, base: str | None) -> tuple[str, str]:
        """The commit to compare with and how to name it."""
        if base is not None:
            commit = self.commit_of(base)
            if commit is None:
                fix = _SHALLOW_ADVICE if self.shallow() else "pass a branch, tag or commit"
                raise BaseRefError(f"no commit {base!r} in this repository; {fix}")
            return commit, f"{base} ({commit[:12]})"
        for branch in DEFAULT_BRANCHES:
            if self.commit_of(branch) is not None:
                commit = self._merge_base(branch)
                return commit, f"merge base with {branch} ({commit[:12]})"
        fix = _SHALLOW_ADVICE if self.shallow() else "pass --base REF"
        raise BaseRefError(f"no default branch ({', '.join(DEFAULT_BRANCHES)}) to compare with; {fix}")

    def _merge_base(self, branch: str) -> str:
        found = self._run("merge-base", "HEAD", branch)
        if found.returncode == 1 and not found.stderr.strip():  # git's answer when no commit is common to both
            if self.shallow():
                raise BaseRefError(f"no merge base of HEAD and {branch} in this clone's history; {_SHALLOW_ADVICE}")
            raise BaseRefError(f"HEAD and {branch} have no commit in common; pass --base REF")
        return self._checked(found, "merge-base").decode().strip()

    def forget_missing_worktrees(self) -> None:
        """`git worktree prune`, best effort: a read-only repository still compares its catalog."""
        self._run("worktree", "prune")

    def shallow(self) -> bool:
        return self._run("rev-parse", "--is-shallow-repository").stdout.strip() == b"true"

    def names(self, commit: str, patterns: tuple[str, ...]) -> list[str]:
        """The entries of the catalog's folder at `commit` that match `patterns`; none when the folder is not
        there yet (a base from before the catalog moved into it declared nothing here)."""
        if self._run("cat-file", "-t", f"{commit}:{self.prefix}").stdout.strip() != b"tree":
            return []
        names = self.run("ls-tree", "--name-only", "-z", f"{commit}:{self.prefix}").decode().split("\0")
        return [n for n in names if any(fnmatch.fnmatchcase(n, pattern) for pattern in patterns)]

    def extract(self, commit: str, target: Path) -> None:
        """stacks/, schemas/, views/, Pulumi.yaml and Pulumi.*.yaml as they were at `commit` (those that existed)."""
        tree = f"{commit}:{self.prefix}"
        wanted = self.names(commit, _CATALOG_PATHS)
        if not wanted:
            return
        archive = self.run("archive", "--format=tar", tree, "--", *wanted)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
