"""``pgwarden init``: draft a tenancy map from a live server."""

from __future__ import annotations

from pathlib import Path

import click

from pgwarden.cli.commands.config import SCHEMA_DIRECTIVE, SCHEMA_FILE, shipped_config_schema
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
        # The directive first: editors then complete and check the map as it is reviewed.
        text = f"{SCHEMA_DIRECTIVE}\n{draft_config(dsn, name)}"
        if output != "-" and Path(output).exists():
            raise UsageError(f"{output} exists; not overwriting it")
        write_output(output, text)
        if output == "-":
            return
        schema = Path(output).parent / SCHEMA_FILE
        if not schema.exists():
            schema.write_text(shipped_config_schema(), encoding="utf-8")
        click.echo(
            f"draft written to {output} (its JSON Schema in {schema}): "
            "review every line marked REVIEW",
            err=True,
        )
