"""``pgwarden init``: draft a tenancy map from a live server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pgwarden.cli.commands.config import SCHEMA_DIRECTIVE, SCHEMA_FILE, shipped_config_schema
from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.options import DSN_HELP
from pgwarden.cli.outputs import write_output
from pgwarden.model.errors import UsageError


@click.command()
@click.option("--dsn", metavar="DSN", help=DSN_HELP)
@click.option(
    "--name", metavar="NAME", help="server name (default: the Azure resource's, else the host's)"
)
@click.option("-o", "--output", default="-", metavar="FILE", help="where to write (default stdout)")
@click.option(
    "--azure-subscription",
    metavar="ID",
    help="read the admin from ARM and the apps' DSN secrets from the subscription's vaults",
)
@click.option("--resource-group", metavar="NAME", help="the server's (default: found by name)")
@click.option(
    "--server-name", metavar="NAME", help="the server's ARM name (default: --name, else the host)"
)
@click.option(
    "--vault", "vaults", multiple=True, metavar="NAME", help="look only in this vault (repeatable)"
)
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="an existing map: its [azure], sampling, and the server's dsn, azure and vaults",
)
@click.option("--json", "as_json", is_flag=True, help="the guesses and review list as JSON")
def init(output: str, as_json: bool, **options: Any) -> None:
    """Draft a tenancy map from a live server (every guess is marked for review)."""
    from pgwarden.cli.draft_map import InitRequest, draft_map
    from pgwarden.cli.draft_review import review_lines

    with one_line_errors():
        if output != "-" and Path(output).exists():
            raise UsageError(f"{output} exists; not overwriting it")
        draft = draft_map(InitRequest.of_options(**options))
        # The directive first: editors then complete and check the map as it is reviewed.
        text = f"{SCHEMA_DIRECTIVE}\n{draft.text}"
        if not (as_json and output == "-"):
            write_output(output, text)
        if as_json:
            document = draft.to_json(include_text=output == "-")
            if "draft" in document:
                document["draft"] = text  # what a file would hold, the directive first
            click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            click.echo("\n".join(review_lines(draft.review)), err=True)
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
