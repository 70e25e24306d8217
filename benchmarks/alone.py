"""What the shapes measured alone (``benchmarks.wide``, ``benchmarks.chain``) share: apps
of three roles each, the map that names them, and the figures of one scan.

Each app ``A`` has an owner ``A_owner`` (owning its database), a read-only group
``A_ro`` holding CONNECT, and a login ``A_svc`` in that group; PUBLIC may not connect.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.measure import Scan
from benchmarks.scenario import AUDITOR, DSN_VARIABLE
from benchmarks.targets import MAX_FINDING_BYTES
from pgwarden.model.identifiers import quote_literal


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


def largest_finding(results: Path) -> int | None:
    """The size in bytes of the largest finding in a results file, as one line of JSON."""
    if not results.exists():
        return None
    findings = json.loads(results.read_text(encoding="utf-8"))["findings"]
    return max((len(json.dumps(f, separators=(",", ":"))) for f in findings), default=0)


def largest_finding_verdict(figures: ScanFigures) -> tuple[str, str, bool]:
    """(target, measured, met) for the size of the largest finding ("a few kilobytes")."""
    largest = figures.largest_finding_bytes or 0
    return (
        f"largest finding ≤ {MAX_FINDING_BYTES} bytes",
        f"{largest} bytes",
        largest <= MAX_FINDING_BYTES,
    )


def report_verdicts(
    figures: ScanFigures, verdicts: Sequence[tuple[str, str, bool]], details: Path
) -> int:
    """Print each (target, measured, met), write the figures and verdicts to
    ``details``; the exit code: 0 when every target is met, else 1."""
    for target, measured, met in verdicts:
        print(f"  {'met   ' if met else 'MISSED'}  {target}: {measured}")
    details.write_text(
        json.dumps({"run": asdict(figures), "targets": list(verdicts)}, indent=1),
        encoding="utf-8",
    )
    print(f"Details: {details}")
    return 0 if all(met for _target, _measured, met in verdicts) else 1


def create_auditor(conn: psycopg.Connection[Any]) -> str:
    """The auditor login (``pg_monitor``); its password."""
    password = secrets.token_urlsafe(18)
    conn.execute(
        f"CREATE ROLE {AUDITOR} LOGIN PASSWORD {quote_literal(password)} IN ROLE pg_monitor"
    )
    return password


def create_app(conn: psycopg.Connection[Any], app: str, database: str) -> None:
    """``app``'s three roles and its database, which its group and the auditor may enter."""
    conn.execute(
        f"CREATE ROLE {app}_owner; CREATE ROLE {app}_ro; "
        f"CREATE ROLE {app}_svc LOGIN IN ROLE {app}_ro"
    )
    conn.execute(f"CREATE DATABASE {database} OWNER {app}_owner")
    conn.execute(
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC; "
        f"GRANT CONNECT ON DATABASE {database} TO {app}_ro, {AUDITOR}"
    )


def write_config(path: Path, command: str, server: str, apps: Sequence[tuple[str, str]]) -> None:
    """The tenancy map of ``server`` and its ``apps`` (name, database), written by
    ``command``."""
    listed = "".join(
        f'\n[[server.app]]\nname = "{app}"\ndatabases = ["{database}"]\n'
        f'roles = ["{app}_owner", "{app}_ro", "{app}_svc"]\n'
        for app, database in apps
    )
    path.write_text(
        # One sample of the sessions and no window: on a server this small the
        # sampler's window would be much of the scan.
        f'# Written by {command}.\n[policy]\nfail_on = "high"\n'
        "session_window_seconds = 0\nsession_samples = 1\n\n"
        f'[[server]]\nname = "{server}"\ndsn = "env:{DSN_VARIABLE}"\nadmin_role = "postgres"\n'
        f'platform_roles = ["{AUDITOR}"]\n{listed}',
        encoding="utf-8",
    )
