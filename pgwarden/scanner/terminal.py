"""What a person sees in the terminal: progress on stderr, a summary table on stdout."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console as RichConsole
from rich.table import Table

from pgwarden.scanner.results import SEVERITY_ORDER, Results

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


class Console:
    """stdout for results, stderr for progress: rich on a terminal, plain lines otherwise."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.out = RichConsole(highlight=False, soft_wrap=False)
        self.err = RichConsole(stderr=True, highlight=False)

    def print(self, *items: Any) -> None:
        self.out.print(*items)

    def note(self, message: str) -> None:
        if not self.quiet:
            self.err.print(message, markup=False, highlight=False)

    @contextmanager
    def progress(self, title: str) -> Iterator[Callable[[str], None]]:
        """A callback for progress messages: a live status on a terminal, else silence."""
        if self.quiet or not sys.stderr.isatty():
            yield lambda _message: None
            return
        lock = threading.Lock()
        count = 0
        with self.err.status(f"{title}…") as status:

            def update(message: str) -> None:
                nonlocal count
                with lock:
                    count += 1
                    status.update(f"{title}… {message} ({count})")

            yield update


def summary_table(results: Results) -> Table:
    """The findings as a readable table, most severe first."""
    summary = results.summary
    caption = (
        f"{summary.fail} failing, {summary.error} could not be evaluated, "
        f"{summary.waived} waived, {summary.pass_} rule checks passed"
        + ("" if results.scan.complete else " — scan INCOMPLETE")
    )
    table = Table(title="pgwarden findings", caption=caption, show_lines=False, expand=False)
    table.add_column("severity")
    table.add_column("status")
    table.add_column("rule")
    table.add_column("server")
    table.add_column("resource", overflow="fold")
    table.add_column("message", overflow="fold")
    for finding in sorted(
        results.findings,
        key=lambda f: (f.status != "fail", -SEVERITY_ORDER[f.severity], f.rule_id, f.resource),
    ):
        table.add_row(
            f"[{SEVERITY_STYLE[finding.severity]}]{finding.severity}[/]",
            finding.status,
            finding.rule_id,
            finding.server,
            _plain(finding.resource),
            _plain(finding.message),
        )
    return table


def _plain(text: str) -> str:
    """Names from the catalog are data, not rich markup."""
    from rich.markup import escape

    return escape(text)
