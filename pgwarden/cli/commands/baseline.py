"""``pgwarden baseline create``: accept today's findings, so the gate fails on new ones only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.inputs import read_results
from pgwarden.cli.outputs import write_output
from pgwarden.gate.baseline import create_baseline


@click.group("baseline")
def baseline_group() -> None:
    """Accept today's findings, so the gate fails on new ones only."""


@baseline_group.command("create")
@click.argument("results_path", metavar="RESULTS.json")
@click.option("-o", "--output", required=True, metavar="BASELINE.json", help="where to write")
def baseline_create(results_path: str, output: str) -> None:
    """Record the failing findings of a results document as a baseline."""
    with one_line_errors():
        results = read_results(Path(results_path))
        made = create_baseline(results, now=datetime.now(UTC), source=results_path)
        write_output(output, made.to_json())
        if not results.scan.complete:
            click.echo(
                "pgwarden: warning: that scan was incomplete: what its rules in error could "
                "not see is not in the baseline",
                err=True,
            )
        if output != "-":
            click.echo(
                f"baseline of {len(made.findings)} failing finding(s) written to {output}",
                err=True,
            )
