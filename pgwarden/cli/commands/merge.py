"""``pgwarden merge``: join the results of sharded scans into one document, and report it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.inputs import read_results
from pgwarden.cli.options import FAIL_ON, output_flags, output_options, take_outputs
from pgwarden.cli.outputs import check_outputs, render_outputs, write_output
from pgwarden.cli.terminal import Console
from pgwarden.gate.chain import exit_code
from pgwarden.gate.merge import ResultsPart, merge_results
from pgwarden.model.config import FailOn
from pgwarden.model.errors import UsageError
from pgwarden.reports.registry import RENDERERS


@click.command()
@click.argument("parts", nargs=-1, required=True, metavar="PARTS...")
@click.option("-o", "--output", metavar="RESULTS.json", help="write the merged results JSON")
@output_options
@click.option(
    "--fail-on",
    type=FAIL_ON,
    default="high",
    show_default=True,
    help="lowest severity that fails (the exit code, as scan's)",
)
@click.option("-q", "--quiet", is_flag=True, help="no summary line")
def merge(
    parts: tuple[str, ...], output: str | None, fail_on: FailOn, quiet: bool, **kwargs: Any
) -> None:
    """Join the results of sharded scans (--shard I/N) into one results document.

    Says which shards no part covered (exit 3 when some are missing and nothing
    fails), and writes any report format from the merged document, as report does.
    """
    outputs = take_outputs(kwargs)
    with one_line_errors():
        if output is None and not any(outputs.values()):
            names = ", ".join("--" + name for name in RENDERERS)
            raise UsageError(f"name an output: -o RESULTS.json, or one of {names}")
        check_outputs({"-o": output, **output_flags(outputs)})
        merged = merge_results([ResultsPart(path, read_results(Path(path))) for path in parts])
        results = merged.results
        if output is not None:
            write_output(output, results.to_json())
        render_outputs(results, outputs)
        console = Console(quiet=quiet)
        if merged.missing:
            shards = ", ".join(f"{index}/{merged.shards}" for index in merged.missing)
            console.warn(f"missing shard(s): {shards}: their servers are not in the results")
        of = f" of {merged.shards} shard(s)" if merged.shards else ""
        console.note(
            f"pgwarden: merged {len(parts)} part(s){of}: {len(results.servers):,} server(s), "
            f"{results.summary.fail:,} failing, {results.summary.error:,} error(s)"
        )
        sys.exit(exit_code(results, fail_on))
