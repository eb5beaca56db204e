"""The applications' queries as contracts: contracts/<service>/<query>.sql, one BigQuery query per file.

A file opens with a header of `--` comments: who runs it (`-- Run by: ...`), how often (`-- How often: ...`),
and one line per named parameter, `-- @name TYPE` (`-- @name TYPE NULL` when the application may pass NULL).
Tables are named as stacks/<dataset>.yaml declares them (`tenants.tenant_profiles`); the stack's suffix and
project are applied by the tool. Reading and the header are here; what the SQL means is
infra/analysis/contracts.py's (sqlglot).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from infra.model import rules
from infra.model.documents import display_path, list_folder, load_text, real_path
from infra.model.problems import DeclarationError, Problem

CONTRACTS_DIR = "contracts"
# Types a query parameter can have in the BigQuery API (QueryParameterType); ARRAY<T> of any of them.
PARAMETER_TYPES = (
    "STRING", "BYTES", "INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC", "BOOL", "DATE", "DATETIME", "TIME",
    "TIMESTAMP", "JSON",
)  # fmt: skip
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_PARAMETER = re.compile(r"--\s*@(\S+)\s+(\S+)(?:\s+(\S+))?\s*\Z")
_KEY = re.compile(r"--\s*(Run by|How often):\s*(.*)\Z")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # a PARAMETER_TYPES entry, or ARRAY<one of them>
    nullable: bool
    line: int


@dataclass(frozen=True)
class Contract:
    name: str  # <service>/<query>.sql, as reports name it
    file: str  # the path problems name
    text: str
    run_by: str
    how_often: str
    parameters: tuple[Parameter, ...]

    @property
    def service(self) -> str:
        return self.name.split("/")[0]


def parameter_type(raw: str) -> str | None:
    """The canonical spelling of a parameter's type (INTEGER is INT64, ARRAY<INTEGER> ARRAY<INT64>), or None."""
    raw = raw.upper()
    if raw.startswith("ARRAY<") and raw.endswith(">"):
        element = parameter_type(raw[6:-1])
        return f"ARRAY<{element}>" if element is not None and not element.startswith("ARRAY") else None
    canonical = rules.canonical_type(raw)
    return canonical if canonical in PARAMETER_TYPES else None


def parse_header(text: str, file: str) -> tuple[str, str, tuple[Parameter, ...], list[Problem]]:
    """Run by, how often and the parameters of the comment lines that open the file."""
    keys: dict[str, str] = {}
    parameters: list[Parameter] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("--"):
            if stripped:
                break
            continue
        if found_key := _KEY.match(stripped):
            keys[found_key.group(1)] = found_key.group(2).strip()
        elif stripped.lstrip("- ").startswith("@"):
            parameter = _PARAMETER.match(stripped)
            if parameter is None:
                problems.append(
                    Problem(file, f"{number}:1", "write a parameter as `-- @name TYPE` or `-- @name TYPE NULL`")
                )
                continue
            name, raw_type, null = parameter.groups()
            canonical = parameter_type(raw_type)
            if not _NAME.match(name):
                problems.append(Problem(file, f"{number}:1", f"@{name}: name a parameter in snake_case"))
            elif canonical is None:
                known = ", ".join(PARAMETER_TYPES)
                problems.append(
                    Problem(
                        file,
                        f"{number}:1",
                        f"@{name}: {raw_type} is no parameter type; use one of {known} or ARRAY<...> of one",
                    )
                )
            elif null not in (None, "NULL"):
                problems.append(
                    Problem(
                        file,
                        f"{number}:1",
                        f"@{name}: after the type only NULL may follow (the application may pass NULL)",
                    )
                )
            elif any(p.name == name for p in parameters):
                problems.append(Problem(file, f"{number}:1", f"@{name} is declared twice; keep one line"))
            else:
                parameters.append(Parameter(name, canonical, null == "NULL", number))
    for key in ("Run by", "How often"):
        if not keys.get(key):
            problems.append(
                Problem(file, "1:1", f"the header does not say `-- {key}: ...`; add it (who runs the query, how often)")
            )
    return keys.get("Run by", ""), keys.get("How often", ""), tuple(parameters), problems


def read_contracts(root: Path) -> tuple[list[Contract], list[Problem]]:
    """Every contracts/<service>/<query>.sql, sorted by name, and the problems of their layout and headers.
    No contracts/ folder: no contracts."""
    folder = real_path(root / CONTRACTS_DIR)
    contracts: list[Contract] = []
    problems: list[Problem] = []
    for service in list_folder(folder, missing_ok=True):
        path = folder / service
        if not path.is_dir():
            fix = "put each query in contracts/<service>/<query>.sql"
            problems.append(Problem(display_path(path), "", f"not a service folder; {fix}"))
            continue
        for query in list_folder(path):
            file = path / query
            display = display_path(file)
            if not query.endswith(".sql") or not _NAME.match(service) or not _NAME.match(query[:-4]):
                fix = "name it contracts/<service>/<query>.sql, both in snake_case"
                problems.append(Problem(display, "", f"not a contract; {fix}"))
                continue
            try:
                text = load_text(file, display)
            except DeclarationError as error:
                problems += error.problems
                continue
            run_by, how_often, parameters, found = parse_header(text, display)
            problems += found
            contracts.append(Contract(f"{service}/{query}", display, text, run_by, how_often, parameters))
    return contracts, problems
