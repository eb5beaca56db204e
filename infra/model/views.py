"""Views: the `views:` block of stacks/<dataset>.yaml, each view's SQL in views/<dataset>/<view>.sql.

A view's SQL names tables as the contracts do (`tenants.tenant_usage_quotas`: the stack's suffix and project are
applied by the tool), so one file serves every stack. Reading and the declaration's own rules are here; what the
SQL reads and exposes is infra/analysis/views.py's (sqlglot, the contracts' checker).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec

from infra.model import rules
from infra.model.documents import display_path, list_folder, load_text, real_path
from infra.model.problems import DeclarationError, Problem
from infra.model.table_properties import label_problems

VIEWS_DIR = "views"


class ViewSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    description: str = ""
    labels: dict[str, str] = {}
    # Datasets whose ACL authorizes the view, so its readers need no access to their tables.
    authorized_on: list[str] = []


@dataclass(frozen=True)
class View:
    dataset: str
    view_id: str
    description: str
    labels: dict[str, str]
    authorized_on: tuple[str, ...]
    file: str  # views/<dataset>/<view>.sql, as problems name it
    text: str

    @property
    def key(self) -> str:
        return f"{self.dataset}.{self.view_id}"


KEY_MEANINGS = {
    "views": "one entry per view, keyed by its id (snake_case); its SQL is views/<dataset>/<view>.sql",
    "views.<view>.description": "the view's description",
    "views.<view>.labels": "key: value labels of the view; the stack's labels are added and win",
    "views.<view>.authorized_on": "declared datasets the view reads that authorize it (an access entry of the "
    "view in their ACL), so its readers need no access to their tables; the stack must set access",
}


def load_views(
    root: Path, dataset: str, specs: dict[str, ViewSpec], table_ids: set[str], file: str
) -> tuple[list[View], list[Problem], set[Path]]:
    """The dataset's views, the problems of their declaration and files, and the SQL files they use."""
    views: list[View] = []
    problems: list[Problem] = []
    used: set[Path] = set()
    folder = root / VIEWS_DIR / dataset
    for view_id, spec in specs.items():
        where = f"views.{view_id}"
        if (message := rules.check_table_id(view_id)) is not None:
            problems.append(Problem(file, where, message.replace("table id", "view id")))
        if view_id in table_ids:
            problems.append(Problem(file, where, f"{dataset}.{view_id} is declared as a table too; rename one"))
        if (message := rules.check_description(spec.description, rules.MAX_TABLE_DESCRIPTION)) is not None:
            problems.append(Problem(file, f"{where}.description", message))
        problems += label_problems(spec.labels, file, f"{where}.labels")
        for at, name in enumerate(spec.authorized_on):
            if spec.authorized_on.index(name) != at:
                problems.append(Problem(file, f"{where}.authorized_on", f"{name} is listed twice; keep one"))
            elif name == dataset:
                problems.append(
                    Problem(
                        file,
                        f"{where}.authorized_on",
                        f"{name} is the view's own dataset, whose readers read its tables anyway; remove it",
                    )
                )
        path = folder / f"{view_id}.sql"
        display = display_path(path)
        try:
            if not path.exists():
                problems.append(Problem(file, where, f"its SQL file {display} is not there; write the query in it"))
                continue
            real = real_path(path)
            if not real.is_relative_to(real_path(root) / VIEWS_DIR / dataset):
                fix = f"a link to a file outside {VIEWS_DIR}/{dataset}/; copy the file here"
                problems.append(Problem(display, "", fix))
                used.add(real)
                continue
            used.add(real)
            text = load_text(path, display)
        except DeclarationError as error:
            problems += error.problems
            continue
        if not text.strip():
            problems.append(Problem(display, "", "empty; write the view's query (one SELECT)"))
            continue
        views.append(
            View(dataset, view_id, spec.description, dict(spec.labels), tuple(spec.authorized_on), display, text)
        )
    return views, problems, used


def orphan_view_files(root: Path, declared: dict[str, str], used: set[Path], unreadable: set[str]) -> list[Problem]:
    """views/<dataset>/*.sql no view declares; `declared` maps each dataset to its declaration file. The files of
    a dataset whose declaration could not be read are not orphans, only undeclared until it is fixed."""
    folder = root / VIEWS_DIR
    problems: list[Problem] = []
    try:
        datasets = list_folder(folder, missing_ok=True)
        for dataset in datasets:
            if dataset in unreadable:
                continue
            if (folder / dataset).is_file():
                fix = "put each view in views/<dataset>/<view>.sql"
                problems.append(Problem(display_path(folder / dataset), "", fix))
                continue
            for name in list_folder(folder / dataset):
                path = folder / dataset / name
                if real_path(path) in used:
                    continue
                where = declared.get(dataset)
                hint = (
                    f"add an entry under views: in {where} or delete the file"
                    if where
                    else f"no stacks/*.yaml declares dataset {dataset!r}; declare it or delete the file"
                )
                problems.append(Problem(display_path(path), "", f"view SQL not used by any view; {hint}"))
    except DeclarationError as error:
        problems += error.problems
    return problems


def authorization_problems(datasets: dict[str, tuple[View, ...]], files: dict[str, str]) -> list[Problem]:
    """Each dataset a view is authorized on is declared; `datasets` maps every dataset to its views."""
    return [
        Problem(
            files[view.dataset],
            f"views.{view.view_id}.authorized_on",
            f"no dataset {name} is declared ({', '.join(sorted(datasets))}); name a dataset of stacks/*.yaml",
        )
        for views in datasets.values()
        for view in views
        for name in view.authorized_on
        if name not in datasets and name != view.dataset
    ]
