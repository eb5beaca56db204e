"""Options the commands share, and their checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from infra.reporters import REPO_ROOT, formats

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
stack_option = click.option("--stack", "stack", required=True, help="Stack name: reads Pulumi.<stack>.yaml.")


def format_option(command: str) -> Callable[..., Any]:
    choices = formats(command)
    return click.option("--format", "output_format", type=click.Choice(choices), default=choices[0], show_default=True)


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
