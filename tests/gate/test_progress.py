"""Progress: a live display on a terminal, concise lines in a log, nothing with --quiet."""

from __future__ import annotations

import io

from rich.console import Console as RichConsole

from pgwarden.cli.terminal import Console, ProgressLine, ScanProgress

MESSAGES = [
    "2 server(s) to collect",
    "east: started",
    "west: started",
    "east: reading Azure",
    "east: 127.0.0.1:5432/postgres: 7 databases, 12 roles",
    "east: database zep",
    "east: database temporal",
    "east: 1 database(s) not read",
    "east: 12 Azure call(s)",
    "west: failed: cannot connect to 10.0.0.9:5432/postgres: connection refused",
    "east: finished",
]


def test_progress_counts_servers_databases_and_azure_calls() -> None:
    tracker = ScanProgress()
    lines = [line for m in MESSAGES for line in tracker.observe(m)]
    assert (tracker.total, tracker.done, tracker.failed) == (2, 2, 1)
    assert (tracker.databases_listed, tracker.databases_read, tracker.azure_calls) == (7, 2, 12)
    assert lines[0] == ProgressLine("collecting 2 server(s)")
    assert lines[1] == ProgressLine(
        "[1/2] west: failed: cannot connect to 10.0.0.9:5432/postgres: connection refused",
        failed=True,
    )
    # Two databases tried, one in vain: it is not counted as read.
    assert lines[2].text.startswith(
        "[2/2] east: collected (1 database(s) read, 1 not read, 12 Azure call(s), "
    )
    assert len(lines) == 3


def test_plain_lines_when_not_a_terminal() -> None:
    err = io.StringIO()
    console = Console(err=RichConsole(file=err), terminal=False)
    with console.progress("collecting") as progress:
        for message in MESSAGES:
            progress(message)
    lines = err.getvalue().splitlines()
    assert lines[0] == "pgwarden: collecting 2 server(s)"
    assert lines[1].startswith("pgwarden: [1/2] west: failed: cannot connect")
    assert lines[2].startswith("pgwarden: [2/2] east: collected (1 database(s) read, 1 not read")
    assert len(lines) == 3


def test_a_live_display_on_a_terminal_keeps_only_failures() -> None:
    err = io.StringIO()
    terminal = RichConsole(file=err, force_terminal=True, width=100, color_system=None)
    console = Console(err=terminal, terminal=True)
    with console.progress("collecting") as progress:
        for message in MESSAGES:
            progress(message)
    shown = err.getvalue()
    assert "collecting: servers" in shown
    assert "databases read (7 listed)" in shown
    assert "Azure calls" in shown
    assert "pgwarden: [1/2] west: failed: cannot connect" in shown


def test_quiet_shows_nothing() -> None:
    err = io.StringIO()
    console = Console(quiet=True, err=RichConsole(file=err), terminal=True)
    with console.progress("collecting") as progress:
        for message in MESSAGES:
            progress(message)
    assert err.getvalue() == ""


def test_one_server_alone_gets_one_line_or_none() -> None:
    tracker = ScanProgress()
    ok = [line.text for m in ("1 server(s) to collect", "db: started", "db: finished")
          for line in tracker.observe(m)]  # fmt: skip
    assert [text[:18] for text in ok] == ["collecting 1 serve", "[1/1] db: collecte"]
    tracker = ScanProgress()
    # A lone failing server ends the run with its own error line: no progress line too.
    failed = [tracker.observe(m) for m in ("1 server(s) to collect", "db: failed: refused")]
    assert failed == [(), ()]
