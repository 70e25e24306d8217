"""PGW-ISO-001 … 006 against a real server: each fires, and its look-alike does not.

One scenario, scanned once as a non-superuser ``pg_monitor`` auditor:

* ``alpha`` owns two databases (``alpha_db``, ``alpha_logs``) and two roles;
* ``beta_db`` keeps PostgreSQL's default ACL (PUBLIC CONNECT and TEMPORARY);
* ``gamma_app`` reaches ``alpha_db`` through a three-deep chain of groups of no app;
* ``delta_app`` is NOINHERIT and reaches ``gamma_db`` only by SET ROLE;
* ``delta_db`` is closed to the auditor, so per-database rules are blind there.
"""

from __future__ import annotations

import psycopg
import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from tests.rules.scenario import (
    AUDITOR,
    PG15,
    App,
    Scenario,
    assert_round_trip,
    build_scenario,
    family,
    finding,
    granted_by,
    keys,
    old_public_schemas,
    version_of,
)

pytestmark = pytest.mark.versioned

APPS = (
    App("alpha", ("alpha_db", "alpha_logs"), ("alpha_app", "alpha_migrator")),
    App("beta", ("beta_db",), ("beta_app",)),
    App("gamma", ("gamma_db",), ("gamma_app",)),
    App("delta", ("delta_db",), ("delta_app",)),
)


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer) -> tuple[Scenario, Snapshot, Results]:
    scenario = build_scenario(
        pg_server,
        APPS,
        roles={"delta_app": "NOINHERIT CONNECTION LIMIT 10"},
        public_connect=("beta_db",),
        server_sql=[
            "CREATE ROLE pgw_monitoring NOLOGIN",
            "CREATE ROLE stray_login LOGIN",
            # alpha_logs: CONNECT revoked from PUBLIC, TEMPORARY and CREATE for PUBLIC left.
            "GRANT TEMPORARY, CREATE ON DATABASE alpha_logs TO PUBLIC",
            # delta_db: closed to the auditor.
            f"REVOKE CONNECT ON DATABASE delta_db FROM {AUDITOR}",
            # ISO-002 by a direct grant.
            "GRANT CONNECT ON DATABASE alpha_db TO beta_app",
            # ISO-002 through a chain three groups deep (all groups of no app).
            "CREATE ROLE g1 NOLOGIN",
            "CREATE ROLE g2 NOLOGIN",
            "CREATE ROLE g3 NOLOGIN",
            "GRANT g1 TO gamma_app",
            "GRANT g2 TO g1",
            "GRANT g3 TO g2",
            "GRANT CONNECT ON DATABASE alpha_db TO g3",
            # ISO-002 through a NOINHERIT membership: one SET ROLE away.
            "CREATE ROLE gamma_readers NOLOGIN",
            "GRANT CONNECT ON DATABASE gamma_db TO gamma_readers",
            "GRANT gamma_readers TO delta_app",
            # ISO-002 for a login of no app.
            "GRANT CONNECT ON DATABASE gamma_db TO stray_login",
            # Look-alikes: the app's own group, a platform role, the admin.
            "CREATE ROLE alpha_group NOLOGIN",
            "GRANT CONNECT ON DATABASE alpha_db TO alpha_group",
            "GRANT alpha_group TO alpha_migrator",
            "GRANT CONNECT ON DATABASE alpha_db, beta_db, gamma_db TO pgw_monitoring",
        ],
        database_sql={
            "alpha_db": [
                "CREATE SCHEMA alpha AUTHORIZATION alpha_app",
                "CREATE TABLE alpha.orders (id int)",
                "ALTER TABLE alpha.orders OWNER TO alpha_app",
                "CREATE TABLE alpha.lookup (id int)",
                "ALTER TABLE alpha.lookup OWNER TO alpha_app",
                "GRANT SELECT, UPDATE ON alpha.orders TO beta_app",
                "GRANT SELECT ON alpha.orders TO g2",
                "GRANT SELECT ON alpha.orders TO alpha_migrator, pgw_monitoring",
                "GRANT SELECT ON alpha.lookup TO PUBLIC",
                "GRANT USAGE ON SCHEMA alpha TO beta_app",
                "CREATE FUNCTION alpha.f(a integer) RETURNS int LANGUAGE sql AS 'SELECT a'",
                "ALTER FUNCTION alpha.f(integer) OWNER TO alpha_app",
                "REVOKE EXECUTE ON FUNCTION alpha.f(integer) FROM PUBLIC",
                "GRANT EXECUTE ON FUNCTION alpha.f(integer) TO beta_app",
                # Look-alike: PUBLIC EXECUTE is every function's default.
                "CREATE FUNCTION alpha.h() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                "ALTER FUNCTION alpha.h() OWNER TO alpha_app",
                "GRANT EXECUTE ON FUNCTION alpha.h() TO alpha_migrator",
                # gamma_app owns a table in alpha's database.
                "CREATE TABLE public.gamma_owned (id int)",
                "ALTER TABLE public.gamma_owned OWNER TO gamma_app",
                # Look-alike: default privileges within the app.
                "ALTER DEFAULT PRIVILEGES FOR ROLE alpha_migrator "
                "GRANT SELECT ON TABLES TO alpha_app",
            ],
            "beta_db": ["GRANT CREATE ON SCHEMA public TO PUBLIC"],
            "gamma_db": [
                "CREATE SCHEMA app AUTHORIZATION gamma_app",
                # Look-alike for ISO-003: USAGE, not CREATE.
                "GRANT USAGE ON SCHEMA app TO PUBLIC",
                "ALTER DEFAULT PRIVILEGES FOR ROLE gamma_app IN SCHEMA app "
                "GRANT SELECT ON TABLES TO alpha_app",
                # Look-alikes: restating PUBLIC's built-in defaults, granting to a platform role.
                "ALTER DEFAULT PRIVILEGES FOR ROLE gamma_app "
                "GRANT EXECUTE ON FUNCTIONS TO pgw_monitoring",
                "ALTER DEFAULT PRIVILEGES FOR ROLE gamma_app "
                "GRANT USAGE ON TYPES TO pgw_monitoring",
            ],
        },
        platform_roles=(AUDITOR, "pgw_monitoring"),
    )
    snapshot, results = scenario.scan()
    return scenario, snapshot, results


def test_iso_001_public_connect(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, _, results = scanned
    assert family(keys(results), "PGW-ISO-001") == {("PGW-ISO-001", "database/beta_db", "PUBLIC")}
    found = finding(results, "PGW-ISO-001", "database/beta_db", "PUBLIC")
    assert found.app == "beta"
    assert found.evidence["acl_is_default"] is False  # pgw_monitoring was granted CONNECT
    assert found.evidence["acl_item"] == "=Tc/pgw_admin"
    # Every role of another app, and the stray login, can connect only through PUBLIC.
    assert {"alpha_app", "gamma_app", "delta_app", "stray_login"} <= set(
        found.evidence["exposed_roles"]
    )
    # The fix keeps the app and the auditor in before taking PUBLIC out.
    assert found.remediation is not None
    lines = [ln for ln in found.remediation.splitlines() if not ln.startswith("--")]
    assert lines == [
        "GRANT CONNECT ON DATABASE beta_db TO beta_app;",
        f"GRANT CONNECT ON DATABASE beta_db TO {AUDITOR};",
        "REVOKE CONNECT ON DATABASE beta_db FROM PUBLIC;",
    ]


def test_iso_002_cross_app_connect(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, _, results = scanned
    assert family(keys(results), "PGW-ISO-002") == {
        ("PGW-ISO-002", "database/alpha_db", "role/beta_app"),
        ("PGW-ISO-002", "database/alpha_db", "role/gamma_app"),
        ("PGW-ISO-002", "database/gamma_db", "role/delta_app"),
        ("PGW-ISO-002", "database/gamma_db", "role/stray_login"),
    }


def test_iso_002_direct_grant_evidence(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, _, results = scanned
    found = finding(results, "PGW-ISO-002", "database/alpha_db", "role/beta_app")
    (access,) = found.evidence["access"]
    assert access["via"] == "grant"
    assert access["chain"] == "beta_app → CONNECT on alpha_db"
    assert access["acl_item"] == "beta_app=c/pgw_admin"
    assert found.remediation is not None
    assert "REVOKE CONNECT ON DATABASE alpha_db FROM beta_app;" in found.remediation.splitlines()


def test_iso_002_three_deep_chain(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, snapshot, results = scanned
    found = finding(results, "PGW-ISO-002", "database/alpha_db", "role/gamma_app")
    (access,) = found.evidence["access"]
    assert access["chain"] == "gamma_app → g1 → g2 → g3 → CONNECT on alpha_db"
    assert access["paths"] == [{"path": ["gamma_app", "g1", "g2", "g3"], "mode": "inherit"}]
    assert access["acl_item"] == "g3=c/pgw_admin"
    # g1..g3 belong to no app: the leak is gamma_app joining g1, so that is revoked.
    assert found.remediation is not None
    statements = [ln for ln in found.remediation.splitlines() if not ln.startswith("--")]
    assert statements == [f"REVOKE g1 FROM gamma_app{granted_by(version_of(snapshot))};"]
    assert "-- alternative: REVOKE CONNECT ON DATABASE alpha_db FROM g3;" in found.remediation


def test_iso_002_noinherit_is_reported_as_set_role(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    _, snapshot, results = scanned
    found = finding(results, "PGW-ISO-002", "database/gamma_db", "role/delta_app")
    (access,) = found.evidence["access"]
    assert access["needs_set_role"] is True
    assert access["paths"][0]["mode"] == "set role"
    # CONNECT is checked at login against inherited privileges: not usable today.
    assert "cannot log in through it today" in access["note"]
    assert "without INHERIT: not usable to log in today" in found.message
    assert found.evidence["verify"] == (
        "SELECT has_database_privilege('delta_app', 'gamma_db', 'CONNECT');"
    )
    revoke = f"REVOKE gamma_readers FROM delta_app{granted_by(version_of(snapshot))};"
    assert revoke in str(found.remediation).splitlines()


def test_noinherit_member_really_cannot_log_in(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """What the evidence says, PostgreSQL does: the login is refused, SET ROLE is not."""
    scenario, _, _ = scanned
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(scenario.dsn("delta_app", "gamma_db")).close()
    with psycopg.connect(scenario.dsn("delta_app", "delta_db")) as conn:
        conn.execute("SET ROLE gamma_readers")


def test_iso_003_public_create(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, snapshot, results = scanned
    version = version_of(snapshot)
    assert family(keys(results), "PGW-ISO-003") == {
        ("PGW-ISO-003", "schema/beta_db.public", "PUBLIC"),
        ("PGW-ISO-003", "database/alpha_logs", "PUBLIC"),
        # Before 15 every app database's public schema (delta_db's is not visible).
        *old_public_schemas(version, ("alpha_db", "alpha_logs", "gamma_db")),
    }
    found = finding(results, "PGW-ISO-003", "schema/beta_db.public", "PUBLIC")
    if version >= PG15:
        assert found.evidence["acl_item"] == "=UC/pg_database_owner"
        assert "PostgreSQL 15+" in found.evidence["note"]
    else:
        # The bootstrap superuser owns public, and the ACL gave PUBLIC CREATE from the start.
        assert found.evidence["acl_item"] == "=UC/postgres"
        assert "before PostgreSQL 15" in found.evidence["note"]
    assert found.remediation is not None
    assert 'REVOKE CREATE ON SCHEMA "public" FROM PUBLIC;' in found.remediation


def test_iso_004_foreign_object_privileges(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, snapshot, results = scanned
    assert family(keys(results), "PGW-ISO-004") == {
        ("PGW-ISO-004", "table/alpha_db.alpha.orders", "role/beta_app"),
        ("PGW-ISO-004", "table/alpha_db.alpha.lookup", "PUBLIC"),
        ("PGW-ISO-004", "function/alpha_db.alpha.f(a integer)", "role/beta_app"),
        ("PGW-ISO-004", "schema/alpha_db.alpha", "role/beta_app"),
        ("PGW-ISO-004", "database/alpha_db", "role/gamma_app"),
    }
    orders = finding(results, "PGW-ISO-004", "table/alpha_db.alpha.orders", "role/beta_app")
    assert orders.evidence["access"][0]["privileges"] == ["SELECT", "UPDATE"]
    assert orders.evidence["can_connect"] is True
    assert "REVOKE SELECT, UPDATE ON TABLE alpha.orders FROM beta_app;" in str(orders.remediation)
    # gamma_app owns a table there, and reads alpha.orders through g1 → g2: one finding
    # for the database, whose fix reassigns the table and cuts the chain once.
    gamma = finding(results, "PGW-ISO-004", "database/alpha_db", "role/gamma_app")
    assert gamma.evidence["owns"] == {"gamma_app": {"table": 1}}
    assert [a["chain"] for a in gamma.evidence["access"]] == [
        "gamma_app → g1 → g2 → SELECT on TABLE alpha.orders",
        "gamma_app → owner of 1 table in alpha_db",
    ]
    assert gamma.message == (
        "in database 'alpha_db' of app 'alpha', role 'gamma_app' (app 'gamma') owns 1 table; "
        "holds SELECT on TABLE alpha.orders through 'g2'"
    )
    # REASSIGN OWNED runs in the database; the script says which first.
    assert str(gamma.remediation).startswith(
        "-- run in database alpha_db (psql: \\connect alpha_db)"
    )
    statements = [ln for ln in str(gamma.remediation).splitlines() if not ln.startswith("--")]
    assert statements == [
        "REASSIGN OWNED BY gamma_app TO alpha_app;",
        f"REVOKE g1 FROM gamma_app{granted_by(version_of(snapshot))};",
    ]
    function = finding(
        results, "PGW-ISO-004", "function/alpha_db.alpha.f(a integer)", "role/beta_app"
    )
    assert "REVOKE EXECUTE ON ROUTINE alpha.f(a integer) FROM beta_app;" in str(
        function.remediation
    )


def test_iso_005_public_temporary(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, _, results = scanned
    assert family(keys(results), "PGW-ISO-005") == {
        ("PGW-ISO-005", "database/beta_db", "PUBLIC"),
        ("PGW-ISO-005", "database/alpha_logs", "PUBLIC"),
    }
    logs = finding(results, "PGW-ISO-005", "database/alpha_logs", "PUBLIC")
    assert "PUBLIC itself has no CONNECT" in logs.message


def test_iso_006_default_privileges(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, _, results = scanned
    assert family(keys(results), "PGW-ISO-006") == {
        ("PGW-ISO-006", "schema/gamma_db.app", "role/alpha_app"),
    }
    found = finding(results, "PGW-ISO-006", "schema/gamma_db.app", "role/alpha_app")
    assert (
        "ALTER DEFAULT PRIVILEGES FOR ROLE gamma_app IN SCHEMA app "
        "REVOKE SELECT ON TABLES FROM alpha_app;" in str(found.remediation)
    )


def test_blind_database_is_an_error_not_a_pass(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    _, _, results = scanned
    errors = keys(results, status="error")
    assert {
        ("PGW-ISO-003", "database/delta_db", None),
        ("PGW-ISO-004", "database/delta_db", None),
        ("PGW-ISO-006", "database/delta_db", None),
    } <= errors
    blind = finding(results, "PGW-ISO-004", "database/delta_db", None)
    assert blind.remediation == f"GRANT CONNECT ON DATABASE delta_db TO {AUDITOR};"
    assert "permission denied" in str(blind.evidence["error"])
    coverage = {(c.rule_id, c.outcome) for c in results.coverage}
    assert ("PGW-ISO-006", "error") in coverage


def test_no_auth_finding_on_a_scram_server(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    _, _, results = scanned
    assert not family(keys(results), "PGW-AUTH")


def test_live_and_round_tripped_snapshot_agree(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    assert_round_trip(*scanned)
