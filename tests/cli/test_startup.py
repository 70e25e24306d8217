"""Starting ``pgwarden``: each command is imported only when it runs, and lists the same.

Nothing here times anything: the tests look at which modules a process imported, so
an eager import that slows every start again fails here, on any machine.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import click
import pytest

from pgwarden.cli.main import COMMANDS, CommandEntry, LazyGroup
from tests.cli import run_pgwarden


def _command(entry: CommandEntry) -> click.Command:
    command = getattr(import_module(entry.module), entry.attribute)
    assert isinstance(command, click.Command)
    return command


def _commands_section(group: click.Group, width: int) -> str:
    ctx = click.Context(group, info_name="pgwarden", terminal_width=width)
    formatter = ctx.make_formatter()
    group.format_commands(ctx, formatter)
    return formatter.getvalue()


def _imported_by(code: str) -> set[str]:
    """The modules a fresh interpreter has imported after running ``code``."""
    run = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(run.stdout.split())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_names_each_command_with_its_own_help(name: str) -> None:
    entry = COMMANDS[name]
    command = _command(entry)
    assert command.name == name
    own_help = (command.help or "").split("\n\n")[0]
    assert " ".join(entry.help.split()) == " ".join(own_help.split())


@pytest.mark.parametrize("width", [40, 80, 200])
def test_help_lists_the_commands_as_the_commands_themselves_would(width: int) -> None:
    real = click.Group("pgwarden", commands={n: _command(e) for n, e in COMMANDS.items()})
    assert _commands_section(LazyGroup("pgwarden"), width) == _commands_section(real, width)


def test_help_imports_no_command() -> None:
    imported = _imported_by("from pgwarden.cli.main import run\nrun(['--help'])")
    assert not {m for m in imported if m.startswith("pgwarden.cli.commands.")}
    run = run_pgwarden("--help")
    assert run.returncode == 0
    for name in COMMANDS:
        assert f"\n  {name} " in run.stdout


def test_an_unknown_command_is_a_usage_error() -> None:
    run = run_pgwarden("scna")
    assert run.returncode == 2
    assert "Error: No such command 'scna'." in run.stderr


def test_a_command_loads_only_its_own_module() -> None:
    imported = _imported_by("from pgwarden.cli.main import run\nrun(['rules', '--help'])")
    commands = {m for m in imported if m.startswith("pgwarden.cli.commands.")}
    assert commands == {"pgwarden.cli.commands.rules"}
