"""The Pulumi program: load and validate everything first, then declare resources and outputs.

`run` is what `pulumi up` runs; `register` is its second half, which the mock run (infra/pulumi_edge/mockrun.py)
calls with the catalog and settings the CLI already validated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pulumi

from infra.analysis.views import stack_queries, view_problems, view_sources
from infra.model.catalog import Catalog, load_catalog
from infra.model.declared import declare
from infra.model.problems import DeclarationError
from infra.model.settings import KNOWN_CONFIG_KEYS, Settings, parse_settings
from infra.pulumi_edge.resources import DatasetWithTables, add_views

REPO_ROOT = Path(__file__).resolve().parents[2]


def runtime_config() -> dict[str, Any]:
    """Every config value of the stack.

    pulumi.Config reads the keys this project knows; the whole map, which the language host hands the
    program as JSON in PULUMI_CONFIG (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go),
    adds the keys it does not know, so a misspelt key is an error.
    """
    values: dict[str, Any] = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    for key in KNOWN_CONFIG_KEYS:
        namespace, _, name = key.partition(":")
        value = pulumi.Config(namespace).get(name)
        if value is not None:
            values[key] = value
    return values


def run(root: Path = REPO_ROOT) -> dict[str, Any]:
    """Declare every dataset and table; return the exported values."""
    stack = pulumi.get_stack()
    try:
        catalog = load_catalog(root)
        settings = parse_settings(stack, runtime_config(), f"Pulumi.{stack}.yaml", catalog)
        if problems := view_problems(catalog):  # BigQuery would refuse the view at its create
            raise DeclarationError(problems)
    except DeclarationError as error:
        for problem in error.problems:
            pulumi.log.error(str(problem))
        # RunError ends the program with its message and no traceback; nothing was registered.
        raise pulumi.RunError(f"{len(error.problems)} problem(s) in the declarations; nothing was changed") from None
    return register(catalog, settings)


def register(catalog: Catalog, settings: Settings) -> dict[str, Any]:
    """Register every dataset and table of a validated catalog; export and return their ids."""
    if settings.stack_settings.adopt_existing:
        pulumi.log.warn(
            "adoptExisting is on: existing datasets and tables are imported, not created; switch it off "
            'after this `pulumi up` (README, runbook "Adopt what the bootstrap processor created")'
        )

    datasets = {}
    tables: dict[str, str] = {}
    views: dict[str, str] = {}
    resources: dict[str, pulumi.Resource] = {}
    components = []
    for declared in declare(catalog, settings, stack_queries(catalog, settings)):
        dataset_id = declared.dataset.dataset_id
        component = DatasetWithTables(declared, settings)
        components.append((component, declared))
        datasets[dataset_id] = component.dataset_id
        tables.update({f"{dataset_id}.{t}": full_id for t, full_id in component.table_ids.items()})
        resources.update({f"{dataset_id}.{t}": table for t, table in component.tables.items()})
    sources = view_sources(catalog)
    for component, declared in components:  # after every table: a view may read any dataset's
        for view_id in add_views(component, declared, settings, resources, sources):
            views[f"{declared.dataset.dataset_id}.{view_id}"] = (
                f"{settings.project}.{declared.args['dataset_id']}.{view_id}"
            )
    exports: dict[str, Any] = {"datasets": datasets, "tables": tables}
    if views:
        exports["views"] = views
    for name, value in exports.items():
        pulumi.export(name, value)
    return exports
