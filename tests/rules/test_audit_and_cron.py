"""PGW-AUD-001 … 003 and PGW-CHAN-004 on a real server that loads pgaudit and pg_cron.

Both must be in ``shared_preload_libraries``, so this module starts its own throwaway
server with them (the Debian packages ``postgresql-NN-cron`` and
``postgresql-NN-pgaudit``, which ``scripts/setup.sh --test`` installs); without them
the module is skipped. pg_cron keeps its jobs in ``cron_home``, not in the database
the scanner's DSN names, so the collector opens a session there.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgwarden.cli.localpg import LocalServer, find_server_binaries, throwaway_server
from pgwarden.collect.postgres import queries as q
from pgwarden.model.results import Results
from pgwarden.model.snapshot import PostgresSnapshot
from pgwarden.rules.audit_logging import SUGGESTED_PREFIX
from tests.rules.scenario import ADMIN, AUDITOR, App, Scenario, build_scenario, finding, keys

LIBRARIES = ("pg_cron", "pgaudit")
AUDIT_RULES = ("PGW-AUD-001", "PGW-AUD-002", "PGW-AUD-003")
CRON = "PGW-CHAN-004"
APPS = (App("alpha", ("alpha_db",), ("alpha_app",)), App("beta", ("beta_db",), ("beta_app",)))
NEVER = "0 0 1 1 *"  # once a year: no job runs while the tests do


def _libraries_installed(bindir: Path) -> bool:
    try:
        libdir = subprocess.run(
            [str(bindir / "pg_config"), "--pkglibdir"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    return all((Path(libdir) / f"{name}.so").exists() for name in LIBRARIES)


@pytest.fixture(scope="module")
def preload_server() -> Iterator[LocalServer]:
    bindir = find_server_binaries()
    if bindir is None or not _libraries_installed(bindir):
        pytest.skip("pg_cron and pgaudit are not installed (scripts/setup.sh --test installs them)")
    settings = {
        "shared_preload_libraries": "'pg_cron,pgaudit'",
        "cron.database_name": "'cron_home'",
        "max_connections": "100",
    }
    with throwaway_server(settings) as server:
        yield server


def _job(name: str, database: str, user: str) -> str:
    return (
        f"SELECT cron.schedule_in_database('{name}', '{NEVER}', 'SELECT 1', '{database}', '{user}')"
    )


@pytest.fixture(scope="module")
def scenario(preload_server: LocalServer) -> Scenario:
    return build_scenario(
        preload_server,
        APPS,
        # pg_cron schedules a job only for a role that may connect to its database.
        public_connect=("beta_db",),
        server_sql=[
            "CREATE ROLE stray LOGIN",
            "CREATE DATABASE cron_home",
            "GRANT CONNECT ON DATABASE alpha_db TO beta_app",
        ],
        database_sql={
            "cron_home": [
                "CREATE EXTENSION pg_cron",
                _job("cross", "beta_db", "alpha_app"),
                _job("stray", "beta_db", "stray"),
                # Look-alikes: the app's own database, the admin, a system database,
                # and a job pg_cron runs on another host.
                _job("own", "alpha_db", "alpha_app"),
                _job("maintenance", "alpha_db", ADMIN),
                _job("system", "postgres", "alpha_app"),
                _job("remote", "alpha_db", "beta_app"),
                "UPDATE cron.job SET nodename = '203.0.113.7' WHERE jobname = 'remote'",
            ]
        },
    )


def _settings(scenario: Scenario, **values: str) -> None:
    with scenario.superuser() as conn:
        conn.execute("ALTER SYSTEM RESET ALL")
        for name, value in values.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        conn.execute("SELECT pg_reload_conf()")


def _scan(scenario: Scenario) -> tuple[PostgresSnapshot, Results]:
    snapshot, results = scenario.scan()
    pg = snapshot.servers[0].postgres
    assert pg is not None
    return pg, results


def test_cron_jobs_need_the_schema_then_bypassrls(scenario: Scenario) -> None:
    pg, results = _scan(scenario)
    gap = pg.gap("cron")
    assert gap is not None and "permission denied for schema cron" in gap.reason
    assert gap.fix == f"GRANT USAGE ON SCHEMA cron TO {AUDITOR} (in database cron_home)"
    (error,) = [f for f in results.findings if f.rule_id == CRON]
    assert error.status == "error" and "permission denied for schema cron" in error.message

    scenario.execute("cron_home", [f"GRANT USAGE ON SCHEMA cron TO {AUDITOR}"])
    pg, results = _scan(scenario)
    assert pg.pg_cron is not None and pg.pg_cron.all_visible is False
    assert keys(results, status="error", rules=(CRON,)) == {(CRON, "database/cron_home", None)}
    hidden = finding(results, CRON, "database/cron_home", None)
    assert hidden.remediation is not None
    assert hidden.remediation.startswith(f"ALTER ROLE {AUDITOR} BYPASSRLS;")


def test_cron_jobs_across_apps(scenario: Scenario) -> None:
    scenario.execute("postgres", [f"ALTER ROLE {AUDITOR} BYPASSRLS"])
    scenario.execute("cron_home", [f"GRANT USAGE ON SCHEMA cron TO {AUDITOR}"])
    pg, results = _scan(scenario)
    assert pg.pg_cron is not None and pg.pg_cron.all_visible
    ids = {job.name: job.job_id for job in pg.pg_cron.jobs}
    assert set(ids) == {"cross", "stray", "own", "maintenance", "system", "remote"}
    assert keys(results, rules=(CRON,)) == {
        (CRON, f"cron-job/{ids['cross']}", "role/alpha_app"),
        (CRON, f"cron-job/{ids['stray']}", "role/stray"),
    }
    assert not keys(results, status="error", rules=(CRON,))
    cross = finding(results, CRON, f"cron-job/{ids['cross']}", "role/alpha_app")
    assert cross.app == "beta" and cross.evidence["user_app"] == "alpha"
    assert "command" not in cross.evidence["job"]  # never read: it may hold a secret
    # The server-wide reads grow by one statement when pg_cron is loaded; its jobs are
    # read in their own database, in one more session.
    assert pg.stats is not None
    detailed = len(pg.database_details)
    samples = pg.session_samples
    assert pg.stats.statements == 7 + 1 + samples + len(q.DATABASE_OBJECTS) * detailed
    # Unscheduling as told ends the finding.
    scenario.execute("cron_home", [str(cross.remediation)])
    _, again = _scan(scenario)
    assert (CRON, f"cron-job/{ids['cross']}", "role/alpha_app") not in keys(again, rules=(CRON,))


@pytest.mark.parametrize(
    ("settings", "policy", "expected"),
    [
        (
            {},
            "",
            {
                ("PGW-AUD-001", "setting/pgaudit.log", None),
                ("PGW-AUD-002", "setting/log_line_prefix", None),
                ("PGW-AUD-003", "setting/log_statement", None),
            },
        ),
        (
            {"pgaudit.log": "ddl", "log_line_prefix": SUGGESTED_PREFIX},
            "",
            {("PGW-AUD-001", "setting/pgaudit.log", None)},
        ),
        ({"pgaudit.log": "all, -misc", "log_line_prefix": "%t [%c] %u@%d %a %r "}, "", set()),
        (
            {"pgaudit.log": "all, -read", "log_destination": "csvlog"},
            'pgaudit_log = ["read", "role"]',
            {("PGW-AUD-001", "setting/pgaudit.log", None)},
        ),
        ({"log_statement": "ddl", "log_destination": "csvlog"}, "pgaudit_log = []", set()),
    ],
)
def test_audit_logging(
    scenario: Scenario,
    settings: dict[str, str],
    policy: str,
    expected: set[tuple[str, str, None]],
) -> None:
    _settings(scenario, **settings)
    variant = Scenario(
        scenario.server,
        scenario.apps,
        scenario.passwords,
        scenario.platform_roles,
        policy=f"session_samples = 1\nsession_window_seconds = 0\n{policy}",
    )
    try:
        _, results = variant.scan()
    finally:
        _settings(scenario)
    assert keys(results, rules=AUDIT_RULES) == expected
    assert not keys(results, status="error", rules=AUDIT_RULES)
    if ("PGW-AUD-001", "setting/pgaudit.log", None) in expected:
        found = finding(results, "PGW-AUD-001", "setting/pgaudit.log", None)
        assert found.evidence["missing"]
        assert str(found.remediation).startswith("ALTER SYSTEM SET pgaudit.log = ")
