"""Measuring one child process, the floor and the scan: wall and CPU time, peak RSS.

Each run is a child process: wall time, CPU time and peak RSS come from ``wait4``
(this child alone), the server's CPU time over the same run from the postmaster and
its ended backends in ``/proc``. The floor and the scan are taken in turn, so a
machine whose speed drifts during the run weighs on both alike.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.auth import SCRAM_VARIABLE
from benchmarks.scenario import DSN_VARIABLE
from pgwarden.model.errors import EnvironmentNotReady


class BenchmarkFailed(Exception):
    """A step the figures need could not be taken: ``python -m benchmarks`` says why in
    one line and exits 2."""


# What a benchmark command reports in one line (``failed``), exit 2: a step it could not
# take, or a machine without what it needs (PostgreSQL's binaries).
FAILURES = (BenchmarkFailed, EnvironmentNotReady)


def failed(prog: str, exc: Exception) -> int:
    """Say ``exc`` (one of ``FAILURES``) as ``prog``'s one-line error; exit status 2."""
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return 2


def last_line(stderr: str) -> str:
    """The last line a failed command wrote (its error, after any traceback)."""
    lines = stderr.strip().splitlines()
    return lines[-1][:500] if lines else "(nothing on stderr)"


REPO = Path(__file__).resolve().parent.parent


@dataclass
class ProcessRun:
    """A measured child process: wall and CPU seconds, peak RSS, how it ended."""

    command: list[str]
    wall: float
    cpu: float
    peak_rss_mb: float
    exit_code: int | None
    timed_out: bool
    stdout: str
    stderr: str
    # CPU seconds the server spent meanwhile (None where it cannot be read).
    server_cpu: float | None = None


ServerClock = Callable[[], float | None]


def server_cpu_clock(data_dir: Path | None) -> ServerClock:
    """CPU seconds a local server has used so far: the postmaster's own (it forks every
    backend) and its ended children's (every backend that has exited, reaped by it).

    Read from ``/proc`` (Linux); None elsewhere, or for a server this machine does not
    run (a container, ``PGWARDEN_TEST_DSN``).
    """

    def read() -> float | None:
        if data_dir is None:
            return None
        try:
            pid = int((data_dir / "postmaster.pid").read_text().split()[0])
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            # utime, stime, cutime, cstime: fields 14 to 17 of proc(5).
            ticks = sum(int(value) for value in fields[11:15])
        except (OSError, ValueError, IndexError):
            return None
        return ticks / os.sysconf("SC_CLK_TCK")

    return read


# A backend exits just after its client closes the connection: wait this long before
# reading the server's CPU, so the last ones are counted with the run that opened them.
BACKEND_EXIT_SECONDS = 0.3


def run_process(
    command: list[str],
    env: dict[str, str],
    timeout: float,
    workdir: Path,
    server_clock: ServerClock,
) -> ProcessRun:
    """Run ``command``; wall time, CPU and peak RSS come from this child alone (wait4),
    the server's CPU from ``server_clock`` before and after."""
    workdir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    server_before = server_clock()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=REPO)
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            proc.send_signal(signal.SIGKILL)

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    server_cpu = None
    if server_before is not None:
        time.sleep(BACKEND_EXIT_SECONDS)
        server_after = server_clock()
        server_cpu = None if server_after is None else server_after - server_before
    return ProcessRun(
        command=command,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        exit_code=None if timed_out.is_set() else proc.returncode,
        timed_out=timed_out.is_set(),
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace")[-2000:],
        server_cpu=server_cpu,
    )


@dataclass
class Floor:
    """The bare psycopg loop over the same databases."""

    wall: float
    loop: float
    cpu: float
    connections: int
    server_cpu: float | None = None
    derived_keys: bool = False


@dataclass
class Scan:
    """One ``pgwarden scan`` and what the probe saw inside it."""

    run: ProcessRun
    stats: dict[str, Any]
    json_bytes: int | None = None

    @property
    def seconds(self) -> dict[str, float]:
        return dict(self.stats.get("seconds", {}))

    @property
    def server(self) -> dict[str, Any]:
        servers = self.stats.get("servers") or [{}]
        return dict(servers[0])

    @property
    def phases(self) -> dict[str, float]:
        stats = self.server.get("stats") or {}
        return dict(stats.get("phase_seconds", {}))

    @property
    def statements(self) -> int | None:
        stats = self.server.get("stats")
        return None if stats is None else int(stats["statements"])

    @property
    def connections(self) -> int | None:
        stats = self.server.get("stats")
        return None if stats is None else int(stats["connections"])

    @property
    def details(self) -> int:
        return int(self.server.get("database_details", 0))

    @property
    def derived_keys(self) -> bool:
        """The logins to each database used SCRAM keys derived once (no PBKDF2 each)."""
        stats = self.server.get("stats") or {}
        return bool(stats.get("derived_keys"))

    @property
    def sampling_wait(self) -> float | None:
        """Waiting, after the last database, for the session sampler's window to end."""
        return self.phases.get("sessions")

    @property
    def evaluation(self) -> float | None:
        return self.seconds.get("evaluate")

    @property
    def rule_seconds(self) -> dict[str, float]:
        """Seconds in each rule's check, by rule id (the probe times them)."""
        return {str(k): float(v) for k, v in (self.stats.get("rule_seconds") or {}).items()}

    def slowest_rules(self, count: int = 3) -> list[tuple[str, float]]:
        """The ``count`` rules whose checks took longest, slowest first (ties by id)."""
        ranked = sorted(self.rule_seconds.items(), key=lambda pair: (-pair[1], pair[0]))
        return ranked[:count]

    @property
    def rendering(self) -> float | None:
        """Writing the reports and printing the terminal's summary."""
        if "render" not in self.seconds:
            return None
        return self.seconds["render"] + self.seconds.get("terminal", 0.0)

    @property
    def findings(self) -> int | None:
        found = self.stats.get("findings")
        return None if found is None else int(found)

    @property
    def startup(self) -> float | None:
        """Importing pgwarden, then options, config and rules until collection starts."""
        if "import" not in self.seconds or "setup" not in self.seconds:
            return None
        return self.seconds["import"] + self.seconds["setup"]

    @property
    def interpreter(self) -> float | None:
        """Starting Python and tearing it down: wall time outside the probe's own clock."""
        inside = self.stats.get("in_process_seconds")
        return None if inside is None or not self.complete else self.run.wall - inside

    @property
    def complete(self) -> bool:
        return not self.run.timed_out and self.run.exit_code in (0, 1, 3)

    def unfinished(self) -> BenchmarkFailed:
        """What a command that needs this scan's figures says when it did not finish."""
        return BenchmarkFailed(
            f"the scan did not finish (exit {self.run.exit_code}): {last_line(self.run.stderr)}"
        )


def measure_floor(
    env: dict[str, str],
    jobs: int,
    workdir: Path,
    server_clock: ServerClock,
    *,
    reads: str = "none",
) -> Floor:
    """The floor (``reads`` none) or the catalog floor (``catalog``): ``benchmarks.floor``."""
    command = [sys.executable, "-m", "benchmarks.floor", "--dsn-env", DSN_VARIABLE]
    command += ["--jobs", str(jobs), "--scram-env", SCRAM_VARIABLE, "--reads", reads]
    run = run_process(command, env, 600, workdir, server_clock)
    if run.exit_code != 0:
        raise BenchmarkFailed(f"the floor loop failed: {last_line(run.stderr)}")
    data = json.loads(run.stdout.strip().splitlines()[-1])
    return Floor(
        run.wall,
        data["loop_seconds"],
        run.cpu,
        data["connections"],
        run.server_cpu,
        bool(data.get("derived_keys")),
    )


RESULTS_FILE = "results.json"


def scan_command(config: Path, jobs: int, outputs: Path, stats: Path) -> list[str]:
    """``pgwarden scan`` under the probe, as a user runs it in CI: the results JSON, and
    the terminal's summary (stdout goes to a file)."""
    command = [sys.executable, "-m", "benchmarks.probe", "--stats", str(stats), "--"]
    command += ["scan", "--config", str(config), "--jobs", str(jobs)]
    return [*command, "--json", str(outputs / RESULTS_FILE)]


def measure_scan(
    config: Path,
    env: dict[str, str],
    jobs: int,
    workdir: Path,
    timeout: float,
    server_clock: ServerClock,
) -> Scan:
    stats_path = workdir / "probe.json"
    results = workdir / RESULTS_FILE
    workdir.mkdir(parents=True, exist_ok=True)
    # A scan that fails writes neither: what an earlier run left in the same --out
    # must not be measured as this scan's.
    stats_path.unlink(missing_ok=True)
    results.unlink(missing_ok=True)
    command = scan_command(config, jobs, workdir, stats_path)
    run = run_process(command, env, timeout, workdir, server_clock)
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return Scan(run, stats, results.stat().st_size if results.exists() else None)


@dataclass
class Pairs:
    """The best floor, catalog floor and scan of a shape, and the ratio of each pair."""

    floor: Floor
    catalog: Floor
    scan: Scan
    ratios: list[float]


def measure_pairs(
    config: Path,
    env: dict[str, str],
    jobs: int,
    workdir: Path,
    timeout: float,
    repeat: int,
    server_clock: ServerClock,
) -> Pairs:
    """The floor, the catalog floor and the scan in turn, ``repeat`` times; the best of
    each, and the ratio of each scan to the floor taken with it.

    Taken in turn rather than one block after the other, so a machine whose speed
    drifts during the run (other tenants, frequency scaling) weighs on all alike.
    """
    floors: list[Floor] = []
    catalogs: list[Floor] = []
    scans: list[Scan] = []
    for attempt in range(repeat):
        floors.append(measure_floor(env, jobs, workdir / f"floor-{attempt}", server_clock))
        catalogs.append(
            measure_floor(env, jobs, workdir / f"catalog-{attempt}", server_clock, reads="catalog")
        )
        scans.append(
            measure_scan(config, env, jobs, workdir / f"scan-{attempt}", timeout, server_clock)
        )
        if not scans[-1].complete:
            break  # a scan that fails or times out is not repeated
    floor = min(floors, key=lambda f: f.wall)
    catalog = min(catalogs, key=lambda f: f.wall)
    complete = [s for s in scans if s.complete]
    ratios = [s.run.wall / f.wall for f, s in zip(floors, scans, strict=True) if s.complete]
    best = min(complete, key=lambda s: s.run.wall) if complete else scans[-1]
    return Pairs(floor, catalog, best, ratios)
