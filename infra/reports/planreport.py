"""What `plan` prints: the program's registrations as a reviewer's table (text) or a document (JSON).

Pure: it reads the plain data a program run holds (infra/pulumi_edge/mockrun.py), never Pulumi itself. The JSON is
the registrations as recorded; the text reads what each resource receives from the typed declaration the
program registered (infra/model/declared.py) and its options from the registrations.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table as RichTable

from infra.analysis.views import check_view
from infra.model.declared import (
    BASELINE_TRIGGER,
    DATASET_TYPE,
    TABLE_TYPE,
    DatasetArgs,
    DeclaredDataset,
    access_members,
    table_resource_name,
)
from infra.model.registrations import ProgramRun, Registration
from infra.model.render import clustering_text, partitioning_text, retention_text
from infra.model.schema import count_columns, data_policy_paths, policy_tag_paths
from infra.model.table_properties import EncryptionArgs, constraints_of, table_constraints_text


def _resource_order(resource: Registration) -> tuple[int, str]:
    rank = {DATASET_TYPE: 1, TABLE_TYPE: 2}.get(resource.type, 0)
    return rank, resource.name


def render_json(run: ProgramRun) -> str:
    document = {
        "stack": run.stack,
        "config": dict(run.config),
        "resources": [r.to_json() for r in sorted(run.resources, key=_resource_order)],
        "outputs": dict(run.outputs),
    }
    return json.dumps(document, indent=2, sort_keys=True)


_MEMBER_PREFIXES = {
    "special_group": "",
    "group_by_email": "group:",
    "user_by_email": "user:",
    "view": "authorized view ",
}


def _access_lines(args: DatasetArgs) -> list[str]:
    if "accesses" not in args:
        return ["access: BigQuery's default ACL (tenant-bigquery:access is not set)"]
    return ["access (the whole ACL):"] + [
        "  " + " ".join(filter(None, (entry.get("role"), f"{_MEMBER_PREFIXES[field]}{member}")))  # a view: no role
        for entry in args["accesses"]
        for field, member in access_members(entry)
    ]


def _key_text(configuration: EncryptionArgs | None) -> str:
    return f"customer-managed key {configuration['kms_key_name']}" if configuration else "Google-managed key"


def _masking_text(dataset: DeclaredDataset) -> str:
    """Who owns the data policies, and every protected column with the stack's resource names."""
    owner = dataset.tables[0].table.column_masking if dataset.tables else "repository"
    protected = [
        f"{t.table.table_id}.{path} {kind} {', '.join(names)}"
        for t in dataset.tables
        for kind, paths in (("policy tag", policy_tag_paths), ("data policies", data_policy_paths))
        for path, names in paths(t.table.schema)
    ]
    if owner == "governance":
        protected.append("data policies: the governance team's (ignore_schema_changes)")
    return f"{owner}'s; " + ("; ".join(protected) or "no column protected")


def render_text(run: ProgramRun, out: Console) -> None:
    options = {(r.type, r.name): r.options for r in run.resources}
    out.print(f"Stack [bold]{run.stack}[/bold]: project {run.config.get('gcp:project', '?')}")
    datasets = sorted(run.declared, key=lambda d: d.dataset.dataset_id)
    for dataset in datasets:
        args = dataset.args
        out.print(
            f"Dataset [bold]{args['dataset_id']}[/bold] in {args['location']}: "
            f"protect={options[(DATASET_TYPE, dataset.dataset.dataset_id)]['protect']}, "
            f"delete contents on destroy={args['delete_contents_on_destroy']}, "
            f"labels={dict(sorted((args['labels'] or {}).items()))}"
        )
        for line in _access_lines(args):
            out.print(f"  {line}")
        out.print(f"  {retention_text(int(args['max_time_travel_hours']), args.get('storage_billing_model'))}")
        with_key = [t for t in dataset.tables if "encryption_configuration" in t.args]
        out.print(
            f"  encryption: {_key_text(args.get('default_encryption_configuration'))}; "
            f"tables with a customer-managed key: {len(with_key)} of {len(dataset.tables)}"
        )
        out.print(f"  column masking: {_masking_text(dataset)}")
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
    tables = sorted(
        ((table_resource_name(d.dataset.dataset_id, t.table.table_id), t) for d in datasets for t in d.tables),
        key=lambda named: named[0],
    )
    for name, table in tables:
        received, table_options = table.args, options[(TABLE_TYPE, name)]
        recreate = []
        if table_options.get("replacementTrigger") not in (None, BASELINE_TRIGGER):
            recreate.append(f"token {table_options['replacementTrigger']}")
        if table_options.get("replaceOnChanges"):
            recreate.append("on schema change")
        grid.add_row(
            f"{received['dataset_id']}.{received['table_id']}",
            str(count_columns(table.table.schema)),
            partitioning_text(received.get("time_partitioning"), received.get("range_partitioning")),
            "required" if received.get("require_partition_filter") else "-",
            clustering_text(received["clusterings"]),
            "yes" if table_options["protect"] else "no, retained" if table_options.get("retainOnDelete") else "no",
            "yes" if received["deletion_protection"] else "no",
            "; ".join(recreate) or "-",
        )
    out.print(grid)
    keyed = [(name, t) for name, t in tables if "table_constraints" in t.args]
    if keyed:
        out.print("keys (unenforced):")
    for _, table in keyed:
        keys = table_constraints_text(constraints_of(table.args["table_constraints"]))
        out.print(f"  {table.args['table_id']}: {keys}", soft_wrap=True)
    for view in sorted((v for d in datasets for v in d.views), key=lambda v: v.view.key):
        checked = check_view(view.view, run.catalog) if run.catalog is not None else None
        reads = ", ".join(sorted(checked.tables)) if checked else "?"
        authorized = ", ".join(view.view.authorized_on) or "none"
        columns = len(checked.columns) if checked else "?"
        out.print(
            f"View [bold]{view.args['dataset_id']}.{view.args['table_id']}[/bold]: {columns} columns, reads {reads}; "
            f"authorized on {authorized}; protect=no, deletion protection=no (a view holds no rows)"
        )
