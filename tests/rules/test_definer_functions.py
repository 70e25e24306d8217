"""PGW-FUNC-001 … 003 against a real server: SECURITY DEFINER routines, and look-alikes.

``alpha_db`` keeps PostgreSQL's default PUBLIC CONNECT, so every principal can call
what PUBLIC may EXECUTE there; ``beta_db`` admits only beta's roles and the auditor.
Owners: the admin (CREATEDB CREATEROLE, in ``azure_pg_admin``), the bootstrap
superuser, alpha's and beta's roles.
"""

from __future__ import annotations

import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from tests.rules.scenario import (
    ADMIN,
    App,
    Scenario,
    apply_remediation,
    build_scenario,
    finding,
    keys,
)

RULES = ("PGW-FUNC-001", "PGW-FUNC-002", "PGW-FUNC-003")
APPS = (
    App("alpha", ("alpha_db",), ("alpha_app", "alpha_reader")),
    App("beta", ("beta_db",), ("beta_app",)),
    App("gamma", ("gamma_db",), ("gamma_app",)),
)
BODY = "RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'"


def _as(role: str, *statements: str) -> list[str]:
    return [f"SET ROLE {role}", *statements, "RESET ROLE"]


ALPHA_SQL = [
    "CREATE SCHEMA scratch",
    "GRANT USAGE, CREATE ON SCHEMA scratch TO PUBLIC",
    "CREATE SCHEMA beta_corner AUTHORIZATION beta_app",
    "GRANT CREATE ON SCHEMA public TO alpha_app",
    *_as(
        ADMIN,
        # FUNC-001: the admin's, the caller's search_path, PUBLIC EXECUTE.
        f"CREATE FUNCTION public.admin_purge() {BODY}",
        # FUNC-001: pinned, but through a schema anyone may create in.
        f"CREATE FUNCTION public.admin_scratch() {BODY} SET search_path = scratch",
        # FUNC-001: in a schema anyone may create in (pinning it there is no fix).
        f"CREATE FUNCTION scratch.admin_home() {BODY}",
        # FUNC-003: the admin's, pinned, PUBLIC EXECUTE (beta's and gamma's roles call it).
        f"CREATE FUNCTION public.admin_stats() {BODY} SET search_path = public, pg_temp",
        # Look-alike: the admin's and unpinned, but nobody else may EXECUTE it.
        f"CREATE FUNCTION public.admin_private() {BODY}",
        "REVOKE EXECUTE ON FUNCTION public.admin_private() FROM PUBLIC",
        # Look-alike: a trigger function (only the server calls those).
        "CREATE FUNCTION public.admin_trigger() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER AS 'BEGIN RETURN NEW; END'",
    ),
    *_as(
        "alpha_app",
        # FUNC-002: alpha's, unpinned, granted to beta's role.
        f"CREATE FUNCTION public.alpha_export(n integer) {BODY}",
        "REVOKE EXECUTE ON FUNCTION public.alpha_export(integer) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION public.alpha_export(integer) TO beta_app",
        # Look-alike: alpha's, pinned, for alpha's own reader only.
        f"CREATE FUNCTION public.alpha_report() {BODY} SET search_path = public, pg_temp",
        "REVOKE EXECUTE ON FUNCTION public.alpha_report() FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION public.alpha_report() TO alpha_reader",
    ),
    # FUNC-002: beta's role owns a routine in alpha's database that everyone may call.
    *_as("beta_app", f"CREATE FUNCTION beta_corner.beta_hook() {BODY}"),
]
BETA_SQL = [
    # FUNC-001: the superuser's; only beta's role may connect, and it becomes superuser.
    f"CREATE FUNCTION public.superuser_task() {BODY}",
    "GRANT CREATE ON SCHEMA public TO beta_app",
    # Look-alike: beta's own, unpinned, PUBLIC EXECUTE, but only beta's roles connect.
    *_as("beta_app", f"CREATE FUNCTION public.beta_own() {BODY}"),
]


def _resource(database: str, name: str, arguments: str = "") -> str:
    return f"function/{database}.{name}({arguments})"


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer) -> tuple[Scenario, Snapshot, Results]:
    scenario = build_scenario(
        pg_server,
        APPS,
        public_connect=("alpha_db",),
        database_sql={"alpha_db": ALPHA_SQL, "beta_db": BETA_SQL},
    )
    snapshot, results = scenario.scan()
    return scenario, snapshot, results


def test_exactly_these_routines(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, _, results = scanned
    assert keys(results, rules=RULES) == {
        ("PGW-FUNC-001", _resource("alpha_db", "public.admin_purge"), None),
        ("PGW-FUNC-001", _resource("alpha_db", "public.admin_scratch"), None),
        ("PGW-FUNC-001", _resource("alpha_db", "scratch.admin_home"), None),
        ("PGW-FUNC-001", _resource("beta_db", "public.superuser_task"), None),
        ("PGW-FUNC-002", _resource("alpha_db", "public.alpha_export", "n integer"), None),
        ("PGW-FUNC-002", _resource("alpha_db", "beta_corner.beta_hook"), None),
        ("PGW-FUNC-003", _resource("alpha_db", "public.admin_stats"), None),
    }
    assert not keys(results, status="error", rules=RULES)


def test_privileged_owner_evidence(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, _, results = scanned
    purge = finding(results, "PGW-FUNC-001", _resource("alpha_db", "public.admin_purge"), None)
    assert purge.evidence["owner"] == ADMIN
    assert purge.evidence["search_path"] is None
    # Every principal can connect to alpha_db and PUBLIC may EXECUTE: alpha's own too.
    assert purge.evidence["callers"] == {
        "alpha_app": "PUBLIC EXECUTE",
        "alpha_reader": "PUBLIC EXECUTE",
        "beta_app": "PUBLIC EXECUTE",
        "gamma_app": "PUBLIC EXECUTE",
    }
    assert str(purge.evidence["owner_privilege"]).startswith("the server's admin role")
    scratch = finding(results, "PGW-FUNC-001", _resource("alpha_db", "public.admin_scratch"), None)
    assert scratch.evidence["writable_schemas_in_path"] == ["scratch"]
    assert "where anyone may create objects" in scratch.message
    home = finding(results, "PGW-FUNC-001", _resource("alpha_db", "scratch.admin_home"), None)
    assert (
        "ALTER ROUTINE scratch.admin_home() SET search_path = pg_catalog, pg_temp;"
        in str(home.remediation).splitlines()
    )
    superuser = finding(
        results, "PGW-FUNC-001", _resource("beta_db", "public.superuser_task"), None
    )
    assert superuser.evidence["callers"] == {"beta_app": "PUBLIC EXECUTE"}
    assert "bootstrap superuser" in str(superuser.evidence["owner_privilege"])


def test_foreign_owner_evidence(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, _, results = scanned
    export = finding(
        results, "PGW-FUNC-002", _resource("alpha_db", "public.alpha_export", "n integer"), None
    )
    assert export.evidence["callers"] == {"beta_app": "EXECUTE"}
    assert export.app == "alpha"
    hook = finding(results, "PGW-FUNC-002", _resource("alpha_db", "beta_corner.beta_hook"), None)
    assert hook.app == "beta"
    assert set(hook.evidence["callers"]) == {"alpha_app", "alpha_reader", "gamma_app"}
    stats = finding(results, "PGW-FUNC-003", _resource("alpha_db", "public.admin_stats"), None)
    # The admin made it for alpha: only the other apps' roles are reported.
    assert set(stats.evidence["callers"]) == {"beta_app", "gamma_app"}
    assert stats.evidence["pg_temp_last"] is True


def test_the_snapshot_round_trips(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    scenario, snapshot, results = scanned
    again = Snapshot.model_validate_json(snapshot.to_json())
    assert again == snapshot
    assert keys(scenario.evaluate(again), rules=RULES) == keys(results, rules=RULES)


def test_the_fix_removes_the_escalation(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    scenario, _, results = scanned
    purge = finding(results, "PGW-FUNC-001", _resource("alpha_db", "public.admin_purge"), None)
    assert purge.remediation is not None
    assert 'ALTER ROUTINE "public".admin_purge() SET search_path = "public", pg_temp;' in (
        purge.remediation.splitlines()
    )
    export = finding(
        results, "PGW-FUNC-002", _resource("alpha_db", "public.alpha_export", "n integer"), None
    )
    assert (
        'REVOKE EXECUTE ON ROUTINE "public".alpha_export(n integer) FROM beta_app;'
        in str(export.remediation).splitlines()
    )
    apply_remediation(scenario, purge)
    apply_remediation(scenario, export)
    _, again = scenario.scan()
    found = keys(again, rules=RULES)
    assert ("PGW-FUNC-001", _resource("alpha_db", "public.admin_purge"), None) not in found
    assert ("PGW-FUNC-003", _resource("alpha_db", "public.admin_purge"), None) not in found
    assert (
        "PGW-FUNC-002",
        _resource("alpha_db", "public.alpha_export", "n integer"),
        None,
    ) not in found
    assert ("PGW-FUNC-002", _resource("alpha_db", "beta_corner.beta_hook"), None) in found
