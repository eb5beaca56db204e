"""What `plan` prints: the program's registrations as a reviewer's table (text) or a document (JSON).

Pure: it reads the plain data a plan result holds (infra/mockrun.py), never Pulumi itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from rich.console import Console
from rich.table import Table as RichTable

from infra.declared import BASELINE_TRIGGER, DATASET_TYPE, TABLE_TYPE
from infra.rules import MS_PER_DAY
from infra.schema import count_columns, parse_schema


class PlannedResource(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> dict[str, Any]: ...
    @property
    def options(self) -> dict[str, Any]: ...
    def to_json(self) -> dict[str, Any]: ...


class Plan(Protocol):
    @property
    def stack(self) -> str: ...
    @property
    def config(self) -> Mapping[str, Any]: ...  # secrets masked
    @property
    def resources(self) -> Sequence[PlannedResource]: ...
    @property
    def outputs(self) -> Mapping[str, Any]: ...


def _resource_order(resource: PlannedResource) -> tuple[int, str]:
    rank = {DATASET_TYPE: 1, TABLE_TYPE: 2}.get(resource.type, 0)
    return rank, resource.name


def render_json(plan: Plan) -> str:
    document = {
        "stack": plan.stack,
        "config": dict(plan.config),
        "resources": [r.to_json() for r in sorted(plan.resources, key=_resource_order)],
        "outputs": dict(plan.outputs),
    }
    return json.dumps(document, indent=2, sort_keys=True)


def _partitioning_text(inputs: dict[str, Any]) -> str:
    if "timePartitioning" in inputs:
        spec = inputs["timePartitioning"]
        text = f"{spec['type']} on {spec.get('field') or '_PARTITIONTIME'}"
        if spec.get("expirationMs"):
            text += f", {int(spec['expirationMs']) // MS_PER_DAY} d"
        return text
    if "rangePartitioning" in inputs:
        spec = inputs["rangePartitioning"]
        rng = spec["range"]
        return f"range {spec['field']} [{rng['start']}, {rng['end']}) step {rng['interval']}"
    return "-"


def _access_lines(inputs: dict[str, Any]) -> list[str]:
    if "accesses" not in inputs:
        return ["access: BigQuery's default ACL (tenant-bigquery:access is not set)"]
    prefixes = {"specialGroup": "", "groupByEmail": "group:", "userByEmail": "user:"}
    return ["access (the whole ACL):"] + [
        f"  {entry['role']} " + next(prefix + entry[field] for field, prefix in prefixes.items() if field in entry)
        for entry in inputs["accesses"]
    ]


def _key_text(configuration: dict[str, Any] | None) -> str:
    key = (configuration or {}).get("kmsKeyName")
    return f"customer-managed key {key}" if key else "Google-managed key"


def _leaf_columns(inputs: dict[str, Any]) -> int:
    """Counted as the data dictionary and BigQuery's column limit count them: a RECORD as its fields."""
    columns, _ = parse_schema(json.loads(inputs["schema"]), inputs["tableId"])
    return count_columns(columns)


def render_text(plan: Plan, out: Console) -> None:
    resources = sorted(plan.resources, key=_resource_order)
    out.print(f"Stack [bold]{plan.stack}[/bold]: project {plan.config.get('gcp:project', '?')}")
    for dataset in (r for r in resources if r.type == DATASET_TYPE):
        inputs = dataset.inputs
        out.print(
            f"Dataset [bold]{inputs['datasetId']}[/bold] in {inputs.get('location')}: "
            f"protect={dataset.options['protect']}, "
            f"delete contents on destroy={inputs.get('deleteContentsOnDestroy', False)}, "
            f"labels={dict(sorted((inputs.get('labels') or {}).items()))}"
        )
        for line in _access_lines(inputs):
            out.print(f"  {line}")
        tables = [r.inputs for r in resources if r.type == TABLE_TYPE and r.inputs["datasetId"] == inputs["datasetId"]]
        with_key = [t for t in tables if (t.get("encryptionConfiguration") or {}).get("kmsKeyName")]
        out.print(
            f"  encryption: {_key_text(inputs.get('defaultEncryptionConfiguration'))}; "
            f"tables with a customer-managed key: {len(with_key)} of {len(tables)}"
        )
    grid = RichTable(show_lines=False)
    for heading in (
        "table",
        "columns (leaf)",
        "partitioning",
        "filter",
        "clustering",
        "protect",
        "deletion prot.",
        "recreate",
    ):
        grid.add_column(heading)
    for table in (r for r in resources if r.type == TABLE_TYPE):
        inputs, options = table.inputs, table.options
        recreate = []
        if options.get("replacementTrigger") not in (None, BASELINE_TRIGGER):
            recreate.append(f"token {options['replacementTrigger']}")
        if options.get("replaceOnChanges"):
            recreate.append("on schema change")
        grid.add_row(
            f"{inputs['datasetId']}.{inputs['tableId']}",
            str(_leaf_columns(inputs)),
            _partitioning_text(inputs),
            "required" if inputs.get("requirePartitionFilter") else "-",
            ", ".join(inputs.get("clusterings") or []) or "-",
            "yes" if options["protect"] else "no",
            "yes" if inputs.get("deletionProtection") else "no",
            "; ".join(recreate) or "-",
        )
    out.print(grid)
