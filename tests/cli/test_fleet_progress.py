"""Progress across a fleet: a short log in CI, done/failing/remaining on a terminal."""

from __future__ import annotations

import io

from rich.console import Console as RichConsole

from pgwarden.cli.terminal import FLEET_FAILURE_LINES, Console, ScanProgress


def _fleet_messages(servers: int, failing: set[int]) -> list[str]:
    messages = [f"{servers} server(s) to collect"]
    for index in range(servers):
        name = f"pg-{index:03d}"
        messages.append(f"{name}: started")
        messages.append(
            f"{name}: failed: cannot connect to {name}:5432: timeout"
            if index in failing
            else f"{name}: finished"
        )
    return messages


def test_a_fleet_log_has_a_line_per_tenth_and_the_first_failures() -> None:
    err = io.StringIO()
    console = Console(err=RichConsole(file=err), terminal=False)
    failing = set(range(0, 200, 5))  # 40 failing servers of 200
    with console.progress("collecting") as progress:
        for message in _fleet_messages(200, failing):
            progress(message)
    lines = err.getvalue().splitlines()
    assert lines[0] == "pgwarden: collecting 200 server(s)"
    failures = [line for line in lines if ": failed: " in line]
    assert len(failures) == FLEET_FAILURE_LINES
    tenths = [line for line in lines if "servers: " in line]
    assert len(tenths) == 10
    assert tenths[-1] == "pgwarden: [200/200] servers: 200 done, 40 failing, 0 remaining"
    assert tenths[0] == "pgwarden: [20/200] servers: 20 done, 4 failing, 180 remaining"
    assert len(lines) == 1 + FLEET_FAILURE_LINES + 10


def test_a_terminal_shows_failing_and_remaining_servers() -> None:
    err = io.StringIO()
    terminal = RichConsole(file=err, force_terminal=True, width=120, color_system=None)
    console = Console(err=terminal, terminal=True)
    with console.progress("collecting") as progress:
        for message in _fleet_messages(30, {3})[:20]:
            progress(message)
    assert "servers (1 failing, 21 remaining)" in err.getvalue()


def test_counts_say_done_failing_and_remaining() -> None:
    tracker = ScanProgress()
    for message in _fleet_messages(3, {1})[:4]:
        tracker.observe(message)
    assert tracker.counts() == "1 done, 0 failing, 2 remaining"
