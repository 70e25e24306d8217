"""``pgwarden collect``: write a snapshot (no secrets in it) for offline evaluation."""

from __future__ import annotations

import sys

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.inputs import load_scan_config, nothing_collected, over_privileged
from pgwarden.cli.options import DSN_HELP, NO_SCRAM_KEY_REUSE_HELP, config_option, fleet_options
from pgwarden.cli.outputs import write_output
from pgwarden.cli.terminal import Console
from pgwarden.collect.run import collect
from pgwarden.model.errors import EXIT_INCOMPLETE
from pgwarden.model.shards import Shard


@click.command("collect")
@config_option
@click.option("--dsn", metavar="DSN", help=DSN_HELP)
@click.option("-o", "--output", required=True, metavar="SNAPSHOT.json", help="where to write")
@click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--no-scram-key-reuse", is_flag=True, help=NO_SCRAM_KEY_REUSE_HELP)
@fleet_options
def collect_cmd(
    config_path: str | None,
    dsn: str | None,
    output: str,
    jobs: int,
    quiet: bool,
    no_scram_key_reuse: bool,
    shard: Shard | None,
    servers_parallel: int,
    server_timeout: float | None,
) -> None:
    """Collect a snapshot (no secrets in it) for offline evaluation."""
    with one_line_errors():
        config, _raw = load_scan_config(config_path, dsn)
        console = Console(quiet=quiet)
        with console.progress("collecting") as progress:
            snapshot = collect(
                config,
                jobs=jobs,
                server_jobs=servers_parallel,
                progress=progress,
                scram_key_reuse=not no_scram_key_reuse,
                shard=shard,
                server_timeout=server_timeout,
            )
        nothing_collected(snapshot)
        write_output(output, snapshot.json_pieces())
        for server in snapshot.servers:
            for error in server.errors:
                click.echo(f"pgwarden: warning: {server.name}: {error.reason}", err=True)
        for warning in over_privileged(snapshot, config):
            console.warn(warning)
        if not quiet and output != "-":
            click.echo(
                f"snapshot of {len(snapshot.servers)} server(s) written to {output}", err=True
            )
    if any(server.errors for server in snapshot.servers):
        # Written, with what failed recorded in it (a scan of it reports each as an
        # error); but the collection is incomplete, as a scan's exit 3 says.
        sys.exit(EXIT_INCOMPLETE)
