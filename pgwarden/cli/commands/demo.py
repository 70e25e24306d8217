"""``pgwarden demo``: scan a throwaway local server shaped like a shared Azure server."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.terminal import Console


@click.command()
@click.option(
    "--output-dir", default="pgwarden-demo", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--pg-bin",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="bin folder of the PostgreSQL server to run (default: $PGWARDEN_PG_BIN, PATH, "
    "the usual install locations, the [demo] extra)",
)
def demo(output_dir: Path, pg_bin: Path | None) -> None:
    """Scan a throwaway local PostgreSQL shaped like a shared Azure server."""
    from pgwarden.cli.demo import run_demo

    with one_line_errors():
        code = run_demo(output_dir, Console(), pg_bin)
        sys.exit(code)
