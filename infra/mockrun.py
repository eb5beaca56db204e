"""Run the real Pulumi program under the SDK's mock runtime and record what it registers.

This is how `plan`, the tests and the benchmark see exactly what `pulumi up` would send to the
engine, without the Pulumi CLI, a provider plugin or credentials.

It relies on SDK internals (ROOT, SETTINGS.rpc_manager/outputs, _sync_await), used nowhere else:
requirements.txt pins pulumi, so bump it deliberately and run the tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import ROOT, SETTINGS, get_root_resource
from pulumi.runtime.stack import Stack, run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.catalog import display_path, load_catalog
from infra.settings import PROJECT, SECRET_MASK, parse_settings, read_stack_file, stack_file


@dataclass
class RegisteredResource:
    type: str
    name: str
    inputs: dict[str, Any]
    options: dict[str, Any]
    urn: str
    parent: str  # the parent's URN

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "inputs": self.inputs, "options": self.options}


@dataclass
class PlanResult:
    stack: str
    config: dict[str, Any]  # what the program ran with, sorted by key, secrets masked
    resources: list[RegisteredResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_]


class _EchoMocks(pulumi.runtime.Mocks):
    """Every resource's outputs are its inputs; the id is its logical name."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return args.resource_id or f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Records resource options, which MockResourceArgs does not carry."""

    def __init__(self, result: PlanResult):
        super().__init__(_EchoMocks())
        self.result = result

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.result.resources.append(
                RegisteredResource(
                    type=request.type,
                    name=request.name,
                    inputs=pulumi.runtime.rpc.deserialize_properties(request.object),
                    options=_options(request),
                    urn=response.urn,
                    parent=request.parent,
                )
            )
        return response


def _options(request: Any) -> dict[str, Any]:
    trigger = None
    if request.HasField("replacement_trigger"):
        trigger = json_format.MessageToDict(request.replacement_trigger)
    options: dict[str, Any] = {
        "protect": bool(request.protect),
        "replaceOnChanges": list(request.replaceOnChanges),
        "replacementTrigger": trigger,
    }
    if request.importId:
        options["import"] = request.importId
    return options


def config_for_runtime(values: dict[str, Any]) -> dict[str, str]:
    """The engine hands every config value to the program as a string, structured ones as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def run_program(
    stack: str,
    config: dict[str, Any],
    program: Callable[[], None] | None = None,
    secret_keys: set[str] | None = None,
) -> PlanResult:
    """Run `program` (default: the real one) as stack `stack` with `config`; return what it registered."""
    from infra.program import run

    body = program or run
    secrets = secret_keys or set()
    result = PlanResult(stack, {k: SECRET_MASK if k in secrets else v for k, v in sorted(config.items())})
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    # A fresh root Stack per run, so consecutive runs in one process never share a parent.
    ROOT.set(None)
    pulumi_mocks.set_mocks(_EchoMocks(), project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(result))
    set_all_config(config_for_runtime(config), sorted(secrets))

    def run_and_collect_outputs() -> None:
        body()
        root = get_root_resource()
        exports = dict(root.outputs) if isinstance(root, Stack) else {}
        resolved: dict[str, Any] | None = _sync_await(pulumi.Output.from_input(exports).future())
        result.outputs = resolved or {}

    _sync_await(run_pulumi_func(run_and_collect_outputs))
    return result


def plan_stack(root: Path, stack: str) -> PlanResult:
    """What stack `stack` declares: its Pulumi.<stack>.yaml config and the catalog under `root`.

    The stack file is read once. Invalid declarations or config raise CatalogError naming every
    problem before the program runs, which would only log them and raise a RunError.
    """
    from infra.program import run

    values, secret_keys = read_stack_file(root, stack)
    parse_settings(stack, values, display_path(stack_file(root, stack)), load_catalog(root))
    return run_program(stack, values, lambda: run(root), secret_keys)
