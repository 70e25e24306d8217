"""What the benchmark prints: the measurements as tables, then each target, met or missed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from benchmarks.network import LOOPBACK
from benchmarks.run import (
    RunReport,
    ShapeRun,
    statement_shape,
    statements_per_database,
)
from benchmarks.scenario import Plan
from benchmarks.targets import (
    MAX_EVAL_RENDER_SHARE,
    MAX_FILTER_SECONDS,
    MAX_FLOOR_RATIO,
    MAX_JSON_MB,
    MAX_OPEN_SECONDS,
    MAX_PEAK_RSS_MB,
    MAX_RENDER_SECONDS,
    share_shown,
)
from benchmarks.wide import wide_lines, wide_verdicts


def _table(title: str, columns: Sequence[str], *, text: Sequence[str] = ()) -> Table:
    """A table whose columns are right-aligned figures, except the ``text`` ones."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in text else "right")
    return table


def _s(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _mb(size: int | None) -> str:
    return "—" if size is None else f"{size / 1_000_000:.1f}"


def _cpu(client: float, server: float | None) -> str:
    """Client and server CPU seconds of one run (the server's where it can be read)."""
    return f"{client:.1f} + {'—' if server is None else f'{server:.1f}'}"


def _share(part: float | None, whole: float) -> str:
    return "—" if part is None or whole <= 0 else share_shown(part / whole)


def shape_table(report: RunReport) -> Table:
    table = _table(
        f"pgwarden scan against the floor at {report.machine.get('size', '?')} "
        "(wall seconds; best of the repeats)",
        (
            "shape · auth",
            "floor",
            "scan",
            "x floor",
            "median of pairs",
            "catalog floor",
            "x catalog floor",
            "peak RSS MB",
            "results JSON MB",
            "findings",
            "eval s",
            "render s",
            "eval+render",
            "statements / db",
            "exit",
        ),
        text=("shape · auth",),
    )
    statements = statement_shape(report)
    for run in report.runs:
        scan = run.scan
        per_db = statements_per_database(run, statements)
        table.add_row(
            run.label,
            _s(run.floor.wall),
            _s(scan.run.wall),
            _s(run.ratio),
            _s(run.pair_median),
            _s(run.catalog.wall if run.catalog is not None else None),
            _s(run.catalog_ratio),
            f"{scan.run.peak_rss_mb:.0f}",
            _mb(scan.json_bytes),
            "—" if scan.findings is None else f"{scan.findings:,}",
            _s(scan.evaluation),
            _s(scan.rendering),
            _share(run.eval_render, scan.run.wall) if scan.complete else "—",
            "—" if per_db is None else f"{per_db:g}",
            "timeout" if scan.run.timed_out else str(scan.run.exit_code),
        )
    return table


def phase_table(report: RunReport) -> Table:
    table = _table(
        "Where the scan's time goes (seconds), and CPU seconds of client + server",
        (
            "shape · auth",
            "startup",
            "connect",
            "server-wide",
            "per-database",
            "sampling wait",
            "python start/exit",
            "floor CPU",
            "scan CPU",
            "least x floor by CPU",
            "derived keys floor/scan",
        ),
        text=("shape · auth",),
    )
    for run in report.runs:
        scan = run.scan
        phases = scan.phases
        table.add_row(
            run.label,
            _s(scan.startup),
            _s(phases.get("connect"), 3),
            _s(phases.get("server")),
            _s(phases.get("databases")),
            _s(scan.sampling_wait),
            _s(scan.interpreter),
            _cpu(run.floor.cpu, run.floor.server_cpu),
            _cpu(scan.run.cpu, scan.run.server_cpu),
            _s(run.cpu_bound(report.machine.get("cpus"))),
            f"{'yes' if run.floor.derived_keys else 'no'}/{'yes' if scan.derived_keys else 'no'}",
        )
    return table


def evaluation_table(report: RunReport) -> Table:
    """Where evaluation goes: the rules' own checks, the rest (turning verdicts into
    findings, each server's summary, compliance), and the slowest rules."""
    table = _table(
        "Where evaluation goes (seconds)",
        ("shape · auth", "evaluate", "rules' checks", "the rest", "slowest rules"),
        text=("shape · auth", "slowest rules"),
    )
    for run in report.runs:
        scan = run.scan
        timed = scan.rule_seconds
        checks = sum(timed.values()) if timed else None
        rest = None if checks is None or scan.evaluation is None else scan.evaluation - checks
        slowest = ", ".join(f"{rule} {seconds:.2f}" for rule, seconds in scan.slowest_rules())
        table.add_row(run.label, _s(scan.evaluation), _s(checks), _s(rest), slowest or "—")
    return table


def render_table(report: RunReport) -> Table:
    table = _table(
        f"Rendering {report.findings:,} synthetic findings",
        ("format", "seconds", "CPU seconds", "size MB", "note"),
        text=("format", "note"),
    )
    for r in report.renders:
        table.add_row(r.format, _s(r.seconds), _s(r.cpu_seconds), _mb(r.size), r.note)
    return table


def browser_table(report: RunReport) -> Table | None:
    b = report.browser
    if b is None or b.load is None:
        return None
    table = _table(
        "HTML report in Chromium (seconds until the findings count changes)",
        ("open", "search (incl. 120 ms typing debounce)", "rule filter", "severity filter"),
    )
    table.add_row(_s(b.load), _s(b.search), _s(b.rule_filter), _s(b.severity_filter))
    return table


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: could not be measured


# At --quick sizes the fixed costs (starting Python, the session sampler's two
# seconds) outweigh the databases: the time targets are printed, not judged.
QUICK = "(quick run: too small to judge)"
# The peak RSS and the results' size are set for the issue's size; at another
# (``--scale``, ``--tables``) they are printed, to compare, not judged.
SCALED = f"(set at 1,000 db of {Plan().tables} tables, 10,000 roles: not judged at this size)"


def _run_verdicts(
    run: ShapeRun,
    per_db: float | None,
    expected: float | None,
    *,
    quick: bool,
    scaled: bool = False,
    cpus: int | None = None,
) -> list[Verdict]:
    scan = run.scan
    limit = MAX_FLOOR_RATIO[run.auth]
    found: list[Verdict] = []
    target = f"{run.label}: scan ≤ {limit}x the floor"
    if quick and run.ratio is not None:
        found.append(Verdict(target, f"x{run.ratio:.2f} {QUICK}", None))
    elif run.ratio is not None:
        measured = f"x{run.ratio:.2f}"
        if run.pair_median is not None:
            measured += f" (median of {len(run.pair_ratios)} pairs x{run.pair_median:.2f})"
        bound = run.cpu_bound(cpus)
        if bound is not None:
            measured += f"; CPU alone allows no less than x{bound:.2f}"
        found.append(Verdict(target, measured, run.ratio <= limit))
    elif scan.run.timed_out:
        at_least = scan.run.wall / run.floor.wall
        measured = f"stopped after {scan.run.wall:.0f} s: more than x{at_least:.1f}"
        found.append(Verdict(target, measured, False if at_least > limit else None))
    else:
        # A scan that fails meets no target, whatever else it left to measure.
        found.append(Verdict(target, f"scan failed (exit {scan.run.exit_code})", False))
    peak = scan.run.peak_rss_mb
    size = scan.json_bytes
    # At another size (--scale) the size targets are printed, not judged.
    note = f" {SCALED}" if scaled else ""
    found.append(
        Verdict(
            f"{run.label}: peak RSS ≤ {MAX_PEAK_RSS_MB} MB",
            f"{peak:.0f} MB{note}",
            # A peak only grows: over the limit before the end is a miss too.
            None
            if scaled or not (scan.complete or peak > MAX_PEAK_RSS_MB)
            else peak <= MAX_PEAK_RSS_MB,
        )
    )
    found.append(
        Verdict(
            f"{run.label}: results JSON ≤ {MAX_JSON_MB} MB",
            "not written" if size is None else f"{size / 1_000_000:.1f} MB{note}",
            None if scaled or size is None else size <= MAX_JSON_MB * 1_000_000,
        )
    )
    share = run.eval_render
    measured = (
        "not reached"
        if share is None
        else f"{share_shown(share / scan.run.wall)} ({scan.evaluation:.2f} s + "
        f"{scan.rendering:.2f} s)"
    )
    found.append(
        Verdict(
            f"{run.label}: evaluation + rendering ≤ {MAX_EVAL_RENDER_SHARE:.0%} of the scan",
            f"{measured} {QUICK}" if quick else measured,
            None if share is None or quick else share / scan.run.wall <= MAX_EVAL_RENDER_SHARE,
        )
    )
    if expected is not None:
        found.append(
            Verdict(
                f"{run.label}: {expected:g} statements per database",
                "—" if per_db is None else f"{per_db:g}",
                None if per_db is None else round(per_db, 3) == round(expected, 3),
            )
        )
    return found


def _other_tables(report: RunReport) -> int | None:
    """The tables per app database a run was built with (``--tables``), where not the
    shapes' own; None where they were."""
    tables = report.machine.get("tables")
    return None if tables in (None, Plan().tables) else int(tables)


def verdicts(report: RunReport) -> list[Verdict]:
    statements = statement_shape(report)
    expected = statements.per_database if statements is not None else None
    found: list[Verdict] = []
    quick = bool(report.machine.get("quick"))
    scaled = report.machine.get("scale", 1) != 1 or _other_tables(report) is not None
    for run in report.runs:
        found += _run_verdicts(
            run,
            statements_per_database(run, statements),
            expected,
            quick=quick,
            scaled=scaled,
            cpus=report.machine.get("cpus"),
        )
    if statements is None and report.runs:
        found.append(Verdict("statements per database: constant", "not calibrated", None))
    if report.wide_error is not None:
        found.append(Verdict("wide database: the scan finishes", report.wide_error, False))
    if report.wide is not None:
        for target, measured, met in wide_verdicts(report.wide):
            # A quick run's scan is too short for a share of it to mean anything.
            share = "of the scan" in target
            found.append(
                Verdict(
                    f"wide database: {target}",
                    f"{measured} {QUICK}" if quick and share else measured,
                    None if quick and share else met,
                )
            )
    renders = {r.format: r for r in report.renders}
    for name in ("json", "sarif", "html"):
        r = renders.get(name)
        found.append(
            Verdict(
                f"{name.upper()} of {report.findings:,} findings ≤ {MAX_RENDER_SECONDS} s",
                "no renderer" if r is None or r.seconds is None else f"{r.seconds:.2f} s",
                None if r is None or r.seconds is None else r.seconds <= MAX_RENDER_SECONDS,
            )
        )
    b = report.browser
    note = "not measured" if b is None else b.note or "not measured"
    found.append(
        Verdict(
            f"the HTML report opens in Chromium in < {MAX_OPEN_SECONDS:.0f} s",
            note if b is None or b.load is None else f"{b.load:.2f} s",
            None if b is None or b.load is None else b.load < MAX_OPEN_SECONDS,
        )
    )
    filters = [] if b is None else [t for t in (b.search, b.rule_filter, b.severity_filter) if t]
    found.append(
        Verdict(
            f"a filter applies in < {MAX_FILTER_SECONDS:.0f} s in Chromium",
            note if not filters else f"slowest {max(filters):.2f} s",
            None if not filters else max(filters) < MAX_FILTER_SECONDS,
        )
    )
    return found


def verdict_table(report: RunReport) -> Table:
    columns = ("target", "measured", "result")
    table = _table("Targets", columns, text=columns)
    for v in verdicts(report):
        result = {True: "[green]met[/]", False: "[red]MISSED[/]", None: "[yellow]n/a[/]"}[v.met]
        table.add_row(v.target, v.measured, result)
    return table


def print_report(report: RunReport, console: Console) -> None:
    m = report.machine
    # --reports-only measures no scan: no jobs, no repeats, no scan tables.
    scans = "" if m.get("reports_only") else f"--jobs {m['jobs']}, --repeat {m['repeat']}; "
    postgres = f", PostgreSQL {m['postgres']}" if "postgres" in m else ""
    console.print(
        f"\nmachine: {m['cpus']} CPUs, Python {m['python']}{postgres}, "
        f"load {m['load_at_start']} at start, "
        f"{m.get('load_at_end', 'n/a')} at end; {scans}"
        f"seed {m['seed']}; bytecode {m.get('bytecode', 'n/a')}"
    )
    if not m.get("reports_only"):
        _print_scans(report, console)
    if report.wide is not None:
        console.print(wide_lines(report.wide))
    if report.render_error:
        console.print(f"Rendering failed: {report.render_error}")
    else:
        console.print(render_table(report))
    browser = browser_table(report)
    if browser is not None:
        console.print(browser)
    elif report.browser is not None:
        console.print(f"HTML report in Chromium: {report.browser.note}")
    console.print(verdict_table(report))


def _print_scans(report: RunReport, console: Console) -> None:
    """The shapes, the statement count, the notes and the scan tables."""
    names = {run.shape: run.description for run in report.runs}
    for name, description in names.items():
        console.print(f"  {name}: {description}")
    scale = report.machine.get("scale", 1)
    if scale != 1:
        console.print(
            f"  (--scale {scale:g}: each shape with {scale:g} times the apps, databases "
            f"and roles described, at {report.machine.get('size', '?')})"
        )
    tables = _other_tables(report)
    if tables is not None:
        console.print(f"  (--tables {tables}: each app database with {tables} tables)")
    console.print(f"  path to each shape's server: {report.machine.get('network', LOOPBACK)}")
    if report.machine.get("long_names"):
        named = Plan(long_names=True)
        console.print(
            "  (--long-names: apps, databases and roles named near 63 bytes, quoted, as "
            f"{named.database(7).name!r} and {named.stray_name(42)!r})"
        )
    console.print(
        "The scan writes the results JSON and prints its terminal summary (stdout to a "
        "file); it keeps the default session sampling (4 samples over 2 s, beside the "
        "per-database reads). With SCRAM the floor derives the login keys once, as the "
        "scan does (libpq 18); with trust no login costs anything. The catalog floor is "
        "the same loop making pgwarden's own per-database reads (its session settings, its "
        "one round trip of catalog statements), rows fetched and not parsed: what any "
        "scanner reading these catalogs pays; x catalog floor is pgwarden's own cost on "
        "top (informative: the targets are against the floor). Least x floor by CPU is the "
        "catalog floor's CPU, client and server, spread over every CPU with none idle, "
        "over the floor: with the server on this machine's CPUs, no scanner making these "
        "reads takes less (informative too)."
    )
    statements = statement_shape(report)
    if statements is not None:
        console.print(
            f"Statements: {statements.server_wide:g} server-wide + {statements.per_database:g} "
            f"per database read (from the calibration scan at "
            f"{report.calibration.size.label if report.calibration else '?'})."
        )
    for note in report.notes:
        console.print(note)
    for table in (shape_table(report), phase_table(report), evaluation_table(report)):
        console.print(table)
