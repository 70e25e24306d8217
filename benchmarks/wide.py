"""``python -m benchmarks.wide``: one wide app database, with one command.

The main benchmark spreads its server over 1,000 databases of a few tables each. This
shape puts the weight in one place: an app database of ``--tables`` tables in
``--schemas`` schemas, every one readable by the app's read-only group, and
``--members`` logins of no app in that group (so each is handed every table: one
PGW-ISO-004 finding apiece, naming the first tables and counting the rest), beside two
small apps. It measures ``pgwarden scan --json`` under the probe, as the auditor
(``pg_monitor``), and judges it by the issue's targets that do not need a floor:
peak RSS, evaluation plus rendering against the scan, and the size of the largest
finding ("a few kilobytes").

    python -m benchmarks.wide                      # 100,000 tables, 300 members
    python -m benchmarks.wide --tables 20000 --members 50
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.measure import Scan, measure_scan, server_cpu_clock
from benchmarks.scenario import AUDITOR, DSN_VARIABLE
from benchmarks.targets import MAX_EVAL_RENDER_SHARE, MAX_FINDING_BYTES, MAX_PEAK_RSS_MB
from pgwarden.cli.localpg import throwaway_server
from pgwarden.model.identifiers import quote_literal

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
class ScanFigures:
    """What a shape measured alone reports of its scan (``scan_figures``)."""

    wall: float
    evaluate: float | None
    render: float | None
    peak_rss_mb: float
    findings: int | None
    json_mb: float | None
    largest_finding_bytes: int | None
    exit_code: int | None


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
    password = secrets.token_urlsafe(18)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE ROLE {AUDITOR} LOGIN PASSWORD {quote_literal(password)} IN ROLE pg_monitor"
        )
        for app in (WIDE, *SMALL_APPS):
            conn.execute(
                f"CREATE ROLE {app}_owner; CREATE ROLE {app}_ro; "
                f"CREATE ROLE {app}_svc LOGIN IN ROLE {app}_ro"
            )
            conn.execute(f"CREATE DATABASE {app}_db OWNER {app}_owner")
            conn.execute(
                f"REVOKE ALL ON DATABASE {app}_db FROM PUBLIC; "
                f"GRANT CONNECT ON DATABASE {app}_db TO {app}_ro, {AUDITOR}"
            )
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
                f"GRANT SELECT ON ALL TABLES IN SCHEMA {name} TO {WIDE}_ro"
            )
    return password


def _config(path: Path) -> None:
    apps = "".join(
        f'\n[[server.app]]\nname = "{app}"\ndatabases = ["{app}_db"]\n'
        f'roles = ["{app}_owner", "{app}_ro", "{app}_svc"]\n'
        for app in (WIDE, *SMALL_APPS)
    )
    path.write_text(
        # One sample of the sessions and no window: on a server of three databases the
        # sampler's window would be most of the scan.
        '# Written by python -m benchmarks.wide.\n[policy]\nfail_on = "high"\n'
        "session_window_seconds = 0\nsession_samples = 1\n\n"
        f'[[server]]\nname = "wide"\ndsn = "env:{DSN_VARIABLE}"\nadmin_role = "postgres"\n'
        f'platform_roles = ["{AUDITOR}"]\n{apps}',
        encoding="utf-8",
    )


def largest_finding(results: Path) -> int | None:
    if not results.exists():
        return None
    findings = json.loads(results.read_text(encoding="utf-8"))["findings"]
    return max((len(json.dumps(f, separators=(",", ":"))) for f in findings), default=0)


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
        _config(config)
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
        raise SystemExit(f"the scan did not finish: {scan.run.stderr.strip()[-500:]}")
    scan, workdir = min(complete, key=lambda pair: pair[0].run.wall)
    return WideRun(
        tables=tables,
        schemas=schemas,
        members=members,
        build_seconds=built,
        collect=scan.seconds.get("collect"),
        **scan_figures(scan, workdir),
    )


def scan_figures(scan: Scan, workdir: Path) -> dict[str, Any]:
    """``ScanFigures``' fields of ``scan`` (run in ``workdir``)."""
    return {
        "wall": scan.run.wall,
        "evaluate": scan.evaluation,
        "render": scan.rendering,
        "peak_rss_mb": scan.run.peak_rss_mb,
        "findings": scan.findings,
        "json_mb": None if scan.json_bytes is None else scan.json_bytes / 1e6,
        "largest_finding_bytes": largest_finding(workdir / "results.json"),
        "exit_code": scan.run.exit_code,
    }


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
    largest = run.largest_finding_bytes or 0
    return [
        (
            f"peak RSS ≤ {MAX_PEAK_RSS_MB} MB",
            f"{run.peak_rss_mb:.0f} MB",
            run.peak_rss_mb <= MAX_PEAK_RSS_MB,
        ),
        (
            f"evaluation + rendering ≤ {MAX_EVAL_RENDER_SHARE:.0%} of the scan",
            f"{share:.0%} ({run.evaluate or 0:.2f} s + {run.render or 0:.2f} s "
            f"of {run.wall:.2f} s)",
            share <= MAX_EVAL_RENDER_SHARE,
        ),
        (
            f"largest finding ≤ {MAX_FINDING_BYTES} bytes",
            f"{largest} bytes",
            largest <= MAX_FINDING_BYTES,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.wide", description="pgwarden on one wide app database"
    )
    tables, schemas, members = FULL
    parser.add_argument("--tables", type=int, default=tables, help=f"default {tables:,}")
    parser.add_argument("--schemas", type=int, default=schemas, help=f"default {schemas}")
    parser.add_argument(
        "--members",
        type=int,
        default=members,
        help=f"logins of no app in the group (default {members})",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="scans, the quickest kept (default 3)"
    )
    parser.add_argument("--scan-timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, help="where the config, results and wide.json go")
    args = parser.parse_args(argv)
    if min(args.tables, args.schemas, args.members, args.repeat) < 1:
        parser.error("--tables, --schemas, --members and --repeat must be at least 1")
    out = args.out or Path(tempfile.gettempdir()) / "pgwarden-benchmark-wide"
    run = measure(args.tables, args.schemas, args.members, out, args.scan_timeout, args.repeat)
    print(wide_lines(run))
    results = wide_verdicts(run)
    for target, measured, met in results:
        print(f"  {'met   ' if met else 'MISSED'}  {target}: {measured}")
    (out / "wide.json").write_text(
        json.dumps({"run": asdict(run), "targets": results}, indent=1), encoding="utf-8"
    )
    print(f"Details: {out / 'wide.json'}")
    return 0 if all(met for _target, _measured, met in results) else 1


if __name__ == "__main__":
    sys.exit(main())
