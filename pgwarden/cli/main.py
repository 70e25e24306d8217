"""The ``pgwarden`` command line: the click group, its commands, and the process's exit.

Each command lives in its own module under ``pgwarden.cli.commands``; every one maps
known errors to one line on stderr and the documented exit code (``cli.exits``): 0
clean, 1 violations, 2 usage or config error, 3 incomplete scan.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

import click

from pgwarden import __version__
from pgwarden.cli.commands.baseline import baseline_group
from pgwarden.cli.commands.collect import collect_cmd
from pgwarden.cli.commands.compliance import compliance_cmd
from pgwarden.cli.commands.config import config_group
from pgwarden.cli.commands.demo import demo
from pgwarden.cli.commands.frameworks import frameworks_cmd
from pgwarden.cli.commands.history import diff_cmd, history_cmd
from pgwarden.cli.commands.init import init
from pgwarden.cli.commands.merge import merge
from pgwarden.cli.commands.report import report
from pgwarden.cli.commands.rules import explain, rules_cmd
from pgwarden.cli.commands.scan import scan
from pgwarden.cli.commands.verify import verify_cmd
from pgwarden.gcpause import without_cycle_collection
from pgwarden.model.errors import EXIT_USAGE, PgwardenError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pgwarden")
@click.option("-v", "--verbose", count=True, help="more log output on stderr (-vv: debug)")
def cli(verbose: int) -> None:
    """Audit shared PostgreSQL servers against what their owners meant."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="pgwarden: %(levelname)s: %(message)s")
    # Third-party libraries log request details at DEBUG; keep them at WARNING.
    # MSAL logs whole token responses at DEBUG.
    for noisy in ("azure", "msal", "urllib3", "psycopg"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


cli.add_command(scan)
cli.add_command(collect_cmd)
cli.add_command(report)
cli.add_command(rules_cmd)
cli.add_command(explain)
cli.add_command(init)
cli.add_command(demo)
cli.add_command(baseline_group)
cli.add_command(history_cmd)
cli.add_command(diff_cmd)
cli.add_command(compliance_cmd)
cli.add_command(frameworks_cmd)
cli.add_command(verify_cmd)
cli.add_command(merge)
cli.add_command(config_group)


def run(args: list[str] | None = None) -> int:
    """Run the command line (``args``, or the process's own) and return its exit code."""
    try:
        cli.main(args=args, standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        click.echo(exc.code, err=True)  # what sys.exit("message") would print
        return 1
    except PgwardenError as exc:  # pragma: no cover - every command has its own handler
        click.echo(f"pgwarden: error: {exc}", err=True)
        return EXIT_USAGE
    return 0


def leave(code: int) -> NoReturn:
    """End the process with ``code`` once every output is flushed, without freeing the heap.

    Every file pgwarden writes is closed and every session ended before the command
    returns; what an ordinary exit still does is free each object one by one (after a
    1,000-database scan, a few hundred thousand of them: about 0.2 s). Flushed by hand:
    stdout, stderr and the log handlers.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
            code = code or 1
    os._exit(code)


def main() -> NoReturn:
    """Console-script entry point: one command, then the process ends."""
    without_cycle_collection()
    leave(run())
