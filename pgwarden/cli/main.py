"""The ``pgwarden`` command line: the click group, its commands, and the process's exit.

Each command lives in its own module under ``pgwarden.cli.commands``, imported when the
command runs: ``pgwarden scan`` loads what a scan needs and nothing of the other
commands. Every one maps known errors to one line on stderr and the documented exit
code (``cli.exits``): 0 clean, 1 violations, 2 usage or config error, 3 incomplete scan.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib import import_module
from typing import NamedTuple, NoReturn

import click

from pgwarden import __version__
from pgwarden.cli.exits import interrupted
from pgwarden.gcpause import without_cycle_collection
from pgwarden.model.errors import EXIT_USAGE, PgwardenError


class CommandEntry(NamedTuple):
    """Where a command is defined, and the first paragraph of its help.

    The help is kept here so ``pgwarden --help`` lists every command without importing
    any of them; a test checks it against each command's own docstring.
    """

    module: str
    attribute: str
    help: str


COMMANDS: dict[str, CommandEntry] = {
    "baseline": CommandEntry(
        "pgwarden.cli.commands.baseline",
        "baseline_group",
        "Accept today's findings, so the gate fails on new ones only.",
    ),
    "collect": CommandEntry(
        "pgwarden.cli.commands.collect",
        "collect_cmd",
        "Collect a snapshot (no secrets in it) for offline evaluation.",
    ),
    "compliance": CommandEntry(
        "pgwarden.cli.commands.compliance",
        "compliance_cmd",
        "Per-framework control table of a results document (all frameworks, or --framework ID).",
    ),
    "config": CommandEntry(
        "pgwarden.cli.commands.config",
        "config_group",
        "The tenancy map's JSON Schema, and checking a map without connecting.",
    ),
    "demo": CommandEntry(
        "pgwarden.cli.commands.demo",
        "demo",
        "Scan a throwaway local PostgreSQL shaped like a shared Azure server.",
    ),
    "diff": CommandEntry(
        "pgwarden.cli.commands.history",
        "diff_cmd",
        "What changed from RUN_A to RUN_B (run ids, latest, or latest~N).",
    ),
    "explain": CommandEntry(
        "pgwarden.cli.commands.rules",
        "explain",
        "Rationale, what is checked, and the fix for one rule.",
    ),
    "frameworks": CommandEntry(
        "pgwarden.cli.commands.frameworks",
        "frameworks_cmd",
        "The frameworks and controls rules map to (built-in and plug-in rules).",
    ),
    "history": CommandEntry(
        "pgwarden.cli.commands.history",
        "history_cmd",
        "List recorded runs, newest first.",
    ),
    "init": CommandEntry(
        "pgwarden.cli.commands.init",
        "init",
        "Draft a tenancy map from a live server (every guess is marked for review).",
    ),
    "merge": CommandEntry(
        "pgwarden.cli.commands.merge",
        "merge",
        "Join the results of sharded scans (--shard I/N) into one results document.",
    ),
    "report": CommandEntry(
        "pgwarden.cli.commands.report",
        "report",
        "Re-render a saved results document in other formats.",
    ),
    "rules": CommandEntry(
        "pgwarden.cli.commands.rules",
        "rules_cmd",
        "List the rule catalogue, built-in and plug-in.",
    ),
    "scan": CommandEntry(
        "pgwarden.cli.commands.scan",
        "scan",
        "Scan servers (or a snapshot) and report violations.",
    ),
    "verify": CommandEntry(
        "pgwarden.cli.commands.verify",
        "verify_cmd",
        "Check an evidence bundle against its manifest (0 intact, 1 altered).",
    ),
}


class LazyGroup(click.Group):
    """A click group whose commands (``COMMANDS``) are imported when first looked up.

    The documented click pattern for lazily loaded subcommands: ``get_command`` imports
    the one command asked for; the group's help lists every command from the table.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is not None and cmd_name not in self.commands:
            command = getattr(import_module(entry.module), entry.attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        # Ctrl-C before the command's own handler (``exits.one_line_errors``) is reached,
        # as its module is being imported: click would end it as "Aborted!", exit 1.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            interrupted()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Stand-ins that carry only the help: click shortens it exactly as it would the
        # command's own, and no command module is imported to list them.
        stand_ins = {name: click.Command(name, help=entry.help) for name, entry in COMMANDS.items()}
        listing = click.Group(self.name, commands={**stand_ins, **self.commands})
        listing.format_commands(ctx, formatter)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
