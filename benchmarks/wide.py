"""``python -m benchmarks.wide``: one wide app database, with one command.

The main benchmark spreads its server over 1,000 databases of a few tables each. This
shape puts the weight in one place: an app database of ``--tables`` tables in
``--schemas`` schemas, every one readable by the app's read-only group (and, by default
privileges, every table made there later), and ``--members`` logins of no app in that
group (so each is handed every table and every schema's default: one PGW-ISO-004 and
one PGW-ISO-006 finding apiece, naming the first and counting the rest), beside two
small apps. It measures ``pgwarden scan --json`` under the probe, as the auditor
(``pg_monitor``), and judges it by the issue's targets that do not need a floor:
peak RSS, evaluation plus rendering against the scan, and the size of the largest
finding ("a few kilobytes").

    python -m benchmarks.wide                      # 100,000 tables, 300 members
    python -m benchmarks.wide --tables 20000 --members 50
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from benchmarks.alone import (
    ScanFigures,
    create_app,
    create_auditor,
    largest_finding_verdict,
    report_verdicts,
    scan_figures,
    write_config,
)
from benchmarks.measure import (
    FAILURES,
    Scan,
    failed,
    measure_scan,
    server_cpu_clock,
)
from benchmarks.options import REPEAT, SCAN_TIMEOUT, whole
from benchmarks.scenario import AUDITOR, DSN_VARIABLE
from benchmarks.targets import MAX_EVAL_RENDER_SHARE, MAX_PEAK_RSS_MB, share_shown
from pgwarden.cli.localpg import throwaway_server

WIDE, SMALL_APPS = "wide", ("narrow_a", "narrow_b")
# Tables, schemas and members: the full size, and --quick's.
FULL = (100_000, 50, 300)
QUICK = (2_000, 5, 20)
# A schema's tables are made in one transaction: a lock each.
SETTINGS = {
    "max_connections": "50",
    "autovacuum": "off",
    "fsync": "off",
    "max_locks_per_transaction": "4096",
}


@dataclass
class WideRun(ScanFigures):
    tables: int
    schemas: int
    members: int
    build_seconds: float
    collect: float | None


def _build(dsn: str, wide_dsn: str, tables: int, schemas: int, members: int) -> str:
    """The server's roles and databases, and the wide database's tables; the auditor's
    password."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        password = create_auditor(conn)
        for app in (WIDE, *SMALL_APPS):
            create_app(conn, app, f"{app}_db")
        conn.execute(
            "; ".join(f"CREATE ROLE member{n:05d} LOGIN IN ROLE {WIDE}_ro" for n in range(members))
        )
    per_schema = max(1, tables // schemas)
    with psycopg.connect(wide_dsn, autocommit=True) as conn:
        conn.execute(f"SET ROLE {WIDE}_owner")
        for schema in range(schemas):
            name = f"s{schema:03d}"
            conn.execute(f"CREATE SCHEMA {name}")
            # A table with a key and a text column: four relations, one of them reported.
            conn.execute(
                f"DO $$ BEGIN FOR i IN 1..{per_schema} LOOP EXECUTE format("
                f"'CREATE TABLE {name}.t%s (id int PRIMARY KEY, body text)', i); "
                "END LOOP; END $$"
            )
            conn.execute(
                f"GRANT USAGE ON SCHEMA {name} TO {WIDE}_ro; "
                f"GRANT SELECT ON ALL TABLES IN SCHEMA {name} TO {WIDE}_ro; "
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {name} GRANT SELECT ON TABLES TO {WIDE}_ro"
            )
    return password


def measure(
    tables: int, schemas: int, members: int, out: Path, timeout: float, repeat: int = 1
) -> WideRun:
    """Build the shape and scan it ``repeat`` times; the quickest scan is kept, as the
    other shapes keep theirs (``measure.measure_pairs``)."""
    out.mkdir(parents=True, exist_ok=True)
    scans: list[tuple[Scan, Path]] = []
    with throwaway_server(SETTINGS) as server:
        started = time.perf_counter()
        password = _build(server.dsn(), server.dsn(dbname=f"{WIDE}_db"), tables, schemas, members)
        built = time.perf_counter() - started
        config = out / "pgwarden.toml"
        write_config(
            config,
            "python -m benchmarks.wide",
            "wide",
            [(app, f"{app}_db") for app in (WIDE, *SMALL_APPS)],
        )
        env = {**os.environ, DSN_VARIABLE: server.dsn(AUDITOR, password)}
        clock = server_cpu_clock(server.data_dir)
        for attempt in range(max(1, repeat)):
            workdir = out / f"scan-{attempt}"
            scans.append((measure_scan(config, env, 4, workdir, timeout, clock), workdir))
            if not scans[-1][0].complete:
                break  # a scan that fails or times out is not repeated
    complete = [(scan, workdir) for scan, workdir in scans if scan.complete]
    if not complete:
        scan = scans[-1][0]
        raise scan.unfinished()
    scan, workdir = min(complete, key=lambda pair: pair[0].run.wall)
    return WideRun(
        tables=tables,
        schemas=schemas,
        members=members,
        build_seconds=built,
        collect=scan.seconds.get("collect"),
        **scan_figures(scan, workdir),
    )


def wide_lines(run: WideRun) -> str:
    """What was built and what the scan took, in two lines."""
    return (
        f"wide database: {run.tables:,} tables in {run.schemas} schemas, {run.members} "
        f"members of its group (built in {run.build_seconds:.0f} s)\n"
        f"  scan {run.wall:.2f} s: collect {run.collect or 0:.2f} s, evaluate "
        f"{run.evaluate or 0:.2f} s, render {run.render or 0:.2f} s; {run.findings or 0:,} "
        f"findings, results JSON {run.json_mb or 0:.1f} MB, peak RSS {run.peak_rss_mb:.0f} MB"
    )


def wide_verdicts(run: WideRun) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target this shape is judged by."""
    share = ((run.evaluate or 0.0) + (run.render or 0.0)) / run.wall
    return [
        (
            f"peak RSS ≤ {MAX_PEAK_RSS_MB} MB",
            f"{run.peak_rss_mb:.0f} MB",
            run.peak_rss_mb <= MAX_PEAK_RSS_MB,
        ),
        (
            f"evaluation + rendering ≤ {MAX_EVAL_RENDER_SHARE:.0%} of the scan",
            f"{share_shown(share)} ({run.evaluate or 0:.2f} s + {run.render or 0:.2f} s "
            f"of {run.wall:.2f} s)",
            share <= MAX_EVAL_RENDER_SHARE,
        ),
        largest_finding_verdict(run),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.wide", description="pgwarden on one wide app database"
    )
    tables, schemas, members = FULL
    parser.add_argument(
        "--tables", type=whole(1, 1_000_000), default=tables, help=f"default {tables:,}"
    )
    parser.add_argument(
        "--schemas", type=whole(1, 10_000), default=schemas, help=f"default {schemas}"
    )
    parser.add_argument(
        "--members",
        type=whole(1, 100_000),
        default=members,
        help=f"logins of no app in the group (default {members})",
    )
    parser.add_argument(
        "--repeat", type=REPEAT, default=3, help="scans, the quickest kept (1 to 20, default 3)"
    )
    parser.add_argument(
        "--scan-timeout", type=SCAN_TIMEOUT, default=600, help="seconds (1 to 3,600, default 600)"
    )
    parser.add_argument("--out", type=Path, help="where the config, results and wide.json go")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.gettempdir()) / "pgwarden-benchmark-wide"
    try:
        run = measure(args.tables, args.schemas, args.members, out, args.scan_timeout, args.repeat)
    except FAILURES as exc:
        return failed(parser.prog, exc)
    print(wide_lines(run))
    return report_verdicts(run, wide_verdicts(run), out / "wide.json")


if __name__ == "__main__":
    sys.exit(main())
