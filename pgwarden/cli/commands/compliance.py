"""``pgwarden compliance``: a saved results document's compliance, framework by framework."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pgwarden.cli.compliance_tables import controls_table, frameworks_summary_table
from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.inputs import read_results
from pgwarden.cli.terminal import Console
from pgwarden.model.compliance import compliance_of
from pgwarden.model.errors import ConfigError, UsageError
from pgwarden.model.results import ComplianceFramework

STATUSES = ("pass", "fail", "error", "manual", "not_applicable")


@click.command("compliance")
@click.argument("results_path", metavar="RESULTS.json")
@click.option("--framework", "framework_id", metavar="ID", help="one framework's controls")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="only controls with this status (repeatable; with --framework)",
)
@click.option("--json", "as_json", is_flag=True, help="the compliance section as JSON")
def compliance_cmd(
    results_path: str, framework_id: str | None, statuses: tuple[str, ...], as_json: bool
) -> None:
    """Per-framework control table of a results document (all frameworks, or --framework ID)."""
    with one_line_errors():
        results = read_results(Path(results_path))
        if results.compliance is None:
            # A document written without the section (by another tool, or trimmed):
            # judged again from its rules' controls and coverage, when it has them.
            if not any(rule.controls for rule in results.rules):
                raise ConfigError(
                    f"{results_path}: no compliance section, and no rule names the controls "
                    f"it maps to (results schema {results.schema_version}); scan again with "
                    "this pgwarden"
                )
            results = results.model_copy(update={"compliance": compliance_of(results)})
        every: tuple[ComplianceFramework, ...] = results.compliance or ()
        frameworks = every
        if framework_id is not None:
            frameworks = tuple(f for f in every if f.id.lower() == framework_id.lower())
            if not frameworks:
                known = ", ".join(f.id for f in every)
                raise UsageError(f"--framework {framework_id!r}: not in these results ({known})")
        elif statuses:
            raise UsageError("--status lists one framework's controls: add --framework ID")
        if as_json:
            data = [f.model_dump(mode="json", by_alias=True, exclude_none=True) for f in frameworks]
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        console = Console()
        if framework_id is None:
            console.print(frameworks_summary_table(results), wide=True)
            console.print("one framework's controls: pgwarden compliance RESULTS --framework ID")
            return
        console.print(controls_table(frameworks[0], statuses=statuses), wide=True)
