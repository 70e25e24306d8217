"""A workspace for gate and audit tests: app databases on the real test server, a
config for them, and ``pgwarden`` run in-process the way a pipeline runs it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from pgwarden.cli.main import cli
from pgwarden.engine import summarize
from pgwarden.model.results import (
    Coverage,
    Finding,
    Results,
    ScanInfo,
    ServerSummary,
    Tool,
    fingerprint,
)

DSN_VARIABLE = "PGWARDEN_GATE_DSN"
SERVER = "shared-db"


def config_text(
    apps: dict[str, str],
    *,
    servers: dict[str, str] | None = None,
    fail_on: str = "high",
) -> str:
    """A fast config: one app per database, each ``[[server]]`` name → dsn source."""
    lines = [
        "[policy]",
        f'fail_on = "{fail_on}"',
        "session_samples = 1",
        "session_window_seconds = 0",
        "",
    ]
    for name, dsn in (servers or {SERVER: f"env:{DSN_VARIABLE}"}).items():
        lines += ["[[server]]", f'name = "{name}"', f'dsn = "{dsn}"', ""]
        for app, database in apps.items():
            lines += ["[[server.app]]", f'name = "{app}"', f'databases = ["{database}"]', ""]
    return "\n".join(lines)


@dataclass
class Workspace:
    """A directory with a config, and the test server the config points at."""

    path: Path
    server: LocalServer
    env: dict[str, str] = field(default_factory=dict)

    def write(self, name: str, text: str) -> Path:
        target = self.path / name
        target.write_text(text, encoding="utf-8")
        return target

    def pgwarden(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run ``pgwarden ARGS`` in the workspace (stdout and stderr kept apart)."""
        runner = CliRunner()
        with contextlib.chdir(self.path):
            return runner.invoke(cli, list(args), env={**self.env, **(env or {})})

    def json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text(encoding="utf-8"))

    def sql(self, *statements: str, dbname: str = "postgres") -> None:
        with psycopg.connect(self.server.dsn(dbname=dbname), autocommit=True) as conn:
            for statement in statements:
                conn.execute(sql.SQL(statement))

    def create_database(self, name: str, *, public_connect: bool) -> None:
        self.sql(f'CREATE DATABASE "{name}"')
        if not public_connect:
            self.sql(f'REVOKE CONNECT, TEMPORARY ON DATABASE "{name}" FROM PUBLIC')


@pytest.fixture
def workspace(clean_server: LocalServer, tmp_path: Path) -> Workspace:
    """An empty server and a working directory whose config reaches it as the superuser."""
    return Workspace(tmp_path, clean_server, {DSN_VARIABLE: clean_server.dsn()})


def findings_by_resource(results: dict[str, Any], rule: str) -> dict[str, dict[str, Any]]:
    """The findings of one rule, keyed by resource."""
    return {f["resource"]: f for f in results["findings"] if f["rule_id"] == rule}


def public_connect_run(
    servers: Sequence[str],
    open_databases: Mapping[str, Sequence[str]],
    started: datetime,
    *,
    shard: str | None = None,
) -> Results:
    """The results of one run: each server failing PGW-ISO-001 on its open databases."""
    rule = "PGW-ISO-001"
    findings = [
        Finding(
            rule_id=rule,
            severity="high",
            status="fail",
            server=server,
            resource=f"database/{database}",
            principal="PUBLIC",
            message="PUBLIC may connect",
            fingerprint=fingerprint(rule, server, f"database/{database}", "PUBLIC"),
        )
        for server in servers
        for database in open_databases.get(server, ())
    ]
    coverage = [
        Coverage(
            rule_id=rule,
            server=server,
            outcome="failed" if open_databases.get(server) else "passed",
        )
        for server in servers
    ]
    return Results(
        tool=Tool(version="test"),
        scan=ScanInfo(
            started_at=started,
            finished_at=started + timedelta(seconds=1),
            complete=True,
            shard=shard,
        ),
        servers=tuple(ServerSummary(name=server) for server in servers),
        findings=tuple(findings),
        summary=summarize(findings, coverage),
        coverage=tuple(coverage),
    )
