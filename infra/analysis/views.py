"""Each view's SQL (infra/model/views.py) resolved against a declared catalog by the contracts' checker
(infra/analysis/contracts.py): every table and column it reads is declared, its types compare, a table that
requires a partition filter gets one. A view adds its own rules: one SELECT (BigQuery's ViewDefinition.query is
a query), no parameters (a view has none to be passed), named columns (REST reference, Table.schema: a view's
schema is fixed when it is written, so `*` would not follow its tables), no two output columns of one name
(BigQuery refuses duplicate column names in a result), and each dataset it is authorized on is one it reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from infra.analysis.contracts import DIALECT, Checked, ContractProblem, broken_by_change, check, stack_sql
from infra.model.catalog import Catalog
from infra.model.contracts import Contract
from infra.model.problems import Problem
from infra.model.settings import Settings
from infra.model.views import VIEWS_DIR, View


def as_contract(view: View) -> Contract:
    """The view as the checker reads a query: named by its file, with no header and no parameters."""
    return Contract(f"{VIEWS_DIR}/{view.dataset}/{view.view_id}.sql", view.file, view.text, "", "", ())


@dataclass(frozen=True)
class CheckedView:
    view: View
    problems: tuple[ContractProblem, ...]
    uses: frozenset[tuple[str, str]]  # (dataset.table, column path) of every column it reads
    tables: frozenset[str]  # every dataset.table it names
    columns: tuple[tuple[str, str | None], ...]  # what it exposes: name and type, where the type can be told


def _statement(view: View) -> exp.Expr | None:
    try:
        statements = [s for s in sqlglot.parse(view.text, read=DIALECT) if s is not None]
    except (ParseError, TokenError):
        return None  # the checker says where
    return statements[0] if len(statements) == 1 else None


def check_view(view: View, catalog: Catalog) -> CheckedView:
    contract = as_contract(view)
    statement = _statement(view)
    own: list[ContractProblem] = []

    def fail(message: str, line: int = 1, column: int = 1) -> None:
        own.append(ContractProblem(contract, line, column, message))

    if statement is not None and not isinstance(statement, exp.Query):
        fail(f"a view is one SELECT, not {statement.key.upper()}; write the query the view shows")
        return CheckedView(view, tuple(own), frozenset(), frozenset(), ())
    if statement is not None and (parameter := statement.find(exp.Parameter)) is not None:
        fail(f"@{parameter.name}: a view takes no parameters; filter in the query (SESSION_USER(), a column)")
        return CheckedView(view, tuple(own), frozenset(), frozenset(), ())
    checked: Checked = check(contract, catalog)
    columns = checked.outputs or ()
    if statement is not None and checked.outputs is None and not checked.problems:
        fail("name the view's columns instead of *: its schema is fixed when written and would not follow its tables")
    seen: set[str] = set()
    for name, _ in columns:
        if name.lower() in seen:
            fail(f"two columns are named {name}; alias one (BigQuery refuses duplicate column names)")
        seen.add(name.lower())
    read = {table.split(".", 1)[0] for table in checked.tables}
    for dataset in view.authorized_on:
        if dataset not in read:
            fail(
                f"the view is authorized on {dataset} and reads none of its tables; remove {dataset} from "
                f"authorized_on in stacks/{view.dataset}.yaml"
            )
    problems = tuple(sorted({*checked.problems, *own}, key=lambda p: (p.line, p.column, p.message)))
    return CheckedView(view, problems, checked.uses, checked.tables, columns)


def view_problems(catalog: Catalog) -> list[Problem]:
    return [p.problem() for view in catalog.views() for p in check_view(view, catalog).problems]


def broken_views(old: Catalog, new: Catalog) -> dict[str, tuple[ContractProblem, ...]]:
    """Per dataset.table, what its change breaks in the working tree's views (a view it edits in its new form)."""
    return broken_by_change([as_contract(view) for view in new.views()], old, new)


def view_sql(view: View, catalog: Catalog, settings: Settings) -> str:
    """The view's query as the stack sends it: each declared dataset with the stack's suffix, in its project."""
    return stack_sql(as_contract(view), catalog, settings)


def stack_queries(catalog: Catalog, settings: Settings) -> dict[str, str]:
    """Every view's query as the stack sends it, by dataset.view."""
    return {view.key: view_sql(view, catalog, settings) for view in catalog.views()}


def view_sources(catalog: Catalog) -> dict[str, frozenset[str]]:
    """Per dataset.view the declared tables it reads: BigQuery resolves a view's query when it is written, so the
    tables exist first."""
    keys = {t.key for t in catalog.tables()}
    return {view.key: check_view(view, catalog).tables & keys for view in catalog.views()}
