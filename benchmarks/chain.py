"""``python -m benchmarks.chain``: apps whose groups are chained, with one command.

The shapes of the main benchmark keep membership paths short. Here each app's
read-only group is a member of the next app's (``app000_ro`` in ``app001_ro``, and so
on): every app's roles reach every later app's database and tables, along a path as
long as the apps between them. Every such role and database is a finding of
PGW-ISO-002, -004 and ROLE-002, so the findings grow with the square of the apps; what
this measures is that each costs about the same however long its path (the work of
finding a path once grew with its length: the square of the apps times the apps).
It scans as the auditor (``pg_monitor``) with ``pgwarden scan --json`` under the probe
and prints the cost per finding; it is judged by the size of the largest finding
("a few kilobytes").

    python -m benchmarks.chain                 # 200 apps: about 120,000 findings
    python -m benchmarks.chain --apps 100
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
    failed,
    measure_scan,
    server_cpu_clock,
)
from benchmarks.options import SCAN_TIMEOUT, whole
from benchmarks.scenario import AUDITOR, DSN_VARIABLE
from pgwarden.cli.localpg import throwaway_server

APPS, TABLES = 200, 3
SETTINGS = {"max_connections": "50", "autovacuum": "off", "fsync": "off"}


@dataclass
class ChainRun(ScanFigures):
    apps: int
    build_seconds: float


def _build(server_dsn: str, app_dsn: list[str], tables: int) -> str:
    """The apps' roles, databases and tables, the chain of their groups; the auditor's
    password."""
    apps = len(app_dsn)
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        password = create_auditor(conn)
        for app in range(apps):
            create_app(conn, f"app{app:03d}", f"app{app:03d}")
        conn.execute(
            "; ".join(f"GRANT app{app + 1:03d}_ro TO app{app:03d}_ro" for app in range(apps - 1))
        )
    for app, dsn in enumerate(app_dsn):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"SET ROLE app{app:03d}_owner")
            conn.execute("; ".join(f"CREATE TABLE t{n} (id int)" for n in range(tables)))
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO app{app:03d}_ro")
    return password


def measure(apps: int, tables: int, out: Path, timeout: float) -> ChainRun:
    """Build the chain of ``apps`` apps and scan it once."""
    out.mkdir(parents=True, exist_ok=True)
    with throwaway_server(SETTINGS) as server:
        started = time.perf_counter()
        app_dsn = [server.dsn(dbname=f"app{app:03d}") for app in range(apps)]
        password = _build(server.dsn(), app_dsn, tables)
        built = time.perf_counter() - started
        config = out / "pgwarden.toml"
        names = [f"app{app:03d}" for app in range(apps)]
        write_config(config, "python -m benchmarks.chain", "chain", [(n, n) for n in names])
        env = {**os.environ, DSN_VARIABLE: server.dsn(AUDITOR, password)}
        workdir = out / "scan"
        scan = measure_scan(config, env, 4, workdir, timeout, server_cpu_clock(server.data_dir))
    if not scan.complete:
        raise scan.unfinished()
    return ChainRun(apps=apps, build_seconds=built, **scan_figures(scan, workdir))


def chain_lines(run: ChainRun) -> str:
    """What was built and what the scan took, per finding too."""
    findings = run.findings or 0
    per = max(findings, 1)
    return (
        f"chain of {run.apps} apps' groups (built in {run.build_seconds:.0f} s)\n"
        f"  scan {run.wall:.2f} s: evaluate {run.evaluate or 0:.2f} s, render "
        f"{run.render or 0:.2f} s; {findings:,} findings, results JSON "
        f"{run.json_mb or 0:.1f} MB, peak RSS {run.peak_rss_mb:.0f} MB\n"
        f"  per finding: evaluate {1e6 * (run.evaluate or 0) / per:.0f} µs, "
        f"JSON {1e6 * (run.json_mb or 0) / per:.0f} bytes"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chain", description="pgwarden on apps whose groups are chained"
    )
    parser.add_argument(
        "--apps", type=whole(2, 10_000), default=APPS, help=f"2 or more (default {APPS})"
    )
    parser.add_argument(
        "--tables", type=whole(1, 10_000), default=TABLES, help=f"per app (default {TABLES})"
    )
    parser.add_argument(
        "--scan-timeout", type=SCAN_TIMEOUT, default=600, help="seconds (1 to 3,600, default 600)"
    )
    parser.add_argument("--out", type=Path, help="where the config, results and chain.json go")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.gettempdir()) / "pgwarden-benchmark-chain"
    try:
        run = measure(args.apps, args.tables, out, args.scan_timeout)
    except FAILURES as exc:
        return failed(parser.prog, exc)
    print(chain_lines(run))
    return report_verdicts(run, [largest_finding_verdict(run)], out / "chain.json")


if __name__ == "__main__":
    sys.exit(main())
