"""What the benchmark prints: the measurements as tables, then each target, met or missed."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from benchmarks.run import (
    MAX_EVAL_RENDER_SHARE,
    MAX_FILTER_SECONDS,
    MAX_FLOOR_RATIO,
    MAX_HTML_SECONDS,
    MAX_PEAK_RSS_MB,
    MAX_SARIF_SECONDS,
    MAX_SLOPE_GROWTH,
    Measurement,
    RunReport,
)


def _table(title: str, columns: Sequence[str], *, text: Sequence[str] = ()) -> Table:
    """A table whose columns are right-aligned figures, except the ``text`` ones."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in text else "right")
    return table


def _s(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _cpu(client: float, server: float | None) -> str:
    """Client and server CPU seconds of one run (the server's where it can be read)."""
    return f"{client:.1f} + {'—' if server is None else f'{server:.1f}'}"


def _share(part: float | None, whole: float) -> str:
    return "—" if part is None or whole <= 0 else f"{part / whole:.0%}"


def scan_table(report: RunReport) -> Table:
    table = _table(
        "pgwarden scan against the floor (wall seconds; best of the repeats)",
        (
            "size",
            "floor",
            "scan",
            "x floor",
            "x floor w/o sampling wait",
            "x floor, median of pairs",
            "CPU s floor: client + server",
            "CPU s scan: client + server",
            "peak RSS MB",
            "RSS after collect/eval/render",
            "findings",
            "exit",
        ),
        text=("size",),
    )
    for m in report.measurements:
        scan = m.scan
        rss = scan.stats.get("peak_rss_mb_after", {})
        exit_text = "timeout" if scan.run.timed_out else str(scan.run.exit_code)
        table.add_row(
            m.size.label,
            _s(m.floor.wall),
            _s(scan.run.wall),
            _s(m.ratio),
            _s(m.ratio_without_sampling),
            _s(m.pair_median),
            _cpu(m.floor.cpu, m.floor.server_cpu),
            _cpu(scan.run.cpu, scan.run.server_cpu),
            f"{scan.run.peak_rss_mb:.0f}",
            " / ".join(
                f"{rss[stage]:.0f}" if stage in rss else "—"
                for stage in ("collect", "evaluate", "render")
            ),
            "—" if scan.stats.get("findings") is None else str(scan.stats["findings"]),
            exit_text,
        )
    return table


def phase_table(report: RunReport) -> Table:
    table = _table(
        "Where the scan's time goes (seconds)",
        (
            "size",
            "startup",
            "connect",
            "server-wide",
            "per-database",
            "sampling wait",
            "evaluation",
            "rendering",
            "python start/exit",
            "eval+render share",
        ),
        text=("size",),
    )
    for m in report.measurements:
        scan = m.scan
        phases = scan.phases
        eval_render = (
            None
            if scan.evaluation is None or scan.rendering is None
            else scan.evaluation + scan.rendering
        )
        table.add_row(
            m.size.label,
            _s(scan.startup),
            _s(phases.get("connect"), 3),
            _s(phases.get("server")),
            _s(phases.get("databases")),
            _s(scan.sampling_wait),
            _s(scan.evaluation) if scan.evaluation is not None else "not reached",
            _s(scan.rendering) if scan.rendering is not None else "not reached",
            _s(scan.interpreter),
            _share(eval_render, scan.run.wall) if scan.complete else "—",
        )
    return table


@dataclass(frozen=True)
class StatementShape:
    """Statements = server-wide + per-database * databases read, across the sizes."""

    per_database: tuple[float, ...]  # from each pair of sizes reading different databases
    server_wide: tuple[float, ...]  # each size's statements minus the per-database ones


def statement_shape(measurements: Sequence[Measurement]) -> StatementShape | None:
    rows = [m for m in measurements if m.scan.statements is not None]
    per_database: list[float] = []
    for a, b in itertools.pairwise(rows):
        delta = b.scan.details - a.scan.details
        if delta and a.scan.statements is not None and b.scan.statements is not None:
            per_database.append((b.scan.statements - a.scan.statements) / delta)
    if not per_database:
        return None
    k = per_database[0]
    server_wide = tuple(
        m.scan.statements - k * m.scan.details for m in rows if m.scan.statements is not None
    )
    return StatementShape(tuple(per_database), server_wide)


def sql_table(report: RunReport) -> Table:
    shape = statement_shape(report.measurements)
    per_db = shape.per_database[0] if shape else None
    table = _table(
        "SQL issued by the scan"
        + (
            f" (per database read: {per_db:g} statements, one round trip)"
            if per_db is not None
            else ""
        ),
        ("size", "databases read", "statements", "server-wide", "connections"),
        text=("size",),
    )
    for m in report.measurements:
        scan = m.scan
        server_wide = (
            "—"
            if scan.statements is None or per_db is None
            else f"{scan.statements - per_db * scan.details:g}"
        )
        table.add_row(
            m.size.label,
            str(scan.details),
            str(scan.statements if scan.statements is not None else "—"),
            server_wide,
            str(scan.connections if scan.connections is not None else "—"),
        )
    return table


@dataclass(frozen=True)
class Slopes:
    """Seconds per added database between consecutive sizes with the same role count."""

    between: tuple[str, ...]
    scan: tuple[float, ...]
    scan_without_sampling: tuple[float, ...]
    floor: tuple[float, ...]


def slopes(report: RunReport) -> Slopes | None:
    fewest_roles = min((m.size.roles for m in report.measurements), default=0)
    series = [m for m in report.measurements if m.size.roles == fewest_roles and m.scan.complete]
    between: list[str] = []
    scan: list[float] = []
    bare: list[float] = []
    floor: list[float] = []
    for a, b in itertools.pairwise(series):
        span = b.size.databases - a.size.databases
        if span <= 0:
            continue
        between.append(f"{a.size.databases:,} → {b.size.databases:,} db")
        scan.append((b.scan.run.wall - a.scan.run.wall) / span)
        bare.append(
            (
                (b.scan.run.wall - (b.scan.sampling_wait or 0.0))
                - (a.scan.run.wall - (a.scan.sampling_wait or 0.0))
            )
            / span
        )
        floor.append((b.floor.wall - a.floor.wall) / span)
    if not between:
        return None
    return Slopes(tuple(between), tuple(scan), tuple(bare), tuple(floor))


def slope_table(found: Slopes) -> Table:
    table = _table(
        "Growth: milliseconds per added database",
        ("between", "scan", "scan w/o sampling wait", "floor"),
        text=("between",),
    )
    columns = (found.scan, found.scan_without_sampling, found.floor)
    for index, between in enumerate(found.between):
        table.add_row(between, *(f"{column[index] * 1000:.1f}" for column in columns))
    return table


def render_table(report: RunReport) -> Table:
    table = _table(
        f"Rendering {report.findings:,} synthetic findings",
        ("format", "seconds", "CPU seconds", "size MB", "note"),
        text=("format", "note"),
    )
    for r in report.renders:
        table.add_row(
            r.format,
            _s(r.seconds),
            _s(r.cpu_seconds),
            "—" if r.size is None else f"{r.size / 1_000_000:.1f}",
            r.note,
        )
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


def verdicts(report: RunReport) -> list[Verdict]:
    found: list[Verdict] = []
    largest = max(report.measurements, key=lambda m: (m.size.databases, m.size.roles), default=None)
    if largest is not None:
        ratio = largest.ratio
        scan = largest.scan
        target = f"scan ≤ {MAX_FLOOR_RATIO}x the floor at {largest.size.label}"
        if ratio is not None:
            measured = f"x{ratio:.2f} (x{_s(largest.ratio_without_sampling)} w/o sampling wait"
            if largest.pair_median is not None:
                pairs = len(largest.pair_ratios)
                measured += f"; median of {pairs} pairs x{largest.pair_median:.2f}"
            measured += ")"
            found.append(Verdict(target, measured, ratio <= MAX_FLOOR_RATIO))
        elif scan.run.timed_out:
            at_least = scan.run.wall / largest.floor.wall
            measured = f"stopped after {scan.run.wall:.0f} s: more than x{at_least:.1f}"
            # Already past the target when stopped: a miss; otherwise unknown.
            found.append(Verdict(target, measured, False if at_least > MAX_FLOOR_RATIO else None))
        else:
            found.append(Verdict(target, f"scan failed (exit {scan.run.exit_code})", None))
        if scan.complete and scan.evaluation is not None and scan.rendering is not None:
            share = (scan.evaluation + scan.rendering) / scan.run.wall
            found.append(
                Verdict(
                    f"evaluation + rendering ≤ {MAX_EVAL_RENDER_SHARE:.0%} at {largest.size.label}",
                    f"{share:.0%} ({scan.evaluation:.1f} s + {scan.rendering:.1f} s)",
                    share <= MAX_EVAL_RENDER_SHARE,
                )
            )
        else:
            found.append(
                Verdict(
                    f"evaluation + rendering ≤ {MAX_EVAL_RENDER_SHARE:.0%} at {largest.size.label}",
                    "evaluation did not finish within the scan timeout",
                    False,
                )
            )
        found.append(
            Verdict(
                f"peak RSS ≤ {MAX_PEAK_RSS_MB} MB at {largest.size.label}",
                f"{scan.run.peak_rss_mb:.0f} MB"
                + ("" if scan.complete else " before the scan was stopped"),
                # A peak only grows: over the limit before the end is a miss too.
                scan.run.peak_rss_mb <= MAX_PEAK_RSS_MB
                if scan.complete or scan.run.peak_rss_mb > MAX_PEAK_RSS_MB
                else None,
            )
        )
    shape = statement_shape(report.measurements)
    if shape is not None:
        per_db = sorted({round(v, 3) for v in shape.per_database})
        server_wide = sorted({round(v, 3) for v in shape.server_wide})
        found.append(
            Verdict(
                "statements: constant per database and server-wide, whatever the roles",
                f"per database {', '.join(f'{v:g}' for v in per_db)}; "
                f"server-wide {', '.join(f'{v:g}' for v in server_wide)}",
                len(per_db) == 1 and len(server_wide) == 1,
            )
        )
    growth = slopes(report)
    if growth is not None and len(growth.scan) >= 2:
        measured = " → ".join(f"{v * 1000:.1f}" for v in growth.scan_without_sampling) + " ms/db"
        first, last = growth.scan_without_sampling[0], growth.scan_without_sampling[-1]
        if first > 0 and last > 0:
            measured += f" (x{last / first:.2f})"
        found.append(
            Verdict(
                f"linear growth (last per-database slope ≤ {MAX_SLOPE_GROWTH}x the first, "
                "sampling wait excluded)",
                measured,
                # A slope at or below zero is noise swamping too small a size step.
                last / first <= MAX_SLOPE_GROWTH if first > 0 and last > 0 else None,
            )
        )
    renders = {r.format: r for r in report.renders}
    for name, limit in (("html", MAX_HTML_SECONDS), ("sarif", MAX_SARIF_SECONDS)):
        r = renders.get(name)
        found.append(
            Verdict(
                f"{name.upper()} of {report.findings:,} findings ≤ {limit:.0f} s",
                "no renderer yet" if r is None or r.seconds is None else f"{r.seconds:.2f} s",
                None if r is None or r.seconds is None else r.seconds <= limit,
            )
        )
    b = report.browser
    filters = [] if b is None else [t for t in (b.search, b.rule_filter, b.severity_filter) if t]
    found.append(
        Verdict(
            f"a filter applies in < {MAX_FILTER_SECONDS:.0f} s in Chromium",
            (b.note if b is not None else "not measured")
            if not filters
            else f"slowest {max(filters):.2f} s",
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
    console.print(
        f"\nmachine: {m['cpus']} CPUs, Python {m['python']}, load {m['load_at_start']} at start, "
        f"{m.get('load_at_end', 'n/a')} at end; --jobs {m['jobs']}; {m['apps']} apps, "
        f"{m['tables_per_database']} tables per database, seed {m['seed']}; "
        f"bytecode {m.get('bytecode', 'n/a')}"
    )
    console.print(
        "The scan runs with the default session sampling (4 samples over 2 s, concurrent with "
        "the per-database reads); 'sampling wait' is the time the scan still waited for it "
        "after the last database, and the ratio without it is shown too."
    )
    if report.measurements:
        derived = sum(m.scan.derived_keys for m in report.measurements)
        console.print(
            f"Logins: at {derived} of {len(report.measurements)} sizes the scan logged in to "
            "each database with SCRAM keys derived once (libpq 18); the floor's loop runs "
            "PBKDF2 on every login, as a bare psycopg client does."
        )
    for table in (scan_table(report), phase_table(report), sql_table(report)):
        console.print(table)
    growth = slopes(report)
    if growth is not None:
        console.print(slope_table(growth))
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
