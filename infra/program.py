"""The Pulumi program: load and validate everything first, then declare resources and outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from infra.catalog import CatalogError, load_catalog
from infra.resources import DatasetWithTables
from infra.settings import parse_settings

REPO_ROOT = Path(__file__).resolve().parent.parent


def runtime_config() -> dict[str, Any]:
    """Every config value of the stack: the engine passes them in PULUMI_CONFIG, mocks set CONFIG."""
    return {**get_config_env(), **CONFIG.get()}


def run(root: Path = REPO_ROOT) -> None:
    stack = pulumi.get_stack()
    try:
        catalog = load_catalog(root)
        settings = parse_settings(stack, runtime_config(), f"Pulumi.{stack}.yaml", catalog)
    except CatalogError as error:
        for problem in error.problems:
            pulumi.log.error(str(problem))
        # RunError ends the program with its message and no traceback; nothing was registered.
        raise pulumi.RunError(f"{len(error.problems)} problem(s) in the declarations; nothing was changed") from None
    if settings.options.adopt_existing:
        pulumi.log.warn(
            "adoptExisting is on: existing datasets and tables are imported, not created; switch it off "
            'after this `pulumi up` (README, runbook "Adopt what the bootstrap processor created")'
        )

    datasets = {}
    tables: dict[str, str] = {}
    for dataset in catalog.datasets:
        component = DatasetWithTables(dataset, settings)
        datasets[dataset.dataset_id] = component.dataset_id
        tables.update({f"{dataset.dataset_id}.{t}": full_id for t, full_id in component.table_ids.items()})
    pulumi.export("datasets", datasets)
    pulumi.export("tables", tables)
