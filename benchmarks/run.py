"""The benchmark run: each shape on its own throwaway server, floor and scan with SCRAM and
with trust, 50,000 findings rendered, and the targets each figure is judged by."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.auth import SCRAM_VARIABLE, can_switch, scram_verifier, set_authentication
from benchmarks.measure import (
    BenchmarkFailed,
    Floor,
    Scan,
    measure_pairs,
    measure_scan,
    server_cpu_clock,
)
from benchmarks.network import LOOPBACK, network_path, path_label
from benchmarks.reports import (
    BrowserTimings,
    Rendered,
    measure_in_browser,
    render_all,
    synthetic_results,
)
from benchmarks.scenario import AUDITOR, DSN_VARIABLE, SyntheticServer
from benchmarks.shapes import SHAPES, Shape, long_named, quick, scaled, with_tables
from benchmarks.wide import FULL as WIDE_FULL
from benchmarks.wide import QUICK as WIDE_QUICK
from benchmarks.wide import WideRun
from benchmarks.wide import measure as measure_wide
from pgwarden.cli.localpg import throwaway_server

# The throwaway server: room for the scan, the floor and the builders; no autovacuum
# (it would visit a thousand idle databases in the background while we measure).
SERVER_SETTINGS = {
    "max_connections": "300",
    "autovacuum": "off",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
}

AUTHS = ("scram", "trust")


@dataclass(frozen=True)
class Size:
    """One synthetic server size."""

    databases: int
    roles: int

    @property
    def label(self) -> str:
        return f"{self.databases:,} db, {self.roles:,} roles"

    def scaled(self, scale: float) -> Size:
        """This size ``scale`` times over (``--scale``)."""
        return Size(max(1, round(self.databases * scale)), max(1, round(self.roles * scale)))


FULL_SIZE = Size(1_000, 10_000)
QUICK_SIZE = Size(50, 600)
# The first shape is scanned once at fewer databases, the same roles, first: the
# statements of two sizes give the per-database count every shape is checked against.
# A full run's calibration has a tenth of its databases (100 at 1,000), a quick run's 10.
QUICK_CALIBRATION = 10


@dataclass
class Calibration:
    """The first shape's scan at fewer databases: statements and databases read."""

    shape: str
    size: Size
    statements: int | None
    details: int


@dataclass
class ShapeRun:
    """One shape with one authentication: the floor, the scan, and each pair's ratio."""

    shape: str
    description: str
    auth: str
    size: Size
    build_seconds: float
    floor: Floor
    scan: Scan
    # Scan over floor of each pair taken in turn (``--repeat``): how much the ratio of
    # the bests could owe to one lucky or unlucky minute.
    pair_ratios: list[float] = field(default_factory=list)
    # A bare loop making pgwarden's own catalog reads (``benchmarks.floor --reads
    # catalog``): the scan against it is pgwarden's own cost.
    catalog: Floor | None = None

    @property
    def label(self) -> str:
        return f"{self.shape} · {self.auth}"

    @property
    def ratio(self) -> float | None:
        return self.scan.run.wall / self.floor.wall if self.scan.complete else None

    @property
    def catalog_ratio(self) -> float | None:
        """The scan over the catalog floor (informative: the issue's target is the floor)."""
        if not self.scan.complete or self.catalog is None:
            return None
        return self.scan.run.wall / self.catalog.wall

    def cpu_bound(self, cpus: int | None) -> float | None:
        """The least scan ÷ floor that CPU time alone allows here: the catalog floor's
        CPU, client and server, spread over ``cpus`` with none ever idle, over the floor.

        A lower bound for any scanner making pgwarden's catalog reads, where its server
        shares this machine's CPUs (the loopback); None where the server's CPU cannot be
        read. (A forwarder's CPU, with ``--network``, is counted in no process: the
        bound is then lower still, and still a bound.) Informative: the targets are
        against the floor; a bound at or over a target says that no such scan meets it
        on this machine, whatever it does in Python.
        """
        catalog = self.catalog
        if catalog is None or catalog.server_cpu is None or not cpus or self.floor.wall <= 0:
            return None
        return (catalog.cpu + catalog.server_cpu) / cpus / self.floor.wall

    @property
    def pair_median(self) -> float | None:
        return statistics.median(self.pair_ratios) if len(self.pair_ratios) > 1 else None

    @property
    def ratio_without_sampling(self) -> float | None:
        wait = self.scan.sampling_wait
        if not self.scan.complete or wait is None:
            return None
        return (self.scan.run.wall - wait) / self.floor.wall

    @property
    def eval_render(self) -> float | None:
        scan = self.scan
        if not scan.complete or scan.evaluation is None or scan.rendering is None:
            return None
        return scan.evaluation + scan.rendering


@dataclass
class RunReport:
    """Everything one benchmark run measured (written as JSON beside the outputs)."""

    machine: dict[str, Any]
    calibration: Calibration | None = None
    runs: list[ShapeRun] = field(default_factory=list)
    renders: list[Rendered] = field(default_factory=list)
    browser: BrowserTimings | None = None
    findings: int = 0
    render_error: str | None = None
    notes: list[str] = field(default_factory=list)
    # One wide app database (``benchmarks.wide``), when measured; why its scan failed.
    wide: WideRun | None = None
    wide_error: str | None = None


def _load() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


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


def shape_name(spelled: str) -> str:
    """A shape's name as ``SHAPES`` spells it, from either spelling: ``single-db-apps``
    (one word on a command line) or ``single-db apps``."""
    for shape in SHAPES:
        if spelled in (shape.name, shape.name.replace(" ", "-")):
            return shape.name
    return spelled


def select_shapes(names: Sequence[str] | None, *, small: bool) -> list[Shape]:
    """The shapes to measure (all by default), sized for ``--quick`` when ``small``.

    A name may be spelled with hyphens for spaces (``deep-chains``).
    """
    names = [shape_name(name) for name in names or ()]
    chosen = [s for s in SHAPES if not names or s.name in names]
    unknown = set(names) - {s.name for s in SHAPES}
    if unknown:
        known = ", ".join(repr(s.name) for s in SHAPES)
        raise ValueError(f"unknown shape(s) {', '.join(sorted(unknown))}: choose from {known}")
    return [quick(s) for s in chosen] if small else chosen


def run_benchmark(
    *,
    quick: bool,
    jobs: int,
    out: Path,
    repeat: int,
    scan_timeout: float,
    findings: int,
    browser: bool,
    progress: Callable[[str], None],
    seed: int | None = None,
    shapes: Sequence[str] | None = None,
    auths: Sequence[str] = AUTHS,
    wide: bool = True,
    scale: float = 1.0,
    long_names: bool = False,
    tables: int | None = None,
    network: float | None = None,
) -> RunReport:
    """The shapes (``shapes``, default all) with each authentication, the wide database
    (``wide``), then the synthetic findings' rendering.

    ``scale``: every shape built at that many times its size (its databases, roles and
    apps), to see how the figures follow the size; the wide database keeps its own.
    ``long_names``: every shape's apps, databases and roles named near 63 bytes, quoted.
    ``tables``: every shape's app databases built with that many tables.
    ``network``: every shape reached over TLS, through a forwarder adding that many
    milliseconds to each round trip (``benchmarks.network``); the wide database and the
    calibration scan keep the loopback.
    """
    if quick and scale != 1:
        raise ValueError("--scale sizes the full run's shapes: leave out --quick")
    size = QUICK_SIZE if quick else FULL_SIZE.scaled(scale)
    chosen = select_shapes(shapes, small=quick)
    if scale != 1:
        chosen = [scaled(s, scale) for s in chosen]
    if long_names:
        chosen = [long_named(s) for s in chosen]
    if tables is not None:
        chosen = [with_tables(s, tables) for s in chosen]
    if seed is not None:
        chosen = [replace(s, plan=replace(s.plan, seed=seed)) for s in chosen]
    # Each shape's databases are copies of one template database.
    builds = [(size.databases + 1, s.plan.tables) for s in chosen]
    wide_size = WIDE_QUICK if quick else WIDE_FULL
    if wide:
        builds.append((1, wide_size[0]))
    check_disk(builds, Path(tempfile.gettempdir()))
    out.mkdir(parents=True, exist_ok=True)
    report = RunReport(
        machine=_machine(
            jobs=jobs,
            seed=chosen[0].plan.seed if chosen else seed,
            size=size.label,
            quick=quick,
            repeat=repeat,
            shapes=[s.name for s in chosen],
            auths=list(auths),
            scale=scale,
            long_names=long_names,
            tables=chosen[0].plan.tables if chosen else tables,
            network=LOOPBACK if network is None else path_label(network),
        )
    )
    calibrate = QUICK_CALIBRATION if quick else max(QUICK_CALIBRATION, size.databases // 10)
    for shape in chosen:
        _measure_shape(
            report,
            shape,
            size,
            calibrate if report.calibration is None else None,
            auths,
            jobs=jobs,
            out=out,
            repeat=repeat,
            scan_timeout=scan_timeout,
            progress=progress,
            network=network,
        )
    if wide:
        tables, schemas, members = wide_size
        progress(f"wide database: {tables:,} tables, {members} members of its group")
        try:
            report.wide = measure_wide(
                tables, schemas, members, out / "wide", scan_timeout, repeat=repeat
            )
        except BenchmarkFailed as exc:  # a missed target, not the loss of the shapes' figures
            report.wide_error = str(exc)
        save(report, out)
    _render_reports(
        report,
        findings,
        seed=chosen[0].plan.seed if chosen else 7,
        out=out,
        browser=browser,
        progress=progress,
    )
    return _finish(report, out)


# The disk a throwaway server takes while it is built (measured in the nineteenth
# round: 8.5 MB a database of 25 tables on PostgreSQL 15, 9.1 on 18, 10.0 on 14): each
# database is a copy of the template's files (STRATEGY FILE_COPY, so its WAL stays
# small), and each table of the plan (a key and a text column) four relations. Room is
# kept for the WAL the tables' creation writes.
DATABASE_MB = 9.0
TABLE_MB = 0.045
WAL_MB = 1_024


def disk_needed_mb(databases: int, tables: int) -> float:
    """About how many MB a server takes while ``databases`` databases of ``tables``
    tables each are built in it (a shape's template is one of them), its WAL included."""
    return databases * (DATABASE_MB + TABLE_MB * tables) + WAL_MB


def check_disk(builds: Sequence[tuple[int, int]], where: Path) -> None:
    """Refuse, before anything is built, a run whose largest server (``builds``: the
    databases and tables of each; one is built at a time) would not fit in ``where``,
    the throwaway servers' temporary directory: a full disk half an hour into building
    10,000 databases is no way to find out."""
    needed = max((disk_needed_mb(*build) for build in builds), default=0.0)
    free = shutil.disk_usage(where).free / 1e6
    if free < needed:
        raise BenchmarkFailed(
            f"the largest server this run builds takes about {needed / 1000:.1f} GB, and "
            f"{where} (where the throwaway servers live) has {free / 1000:.1f} GB free: "
            "free some space, or set TMPDIR to a directory on a larger disk"
        )


def run_reports_only(
    *,
    out: Path,
    findings: int,
    browser: bool,
    progress: Callable[[str], None],
    seed: int | None = None,
) -> RunReport:
    """Only the report part of the benchmark: render the synthetic findings, open the HTML.

    No server is built: a minute's check of the renderers and of the report in Chromium.
    """
    out.mkdir(parents=True, exist_ok=True)
    report = RunReport(machine=_machine(seed=7 if seed is None else seed, reports_only=True))
    _render_reports(
        report, findings, seed=report.machine["seed"], out=out, browser=browser, progress=progress
    )
    return _finish(report, out)


def _machine(**run: Any) -> dict[str, Any]:
    """The machine as a run starts on it (bytecode compiled first), and the run's options."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_at_start": _load(),
        "bytecode": compile_bytecode(),
        **run,
    }


def _finish(report: RunReport, out: Path) -> RunReport:
    """The load at the end, and everything written to ``benchmark.json``."""
    report.machine["load_at_end"] = _load()
    save(report, out)
    return report


def _render_reports(
    report: RunReport,
    findings: int,
    *,
    seed: int,
    out: Path,
    browser: bool,
    progress: Callable[[str], None],
) -> None:
    """Render ``findings`` synthetic findings in every format, then open the HTML report."""
    progress(f"rendering {findings:,} synthetic findings")
    try:
        results = synthetic_results(findings, seed=seed)
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


def _measure_shape(
    report: RunReport,
    shape: Shape,
    size: Size,
    calibrate: int | None,
    auths: Sequence[str],
    *,
    jobs: int,
    out: Path,
    repeat: int,
    scan_timeout: float,
    progress: Callable[[str], None],
    network: float | None = None,
) -> None:
    """Build ``shape`` on a server of its own, then measure it with each authentication
    (``network``: over TLS and that many milliseconds of round trip, ``--network``)."""
    slug = shape.name.replace(" ", "-")
    progress(f"{shape.name}: starting a throwaway PostgreSQL and building {size.label}")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(throwaway_server(SERVER_SETTINGS))
        synthetic = SyntheticServer(server, shape.plan)
        report.machine["postgres"] = synthetic.server_version
        server_clock = server_cpu_clock(server.data_dir)
        started = time.perf_counter()
        if calibrate is not None:
            synthetic.grow(calibrate, size.roles)
            report.calibration = _calibration(
                synthetic, shape, Size(calibrate, size.roles), jobs, out, scan_timeout
            )
            progress(f"{shape.name}: calibrated the statement count at {calibrate} databases")
        synthetic.grow(size.databases, size.roles)
        built = time.perf_counter() - started
        progress(f"{shape.name}: built in {built:.0f} s")
        workdir = out / slug
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "pgwarden.toml"
        config.write_text(synthetic.config_toml(), encoding="utf-8")
        path = None
        if network is not None:
            path = stack.enter_context(network_path(server, network, workdir / "network"))
            took = path.round_trip_ms(synthetic.dsn())
            report.notes.append(
                f"{shape.name}: a SELECT 1 round trip by the path took {took:.2f} ms (median of 21)"
            )
        for auth in auths:
            if auth == "trust" and not can_switch(server):
                report.notes.append(f"{shape.name}: trust not measured (server in a container)")
                continue
            if can_switch(server):
                set_authentication(server, auth, synthetic.dsn())
            dsn = synthetic.dsn()
            env = {**os.environ, DSN_VARIABLE: dsn if path is None else path.dsn(dsn)}
            if auth == "scram":
                env[SCRAM_VARIABLE] = scram_verifier(server, AUDITOR)
            with synthetic.app_sessions():
                pairs = measure_pairs(
                    config, env, jobs, workdir / auth, scan_timeout, repeat, server_clock
                )
            run = ShapeRun(
                shape.name,
                shape.description,
                auth,
                size,
                built,
                pairs.floor,
                pairs.scan,
                pairs.ratios,
                pairs.catalog,
            )
            floor, scan = pairs.floor, pairs.scan
            report.runs.append(run)
            state = (
                f"x{run.ratio:.2f} the floor ({scan.run.wall:.2f} s / {floor.wall:.2f} s)"
                if run.ratio is not None
                else ("timed out" if scan.run.timed_out else f"failed ({scan.run.exit_code})")
            )
            progress(f"{shape.name} · {auth}: scan {state}")
            save(report, out)
        progress(f"{shape.name}: stopping the server")


def _calibration(
    synthetic: SyntheticServer,
    shape: Shape,
    size: Size,
    jobs: int,
    out: Path,
    scan_timeout: float,
) -> Calibration:
    """One scan at fewer databases: the statements it issues, for the per-database count."""
    workdir = out / "calibration"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "pgwarden.toml"
    config.write_text(synthetic.config_toml(), encoding="utf-8")
    env = {**os.environ, DSN_VARIABLE: synthetic.dsn()}
    scan = measure_scan(config, env, jobs, workdir, scan_timeout, lambda: None)
    return Calibration(shape.name, size, scan.statements, scan.details)


@dataclass(frozen=True)
class StatementShape:
    """Statements = server-wide + per-database x databases read, from the calibration."""

    per_database: float
    server_wide: float


def statement_shape(report: RunReport) -> StatementShape | None:
    """The per-database and server-wide statement counts, from the calibration scan and
    the first run of the same shape."""
    calibration = report.calibration
    if calibration is None or calibration.statements is None:
        return None
    first = next(
        (r for r in report.runs if r.shape == calibration.shape and r.scan.statements), None
    )
    if first is None or first.scan.statements is None:
        return None
    span = first.scan.details - calibration.details
    if span <= 0:
        return None
    per_database = (first.scan.statements - calibration.statements) / span
    return StatementShape(per_database, calibration.statements - per_database * calibration.details)


def statements_per_database(run: ShapeRun, shape: StatementShape | None) -> float | None:
    """The run's statements beyond the server-wide ones, per database read."""
    statements = run.scan.statements
    if shape is None or statements is None or not run.scan.details:
        return None
    return (statements - shape.server_wide) / run.scan.details


def save(report: RunReport, out: Path) -> None:
    """Everything measured so far, as JSON beside the outputs."""
    (out / "benchmark.json").write_text(json.dumps(asdict(report), indent=2, default=str))
