"""The benchmark run: build the sizes, measure floor and scan, render, judge the targets."""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.reports import (
    BrowserTimings,
    Rendered,
    measure_in_browser,
    render_all,
    synthetic_results,
)
from benchmarks.scenario import DSN_VARIABLE, Plan, SyntheticServer
from pgwarden.cli.localpg import throwaway_server

REPO = Path(__file__).resolve().parent.parent

# The throwaway server: room for the scan, the floor and the builders; no autovacuum
# (it would visit a thousand idle databases in the background while we measure).
SERVER_SETTINGS = {
    "max_connections": "300",
    "autovacuum": "off",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
}

# Targets of issue 7.
MAX_FLOOR_RATIO = 1.5
MAX_EVAL_RENDER_SHARE = 0.20
MAX_PEAK_RSS_MB = 300
MAX_HTML_SECONDS = 5.0
MAX_SARIF_SECONDS = 3.0
MAX_FILTER_SECONDS = 1.0
# Linear growth: the per-database cost between the two largest sizes may exceed the one
# between the two smallest by at most this factor.
MAX_SLOPE_GROWTH = 1.5


@dataclass(frozen=True)
class Size:
    """One synthetic server size."""

    databases: int
    roles: int

    @property
    def label(self) -> str:
        return f"{self.databases:,} db, {self.roles:,} roles"

    @property
    def slug(self) -> str:
        return f"{self.databases}db-{self.roles}roles"


FULL_SIZES = (Size(10, 1_000), Size(100, 1_000), Size(1_000, 1_000), Size(1_000, 10_000))
FULL_PLAN = Plan(seed=7, apps=100, tables=25)
QUICK_SIZES = (Size(5, 150), Size(20, 150), Size(50, 150), Size(50, 600))
QUICK_PLAN = Plan(seed=7, apps=10, tables=25)


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


@dataclass
class Scan:
    """One ``pgwarden scan`` and what the probe saw inside it."""

    run: ProcessRun
    stats: dict[str, Any]

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
    def rendering(self) -> float | None:
        return self.seconds.get("render")

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


@dataclass
class Measurement:
    """One size: how long it took to build, the floor and the scan."""

    size: Size
    build_seconds: float
    floor: Floor
    scan: Scan
    # Scan over floor of each pair taken in turn (``--repeat``): how much the ratio of
    # the bests could owe to one lucky or unlucky minute.
    pair_ratios: list[float] = field(default_factory=list)

    @property
    def pair_median(self) -> float | None:
        return statistics.median(self.pair_ratios) if len(self.pair_ratios) > 1 else None

    @property
    def ratio(self) -> float | None:
        return self.scan.run.wall / self.floor.wall if self.scan.complete else None

    @property
    def ratio_without_sampling(self) -> float | None:
        wait = self.scan.sampling_wait
        if not self.scan.complete or wait is None:
            return None
        return (self.scan.run.wall - wait) / self.floor.wall


@dataclass
class RunReport:
    """Everything one benchmark run measured (written as JSON beside the outputs)."""

    machine: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    renders: list[Rendered] = field(default_factory=list)
    browser: BrowserTimings | None = None
    findings: int = 0
    render_error: str | None = None


def _load() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def measure_floor(
    env: dict[str, str], jobs: int, workdir: Path, server_clock: ServerClock
) -> Floor:
    command = [sys.executable, "-m", "benchmarks.floor", "--dsn-env", DSN_VARIABLE]
    run = run_process([*command, "--jobs", str(jobs)], env, 600, workdir, server_clock)
    if run.exit_code != 0:
        raise RuntimeError(f"the floor loop failed: {run.stderr.strip()[-500:]}")
    data = json.loads(run.stdout.strip().splitlines()[-1])
    return Floor(run.wall, data["loop_seconds"], run.cpu, data["connections"], run.server_cpu)


def scan_command(config: Path, jobs: int, outputs: Path, stats: Path) -> list[str]:
    """``pgwarden scan`` under the probe, writing every report format pgwarden has."""
    from pgwarden.reports.registry import RENDERERS

    command = [sys.executable, "-m", "benchmarks.probe", "--stats", str(stats), "--"]
    command += ["scan", "--config", str(config), "--jobs", str(jobs), "--quiet"]
    for name, (_renderer, filename) in RENDERERS.items():
        if name in ("json", "sarif", "html"):
            command += [f"--{name}", str(outputs / filename)]
    return command


def measure_scan(
    config: Path,
    env: dict[str, str],
    jobs: int,
    workdir: Path,
    timeout: float,
    server_clock: ServerClock,
) -> Scan:
    stats_path = workdir / "probe.json"
    workdir.mkdir(parents=True, exist_ok=True)
    command = scan_command(config, jobs, workdir, stats_path)
    run = run_process(command, env, timeout, workdir, server_clock)
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return Scan(run, stats)


def measure_pairs(
    config: Path,
    env: dict[str, str],
    jobs: int,
    workdir: Path,
    timeout: float,
    repeat: int,
    server_clock: ServerClock,
) -> tuple[Floor, Scan, list[float]]:
    """The floor and the scan in turn, ``repeat`` times; the best of each, and the
    ratio of each pair.

    Taken in turn rather than one block after the other, so a machine whose speed
    drifts during the run (other tenants, frequency scaling) weighs on both alike.
    """
    floors: list[Floor] = []
    scans: list[Scan] = []
    for attempt in range(repeat):
        floors.append(measure_floor(env, jobs, workdir / f"floor-{attempt}", server_clock))
        scans.append(
            measure_scan(config, env, jobs, workdir / f"scan-{attempt}", timeout, server_clock)
        )
        if not scans[-1].complete:
            break  # a scan that fails or times out is not repeated
    floor = min(floors, key=lambda f: f.wall)
    complete = [s for s in scans if s.complete]
    ratios = [s.run.wall / f.wall for f, s in zip(floors, scans, strict=True) if s.complete]
    best = min(complete, key=lambda s: s.run.wall) if complete else scans[-1]
    return floor, best, ratios


def compile_bytecode() -> str:
    """Compile pgwarden's and the benchmark's modules, as installing a wheel does.

    An editable checkout keeps its modules as source; where Python may not cache
    bytecode (PYTHONDONTWRITEBYTECODE, set on some CI images), every process would
    compile them again at start: about 0.07 s of each scan that no installed pgwarden
    pays, and the floor's psycopg comes compiled. Returns what the report records.
    """
    import compileall

    import benchmarks
    import pgwarden

    packages = (Path(pgwarden.__file__).parent, Path(benchmarks.__file__).parent)
    compiled = all(compileall.compile_dir(package, quiet=2) for package in packages)
    return "compiled" if compiled else "could not be written (modules compile at each start)"


def run_benchmark(
    *,
    quick: bool,
    jobs: int,
    out: Path,
    repeat: int,
    scan_timeout: float,
    findings: int,
    browser: bool,
    progress: Any,
    seed: int | None = None,
) -> RunReport:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    plan = QUICK_PLAN if quick else FULL_PLAN
    if seed is not None:
        plan = replace(plan, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    report = RunReport(
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_at_start": _load(),
            "bytecode": compile_bytecode(),
            "jobs": jobs,
            "seed": plan.seed,
            "apps": plan.apps,
            "tables_per_database": plan.tables,
            "sizes": [s.label for s in sizes],
        }
    )
    progress(f"starting a throwaway PostgreSQL ({', '.join(s.label for s in sizes)})")
    with throwaway_server(SERVER_SETTINGS) as server:
        synthetic = SyntheticServer(server, plan)
        server_clock = server_cpu_clock(server.data_dir)
        for size in sizes:
            started = time.perf_counter()
            synthetic.grow(size.databases, size.roles)
            built = time.perf_counter() - started
            progress(f"{size.label}: built in {built:.1f} s; measuring the floor and the scan")
            workdir = out / size.slug
            workdir.mkdir(parents=True, exist_ok=True)
            config = workdir / "pgwarden.toml"
            config.write_text(synthetic.config_toml(), encoding="utf-8")
            env = {**os.environ, DSN_VARIABLE: synthetic.dsn()}
            with synthetic.app_sessions():
                floor, scan, ratios = measure_pairs(
                    config, env, jobs, workdir, scan_timeout, repeat, server_clock
                )
                progress(f"{size.label}: floor {floor.wall:.2f} s")
            measurement = Measurement(size, built, floor, scan, ratios)
            report.measurements.append(measurement)
            state = (
                f"{scan.run.wall:.2f} s (x{measurement.ratio:.2f} the floor)"
                if measurement.ratio is not None
                else ("timed out" if scan.run.timed_out else f"failed ({scan.run.exit_code})")
            )
            progress(f"{size.label}: scan {state}")
            save(report, out)
        progress("stopping the server")
    progress(f"rendering {findings:,} synthetic findings")
    try:
        results = synthetic_results(findings, seed=plan.seed)
        report.findings = len(results.findings)
        report.renders = render_all(results, out / "renders")
    except Exception as exc:  # pgwarden is a moving target: report it, keep the scan figures
        report.render_error = f"{type(exc).__name__}: {exc}"
        progress(f"rendering failed: {report.render_error}")
    html = next((r.path for r in report.renders if r.format == "html" and r.path), None)
    if not browser:
        report.browser = BrowserTimings(note="skipped (--no-browser)")
    elif html is None:
        report.browser = BrowserTimings(note="no HTML report was rendered")
    else:
        progress("opening the HTML report in Chromium")
        report.browser = measure_in_browser(html, "app007_user_01")
    report.machine["load_at_end"] = _load()
    save(report, out)
    return report


def save(report: RunReport, out: Path) -> None:
    """Everything measured so far, as JSON beside the outputs."""
    (out / "benchmark.json").write_text(json.dumps(asdict(report), indent=2, default=str))
