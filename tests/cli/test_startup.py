"""Starting ``pgwarden``: each command is imported only when it runs, and lists the same.

Nothing here times anything: the tests look at which modules a process imported, so
an eager import that slows every start again fails here, on any machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import click
import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.cli.main import COMMANDS, CommandEntry, LazyGroup, run
from tests.cli import run_pgwarden

# What a scan of a plain PostgreSQL server writing one results JSON has no use for:
# other commands, report formats it does not write, the Azure SDK, the evidence
# bundle's cryptography, the history's SQLite, the terminal's rich (with --quiet).
NOT_FOR_A_PLAIN_SCAN = (
    "azure",
    "msal",
    "cryptography",
    "jinja2",
    "rich",
    "sqlite3",
    "pgwarden.cli.commands.collect",
    "pgwarden.cli.commands.report",
    "pgwarden.cli.compliance_tables",
    "pgwarden.cli.demo",
    "pgwarden.cli.draft_map",
    "pgwarden.evidence",
    "pgwarden.gate.baseline",
    "pgwarden.gate.history",
    "pgwarden.gate.merge",
    "pgwarden.gate.waivers",
    "pgwarden.reports.html",
    "pgwarden.reports.sarif",
    "pgwarden.reports.junit",
    "pgwarden.reports.markdown",
    "pgwarden.reports.csv_table",
)


def _command(entry: CommandEntry) -> click.Command:
    command = getattr(import_module(entry.module), entry.attribute)
    assert isinstance(command, click.Command)
    return command


def _commands_section(group: click.Group, width: int) -> str:
    ctx = click.Context(group, info_name="pgwarden", terminal_width=width)
    formatter = ctx.make_formatter()
    group.format_commands(ctx, formatter)
    return formatter.getvalue()


def _imported_by(code: str, cwd: Path | None = None) -> set[str]:
    """The modules a fresh interpreter has imported after running ``code``."""
    run = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        timeout=120,
    )
    return set(run.stdout.split())


def _among(imported: set[str], names: tuple[str, ...]) -> set[str]:
    return {m for m in imported if any(m == n or m.startswith(f"{n}.") for n in names)}


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


def test_a_plain_scan_imports_only_what_it_uses(pg_server: LocalServer, tmp_path: Path) -> None:
    (tmp_path / "pgwarden.toml").write_text(
        "[policy]\nsession_samples = 2\nsession_window_seconds = 0.2\n\n"
        f"[[server]]\nname = 'local'\ndsn = {json.dumps(pg_server.dsn())}\n"
    )
    imported = _imported_by(
        "from pgwarden.cli.main import run\n"
        "assert run(['scan', '--json', 'results.json', '-q']) in (0, 1, 3)",
        cwd=tmp_path,
    )
    assert json.loads((tmp_path / "results.json").read_text())["findings"]
    assert "pgwarden.cli.commands.scan" in imported
    assert not _among(imported, NOT_FOR_A_PLAIN_SCAN)
    commands = {m for m in imported if m.startswith("pgwarden.cli.commands.")}
    assert commands == {"pgwarden.cli.commands.scan"}


def test_a_scan_printing_its_summary_to_a_log_does_not_load_rich(
    pg_server: LocalServer, tmp_path: Path
) -> None:
    # stdout and stderr are pipes, as in CI: the summary is plain text, sized as rich
    # would size it, without loading rich.
    (tmp_path / "pgwarden.toml").write_text(
        "[policy]\nsession_samples = 1\nsession_window_seconds = 0\n\n"
        f"[[server]]\nname = 'local'\ndsn = {json.dumps(pg_server.dsn())}\n"
    )
    imported = _imported_by(
        "import contextlib, io, sys\n"
        "from pgwarden.cli.main import run\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    code = run(['scan', '--json', 'results.json'])\n"
        "assert code in (0, 1, 3) and 'failing by severity' in out.getvalue(), out.getvalue()\n"
        "assert 'results.json' in out.getvalue()",
        cwd=tmp_path,
    )
    assert not _among(imported, ("rich",))


def test_commands_that_never_connect_do_not_load_the_postgresql_driver(tmp_path: Path) -> None:
    # The results of a saved snapshot's scan re-rendered and tabled by framework:
    # psycopg (a fifth of a short command's start) is loaded only to read a DSN or to
    # connect.
    snapshot = Path(__file__).parent.parent / "fixtures" / "small_server.json"
    data = json.loads(snapshot.read_text())
    names = [s["name"] for s in data["servers"]]
    (tmp_path / "pgwarden.toml").write_text(
        "".join(f"[[server]]\nname = {json.dumps(n)}\n\n" for n in names)
    )
    scanned = run_pgwarden(
        "scan", "--snapshot", str(snapshot), "--json", "results.json", "-q", cwd=tmp_path
    )
    assert scanned.returncode in (0, 1, 3), scanned.stderr
    for command in (
        "['report', 'results.json', '--markdown', 'results.md']",
        "['compliance', 'results.json']",
    ):
        imported = _imported_by(
            f"from pgwarden.cli.main import run\nassert run({command}) in (0, 1), {command!r}",
            cwd=tmp_path,
        )
        assert not _among(imported, ("psycopg",)), command
    assert (tmp_path / "results.md").exists()


def test_ctrl_c_while_a_command_is_imported_is_an_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ctrl-C lands while the command's module loads, before its own handler: click
    # alone would end it as "Aborted!" with exit 1, the code for violations found.
    (tmp_path / "slow_to_load.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(COMMANDS, "slow", CommandEntry("slow_to_load", "cmd", "Loads slowly."))
    assert run(["slow"]) == 130
    assert capsys.readouterr().err == "pgwarden: interrupted; no results were written\n"
