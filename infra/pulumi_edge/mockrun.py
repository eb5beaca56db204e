"""Run the real Pulumi program under the SDK's mock runtime and record what it registers.

This is how `plan`, the tests and the benchmark see exactly what `pulumi up` would send to the
engine, without the Pulumi CLI, a provider plugin or credentials. It uses the SDK's public testing
API only (`pulumi.runtime.reset_options`, `set_mocks(monitor=...)`, `set_all_config`, `test`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks

from infra.analysis.views import stack_queries
from infra.model.catalog import Catalog, load_catalog
from infra.model.declared import declare
from infra.model.documents import display_path
from infra.model.registrations import ProgramRun, Registration
from infra.model.settings import PROJECT, SECRET_MASK, parse_settings, read_config, stack_file
from infra.pulumi_edge.program import register, run


class _EchoMocks(pulumi.runtime.Mocks):
    """Every resource's outputs are its inputs; the id is its logical name. Keeps the inputs by type and name."""

    def __init__(self) -> None:
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs[(args.typ, args.name)] = args.inputs
        return args.resource_id or f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Records resource options, which MockResourceArgs does not carry."""

    def __init__(self, result: ProgramRun):
        self.echo = _EchoMocks()
        super().__init__(self.echo)
        self.result = result

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.result.resources.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    inputs=self.echo.inputs[(request.type, request.name)],
                    options=_options(request),
                    urn=response.urn,
                    parent=request.parent,
                    dependencies=tuple(request.dependencies),
                )
            )
        return response


def _options(request: Any) -> dict[str, Any]:
    trigger = None
    if request.HasField("replacement_trigger"):
        trigger = json_format.MessageToDict(request.replacement_trigger)
    options: dict[str, Any] = {
        "protect": bool(request.protect),
        "deleteBeforeReplace": bool(request.deleteBeforeReplace),
        "replaceOnChanges": list(request.replaceOnChanges),
        "replacementTrigger": trigger,
        "ignoreChanges": list(request.ignoreChanges),
    }
    if request.importId:
        options["import"] = request.importId
    # Recorded only when set, as `import`: the runs of a program that never sets it record what they did before.
    if request.HasField("retainOnDelete") and request.retainOnDelete:
        options["retainOnDelete"] = True
    return options


def config_for_runtime(values: dict[str, Any]) -> dict[str, str]:
    """The engine hands every config value to the program as a string, structured ones as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


@contextmanager
def _own_event_loops() -> Iterator[None]:
    """Run on event loops this module creates and closes.

    The mock monitor answers each registration on an executor thread and gives that thread an event
    loop of its own; left open, those loops are collected at interpreter exit, after their sockets,
    and print "Exception ignored ... Invalid file descriptor" on stderr.
    """
    worker_loops: list[asyncio.AbstractEventLoop] = []

    def give_worker_a_loop() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        worker_loops.append(loop)

    executor = ThreadPoolExecutor(initializer=give_worker_a_loop)
    loop = asyncio.new_event_loop()
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        executor.shutdown(wait=True)
        for worker_loop in worker_loops:
            worker_loop.close()
        asyncio.set_event_loop(None)
        loop.close()


def run_program(
    stack: str,
    config: dict[str, Any],
    program: Callable[[], dict[str, Any] | None] | None = None,
    secret_keys: set[str] | None = None,
) -> ProgramRun:
    """Run `program` (default: the real one) as stack `stack` with `config`; return what it registered.

    The program returns the values it exports, which become the result's outputs.
    """
    body = program or run
    secrets = secret_keys or set()
    result = ProgramRun(stack, {k: SECRET_MASK if k in secrets else v for k, v in sorted(config.items())})

    def run_and_collect_outputs() -> pulumi.Output[Any]:
        return pulumi.Output.from_input(body() or {}).apply(result.outputs.update)

    with _own_event_loops():
        # A fresh root stack per run, so consecutive runs in one process never share a parent.
        pulumi.runtime.reset_options(project=PROJECT, stack=stack, preview=False)
        monitor = RecordingMonitor(result)
        pulumi.runtime.set_mocks(monitor.echo, project=PROJECT, stack=stack, preview=False, monitor=monitor)
        pulumi.runtime.set_all_config(config_for_runtime(config), sorted(secrets))
        pulumi.runtime.test(run_and_collect_outputs)()  # type: ignore[no-untyped-call]
    return result


def run_stack(root: Path, stack: str, catalog: Catalog | None = None) -> ProgramRun:
    """What stack `stack` declares: its Pulumi.<stack>.yaml config and the catalog under `root`.

    Pass `catalog` when it is already loaded and validated. The stack file is read once. Invalid
    declarations or config raise DeclarationError naming every problem before the program runs.
    """
    config = read_config(root, stack)
    catalog = load_catalog(root) if catalog is None else catalog
    settings = parse_settings(stack, config.values, display_path(stack_file(root, stack)), catalog, config.origins)
    result = run_program(stack, config.values, lambda: register(catalog, settings), config.secret_keys)
    result.declared = declare(catalog, settings, stack_queries(catalog, settings))
    result.catalog, result.settings = catalog, settings
    return result
