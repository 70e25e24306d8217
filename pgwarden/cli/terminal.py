"""The terminal: output on stdout, and progress and warnings on stderr."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rich.console import Console as RichConsole


class Console:
    """stdout for results, stderr for progress: rich on a terminal, plain lines otherwise.

    The rich consoles are made when something is first printed through them: a scan
    with ``--quiet``, or that only writes plain progress lines and warnings, never loads
    rich.
    """

    def __init__(
        self, quiet: bool = False, *, err: RichConsole | None = None, terminal: bool | None = None
    ) -> None:
        self.quiet = quiet
        self._out: RichConsole | None = None
        self._err = err
        self._terminal = terminal

    @property
    def out(self) -> RichConsole:
        """The rich console on stdout."""
        if self._out is None:
            from rich.console import Console as RichConsole

            self._out = RichConsole(highlight=False, soft_wrap=False)
        return self._out

    @property
    def err(self) -> RichConsole:
        """The rich console on stderr."""
        if self._err is None:
            from rich.console import Console as RichConsole

            self._err = RichConsole(stderr=True, highlight=False)
        return self._err

    def plain_out(self) -> tuple[IO[str], int] | None:
        """stdout and the width rich would give it, when stdout is not a terminal (a CI
        log, a file), found without loading rich; None when rich should decide (a
        terminal, ``FORCE_COLOR`` or ``TTY_COMPATIBLE=1``, Windows)."""
        if self._out is not None or sys.platform == "win32":
            return None
        compatible = os.environ.get("TTY_COMPATIBLE", "")
        force = os.environ.get("FORCE_COLOR")
        if compatible == "1" or (compatible != "0" and force not in (None, "")):
            return None
        try:
            if compatible != "0" and sys.stdout.isatty():
                return None
        except (AttributeError, ValueError):
            return None
        # As rich sizes a console: the first of stdin, stdout and stderr that is a
        # terminal, then COLUMNS, else 80.
        width = 0
        for descriptor in (0, 1, 2):
            try:
                width = os.get_terminal_size(descriptor).columns
                break
            except (AttributeError, ValueError, OSError):
                continue
        columns = _columns()
        if columns is not None:
            width = columns
        return sys.stdout, width or 80

    @property
    def _err_file(self) -> IO[str]:
        """Where plain lines go: the stderr console's file (a rich console's own default)."""
        return self._err.file if self._err is not None else sys.stderr

    def print(self, *items: Any, wide: bool = False) -> None:
        """Print to stdout; ``wide`` lets a table use 200 columns when stdout is a file or
        pipe (a CI log), where wrapping every cell helps nobody, unless ``COLUMNS`` says
        how wide to be."""
        if wide and not self.out.is_terminal:
            from rich.console import Console as RichConsole

            RichConsole(highlight=False, width=_columns() or 200).print(*items)
            return
        self.out.print(*items)

    def note(self, message: str) -> None:
        # One line however long: a CI log is no 80-column terminal to wrap for.
        if not self.quiet:
            self.err.print(message, markup=False, highlight=False, soft_wrap=True)

    @property
    def terminal(self) -> bool:
        return sys.stderr.isatty() if self._terminal is None else self._terminal

    def warn(self, message: str) -> None:
        """A warning line on stderr, shown even with ``--quiet`` (CI logs need it)."""
        self._err_file.write(f"pgwarden: warning: {message}\n")
        self._err_file.flush()

    @contextmanager
    def progress(self, title: str) -> Iterator[Callable[[str], None]]:
        """A callback for the collectors' progress messages.

        On a terminal: a live display of servers, databases and Azure calls. Otherwise
        one plain line per server as it finishes or fails. Nothing with ``--quiet``.
        """
        if self.quiet:
            yield lambda _message: None
            return
        tracker = ScanProgress()
        if not self.terminal:
            yield lambda message: self._plain(tracker, message)
            return
        with _LiveProgress(self.err, title, tracker) as live:
            yield live.update

    def _plain(self, tracker: ScanProgress, message: str) -> None:
        for line in tracker.observe(message):
            self._err_file.write(f"pgwarden: {line.text}\n")
        self._err_file.flush()


def _columns() -> int | None:
    """The width ``COLUMNS`` sets, when it holds a number."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else None


_PLAN = re.compile(r"^(\d+) server\(s\) to collect$")
_DATABASES = re.compile(r"(\d+) databases?, \d+ roles?")
_AZURE_CALLS = re.compile(r"^(\d+) Azure call\(s\)$")
_NOT_READ = re.compile(r"^(\d+) database\(s\) not read$")


class ProgressLine(NamedTuple):
    """A line worth printing; ``failed`` when a server could not be collected."""

    text: str
    failed: bool = False


@dataclass
class _ServerCount:
    started: float = field(default_factory=time.monotonic)
    databases_listed: int = 0
    databases_read: int = 0
    databases_unread: int = 0
    azure_calls: int = 0


# Past this many servers (a fleet), a log gets a line per tenth of the fleet instead of
# one per server, and the first failures only.
FLEET_SERVERS = 20
FLEET_FAILURE_LINES = 20


class ScanProgress:
    """Counts servers, databases and Azure calls from progress messages (thread-safe).

    It reads the grammar ``scan.collect`` documents: "N server(s) to collect", then
    "SERVER: started", "SERVER: finished", "SERVER: failed: REASON", and the
    collectors' "SERVER: ..." lines: "... N databases, M roles" (databases listed),
    "database NAME" (one database read) and "N Azure call(s)" (calls the server's
    collection sent to Azure).
    Lines worth printing: a header, then one per server as it ends; a lone server that
    fails prints nothing (the run then ends with that error as its one line). For a
    fleet (more than ``FLEET_SERVERS``), a line at each tenth of the fleet (done,
    failing, remaining) and the first ``FLEET_FAILURE_LINES`` failures, so a CI log
    stays short.
    """

    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0
        self.failed = 0
        self.servers: dict[str, _ServerCount] = {}
        self.last = ""
        self._announced = False
        self._lock = threading.Lock()

    @property
    def many(self) -> bool:
        return self.total is not None and self.total > 1

    @property
    def fleet(self) -> bool:
        return self.total is not None and self.total > FLEET_SERVERS

    @property
    def remaining(self) -> int | None:
        return None if self.total is None else max(0, self.total - self.done)

    def counts(self) -> str:
        """``done, failing, remaining`` as a short phrase."""
        left = f", {self.remaining} remaining" if self.remaining is not None else ""
        return f"{self.done} done, {self.failed} failing{left}"

    @property
    def databases_listed(self) -> int:
        return sum(s.databases_listed for s in self.servers.values())

    @property
    def databases_read(self) -> int:
        return sum(s.databases_read for s in self.servers.values())

    @property
    def azure_calls(self) -> int:
        return sum(s.azure_calls for s in self.servers.values())

    def observe(self, message: str) -> tuple[ProgressLine, ...]:
        """Count one message; return the concise lines worth printing (often none)."""
        with self._lock:
            line = self._count(message)
            if line is None:
                return ()
            if self._announced or self.total is None:
                return (line,)
            self._announced = True
            return (ProgressLine(f"collecting {self.total} server(s)"), line)

    def _count(self, message: str) -> ProgressLine | None:
        self.last = message
        plan = _PLAN.match(message)
        if plan:
            self.total = int(plan.group(1))
            return None
        name, _, text = message.partition(": ")
        server = self.servers.setdefault(name, _ServerCount())
        if text == "started":
            server.started = time.monotonic()
            return None
        if text == "finished" or text.startswith("failed: "):
            self.done += 1
            of = f"[{self.done}/{self.total}] " if self.total else ""
            if text != "finished":
                self.failed += 1
                if self.fleet and self.failed > FLEET_FAILURE_LINES:
                    return self._tenth(of)
                # Alone, a failed server ends the run with its own one-line error.
                return ProgressLine(f"{of}{name}: {text}", failed=True) if self.many else None
            if self.fleet:
                return self._tenth(of)
            seconds = time.monotonic() - server.started
            # Each database tried is counted as it ends; those tried in vain, at the end.
            parts = [f"{server.databases_read - server.databases_unread} database(s) read"]
            if server.databases_unread:
                parts.append(f"{server.databases_unread} not read")
            if server.azure_calls:
                parts.append(f"{server.azure_calls} Azure call(s)")
            return ProgressLine(f"{of}{name}: collected ({', '.join(parts)}, {seconds:.1f}s)")
        listed = _DATABASES.search(text)
        calls = _AZURE_CALLS.match(text)
        not_read = _NOT_READ.match(text)
        if not_read:
            server.databases_unread += int(not_read.group(1))
        elif listed:
            server.databases_listed += int(listed.group(1))
        elif text.startswith("database "):
            server.databases_read += 1
        elif calls:
            server.azure_calls += int(calls.group(1))
        return None

    def _tenth(self, of: str) -> ProgressLine | None:
        """A fleet's line when the count crosses a tenth of it (and at the end)."""
        total = self.total or 0
        step = max(1, total // 10)
        if self.done % step and self.done != total:
            return None
        return ProgressLine(f"{of}servers: {self.counts()}")


class _LiveProgress:
    """The rich display: a bar of servers and running counts of databases and Azure calls."""

    def __init__(self, console: RichConsole, title: str, tracker: ScanProgress) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.tracker = tracker
        self.title = title
        self.display = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.servers = self.display.add_task(f"{title}: servers", total=None)
        self.databases = self.display.add_task("databases read", total=None)
        self.azure = self.display.add_task("Azure calls", total=None)

    def __enter__(self) -> _LiveProgress:
        self.display.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.display.stop()

    def update(self, message: str) -> None:
        lines = self.tracker.observe(message)
        t = self.tracker
        self.display.update(
            self.servers,
            total=t.total,
            completed=t.done,
            description=f"{self.title}: servers ({t.failed} failing, {t.remaining} remaining)"
            if t.many
            else f"{self.title}: servers",
        )
        # Listed databases include system ones and templates, which are not read: a
        # count, not a bar that would never fill.
        self.display.update(
            self.databases,
            description=f"databases read ({t.databases_listed} listed)",
            completed=t.databases_read,
        )
        self.display.update(self.azure, completed=t.azure_calls)
        for line in lines:
            if line.failed:
                self.display.console.print(f"pgwarden: {line.text}", markup=False, highlight=False)
