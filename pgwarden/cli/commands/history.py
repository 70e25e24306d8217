"""``pgwarden history`` and ``pgwarden diff``: the recorded runs, and what changed between two."""

from __future__ import annotations

import json

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.options import history_option
from pgwarden.cli.tables import diff_lines, runs_table
from pgwarden.cli.terminal import Console
from pgwarden.gate.history.records import diff_json, run_json
from pgwarden.gate.history.store import HistoryStore

STORE_HELP = "the history database (SQLite file or postgresql://)"


@click.command("history")
@history_option(required=True, help=STORE_HELP)
@click.option("--server", metavar="NAME", help="only runs that scanned this server")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable")
def history_cmd(history_path: str, server: str | None, limit: int, as_json: bool) -> None:
    """List recorded runs, newest first."""
    with one_line_errors(), HistoryStore.open(history_path, create=False) as store:
        runs = store.runs(server=server, limit=limit)
        if as_json:
            click.echo(json.dumps([run_json(r) for r in runs], indent=2))
            return
        Console().print(runs_table(runs), wide=True)


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@history_option(required=True, help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="machine-readable")
def diff_cmd(run_a: str, run_b: str, history_path: str, as_json: bool) -> None:
    """What changed from RUN_A to RUN_B (run ids, latest, or latest~N)."""
    with one_line_errors(), HistoryStore.open(history_path, create=False) as store:
        change = store.diff(store.run(run_a), store.run(run_b))
        if as_json:
            click.echo(json.dumps(diff_json(change), indent=2))
            return
        click.echo("\n".join(diff_lines(change)))
