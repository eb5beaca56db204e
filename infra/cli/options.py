"""Options the commands share, and their checks."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from infra.cli.reporters import REPO_ROOT, Format, Reporters

# changes.Verdict's values, worst last (tests/test_cli.py keeps them equal); spelled here so that parsing
# options loads no module of the core.
VERDICTS = ("noop", "added", "update", "update-destructive", "replace", "removed", "rejected")

root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=REPO_ROOT,
    show_default="the repository",
    help="Folder holding stacks/, schemas/ and Pulumi.<stack>.yaml.",
)
# Pulumi's stack names (pulumi/pulumi sdk/go/common/tokens/stack_name.go ParseStackName): 1 to 100 of these
# characters. Anything else would make Pulumi.<stack>.yaml a path elsewhere (`x/../prod`).
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}\Z")


def stack_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _STACK_NAME.match(value):
        raise click.BadParameter(
            f"{value!r} is not a stack name: Pulumi allows 1 to 100 letters, digits, '-', '_' and '.'"
        )
    return value


stack_option = click.option(
    "--stack", "stack", required=True, callback=stack_name, help="Stack name: reads Pulumi.<stack>.yaml."
)


def format_option(reporters: Reporters[...]) -> Callable[..., Any]:
    """--format: the formats the command has a reporter for, handed to the command as a Format."""
    choices = reporters.formats()
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        callback=lambda ctx, param, value: Format(value),
    )


def _endpoint_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise click.BadParameter("must be a URL such as http://127.0.0.1:9050")
    return value


endpoint_option = click.option(
    "--endpoint",
    metavar="URL",
    callback=_endpoint_url,
    help="A local BigQuery API server, used with anonymous credentials [default: $BIGQUERY_EMULATOR_HOST, "
    "else Google's API with Application Default Credentials].",
)
