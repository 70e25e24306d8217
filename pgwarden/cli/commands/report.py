"""``pgwarden report``: re-render a saved results document in other formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.inputs import read_results
from pgwarden.cli.options import FORMAT_NAMES, output_flags, output_options, take_outputs
from pgwarden.cli.outputs import check_outputs, render_outputs
from pgwarden.cli.terminal import Console
from pgwarden.model.errors import UsageError
from pgwarden.reports.registry import RENDERERS


@click.command()
@click.argument("results_path", metavar="RESULTS.json")
@output_options
@click.option("-q", "--quiet", is_flag=True, help="no line saying what was written")
def report(results_path: str, quiet: bool, **kwargs: Any) -> None:
    """Re-render a saved results document in other formats."""
    outputs = take_outputs(kwargs)
    with one_line_errors():
        check_outputs(output_flags(outputs))
        results = read_results(Path(results_path))
        if not render_outputs(results, outputs):
            raise UsageError(f"name at least one output: {', '.join('--' + n for n in RENDERERS)}")
        console = Console(quiet=quiet)
        for name, path in outputs.items():
            if path is not None and path != "-":
                console.note(f"pgwarden: wrote the {FORMAT_NAMES.get(name, name)} to {path}")
