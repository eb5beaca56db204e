"""What the program registers, as plain data: one `Registration` per resource, and the run that made them.

Pure: the mock run (infra/pulumi_edge/mockrun.py) records them, a base commit's run writes them as JSON
(infra/files/basediff.py), and infra/analysis/resourcediff.py compares two sets of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.contract import COMPONENT_TYPE, DATASET_TYPE, TABLE_TYPE
from infra.model.catalog import Catalog
from infra.model.declared import DeclaredDataset
from infra.model.settings import PROJECT, Settings


@dataclass(frozen=True)
class Registration:
    """One resource as the program registers it: what `pulumi up` sends the engine for it."""

    urn: str
    type: str
    name: str
    parent: str  # the parent's URN, "" at the top
    inputs: Mapping[str, Any]
    options: Mapping[str, Any]
    # The URNs it is registered after (depends_on), as the mock run records them; not part of what diff compares.
    dependencies: tuple[str, ...] = ()

    @property
    def component(self) -> str:
        """The logical name of the component it sits in (its dataset), "" outside one."""
        return self.parent.rsplit("::", 1)[-1] if f"{COMPONENT_TYPE}::" in self.parent else ""

    @property
    def key(self) -> str:
        """How reports name it: dataset.table for a table, the logical name otherwise."""
        if self.type == TABLE_TYPE:
            return f"{self.component or self.inputs.get('datasetId')}.{self.inputs.get('tableId')}"
        return self.name

    @property
    def kind(self) -> str:
        return {TABLE_TYPE: "table", DATASET_TYPE: "dataset"}.get(self.type, "component")

    def to_json(self) -> dict[str, Any]:
        """As `plan --format json` lists it."""
        return {"type": self.type, "name": self.name, "inputs": self.inputs, "options": self.options}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Registration:
        """From {urn, parent, type, name, inputs, options}, as a base commit's run writes it."""
        return cls(
            str(document.get("urn") or ""),
            document["type"],
            document["name"],
            str(document.get("parent") or ""),
            document["inputs"],
            document["options"],
        )


@dataclass(frozen=True)
class Registrations:
    resources: tuple[Registration, ...]
    config: Mapping[str, Any]

    def approved(self) -> frozenset[str]:
        return frozenset(self.config.get(f"{PROJECT}:approveDataLoss") or ())

    def protected(self) -> bool:
        return any(r.options.get("protect") for r in self.resources)


@dataclass
class ProgramRun:
    """One run of the program under mocks: every registration, in order, and what it ran with."""

    stack: str
    config: dict[str, Any]  # what the program ran with, sorted by key, secrets masked
    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    # What each resource receives, as the program built it (infra/model/declared.py), and what it was built
    # from, so that a command reads nothing twice; empty for a program other than the real one.
    declared: tuple[DeclaredDataset, ...] = ()
    catalog: Catalog | None = None
    settings: Settings | None = None

    def registrations(self) -> Registrations:
        return Registrations(tuple(self.resources), self.config)
