"""Adopting what the old bootstrap processor created: a `pulumi import --file` document.

The document is built from what the real program registers (under Pulumi's mocks), so its types,
logical names and parents are the program's by construction; the ids are the ones the
`adoptExisting` config key hands to Pulumi's `import` option.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

from infra.model.declared import COMPONENT_TYPE, DATASET_TYPE, TABLE_TYPE, dataset_import_id, table_import_id

if TYPE_CHECKING:  # only the result's shape: building the document needs no Pulumi runtime
    from infra.model.registrations import ProgramRun

# Import with the provider version the program's SDK asks for, so state keeps one default provider.
GCP_VERSION = metadata.version("pulumi_gcp")


class AdoptionError(Exception):
    """The program registers something this module cannot import."""


def import_id(type_: str, inputs: Mapping[str, Any]) -> str:
    if type_ == DATASET_TYPE:
        return dataset_import_id(inputs["project"], inputs["datasetId"])
    if type_ == TABLE_TYPE:
        return table_import_id(inputs["project"], inputs["datasetId"], inputs["tableId"])
    raise AdoptionError(f"no import id format for {type_}; add one to infra/analysis/adoption.py")


def _urn_key(urn: str) -> tuple[str, str]:
    """(type, name) of a URN: urn:pulumi:STACK::PROJECT::[PARENT$...]TYPE::NAME."""
    _, _, qualified_type, name = urn.split("::", 3)
    return qualified_type.rsplit("$", 1)[-1], name


def import_document(run: ProgramRun) -> dict[str, Any]:
    """Every resource the program registers, as `pulumi import --file` takes them.

    Components come in with `component: true` and no id (Pulumi >= 3.94 creates them empty); `name`
    is unique within the file (a component and its dataset share a logical name) and `parent`
    refers to another entry's name.
    """
    names: dict[tuple[str, str], str] = {}
    for resource in run.resources:
        is_component = resource.type == COMPONENT_TYPE
        names[(resource.type, resource.name)] = f"{resource.name}-component" if is_component else resource.name
    if len(set(names.values())) != len(names):
        raise AdoptionError("two resources would share a name in the import file; rename one in the program")

    entries = []
    # Mocks register concurrently; a stable order keeps the file reviewable.
    rank = {COMPONENT_TYPE: 0, DATASET_TYPE: 1, TABLE_TYPE: 2}
    for resource in sorted(run.resources, key=lambda r: (rank.get(r.type, 3), r.name)):
        entry: dict[str, Any] = {
            "type": resource.type,
            "name": names[(resource.type, resource.name)],
            "logicalName": resource.name,
        }
        parent = names.get(_urn_key(resource.parent)) if resource.parent else None
        if parent is not None:
            entry["parent"] = parent
        if resource.type == COMPONENT_TYPE:
            entry["component"] = True
        else:
            entry["id"] = import_id(resource.type, resource.inputs)
            entry["version"] = GCP_VERSION
        entries.append(entry)
    return {"resources": entries}
