"""``pgwarden init``: draft a tenancy map from a live server."""

from __future__ import annotations

from pathlib import Path

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.options import DSN_HELP
from pgwarden.cli.outputs import write_output
from pgwarden.model.errors import UsageError


@click.command()
@click.option("--dsn", required=True, metavar="DSN", help=DSN_HELP)
@click.option("--name", metavar="NAME", help="server name (default: from the host)")
@click.option("-o", "--output", default="-", metavar="FILE", help="where to write (default stdout)")
def init(dsn: str, name: str | None, output: str) -> None:
    """Draft a tenancy map from a live server (every guess is marked for review)."""
    from pgwarden.cli.draft_map import draft_config

    with one_line_errors():
        text = draft_config(dsn, name)
        if output != "-" and Path(output).exists():
            raise UsageError(f"{output} exists; not overwriting it")
        write_output(output, text)
        if output != "-":
            click.echo(f"draft written to {output}: review every line marked REVIEW", err=True)
