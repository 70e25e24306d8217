"""PGW-ROLE-001 … 004, PGW-AUTH-001 and PGW-ADM-001 against a real server.

Scanned once, as a non-superuser ``pg_monitor`` auditor, while sessions are open:
an application logged in as the admin (a finding), the admin from pgAdmin (not), the
admin from the application on a non-app database (not), and an app's own session.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from tests.rules.scenario import (
    ADMIN,
    PG16,
    App,
    Scenario,
    assert_round_trip,
    build_scenario,
    family,
    finding,
    granted_by,
    keys,
    version_of,
)

pytestmark = pytest.mark.versioned

APPS = (
    App("shop", ("shop_db",), ("shop_app", "shop_batch")),
    App("blog", ("blog_db",), ("blog_app",)),
    App("crm", ("crm_db",), ("crm_app",), connection_budget=10),
)


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer) -> Iterator[tuple[Scenario, Snapshot, Results, int]]:
    scenario = build_scenario(
        pg_server,
        APPS,
        roles={
            "shop_app": "CREATEDB CONNECTION LIMIT -1",
            "shop_batch": "CONNECTION LIMIT 5",
            "blog_app": "CONNECTION LIMIT 400",
            "crm_app": "NOINHERIT CONNECTION LIMIT 15",
        },
        # From PostgreSQL 16 the admin is a member of each role it creates, and a role
        # cannot join one of its own members: shop_batch joins the admin (below), so
        # another administrator created it.
        created_elsewhere=("shop_batch",),
        server_sql=[
            # ROLE-001 through SET ROLE: a superuser group of no app.
            "CREATE ROLE ops_super NOLOGIN SUPERUSER",
            "GRANT ops_super TO crm_app",
            # ROLE-002: pg_read_all_data through a group; another app's role, NOINHERIT
            # (so only by SET ROLE); the admin (and through it azure_pg_admin).
            "CREATE ROLE readers_all NOLOGIN",
            "GRANT pg_read_all_data TO readers_all",
            "GRANT readers_all TO blog_app",
            "GRANT blog_app TO crm_app",
            f"GRANT {ADMIN} TO shop_batch",
            # Look-alikes: a group of the app's own, a harmless predefined role.
            "GRANT shop_app TO shop_batch",
            "GRANT pg_monitor TO shop_app",
            # ROLE-004: a login of no app; a NOLOGIN group (Azure's azuresu and
            # replication logins are the scenario's).
            "CREATE ROLE old_etl LOGIN",
            "CREATE ROLE reporting_grp NOLOGIN",
        ],
    )
    scenario.execute(
        "postgres",
        ["ALTER SYSTEM SET password_encryption = 'md5'", "SELECT pg_reload_conf()"],
    )
    with (
        psycopg.connect(scenario.dsn(ADMIN, "shop_db"), application_name="shop-api") as app_conn,
        psycopg.connect(scenario.dsn(ADMIN, "blog_db"), application_name="pgAdmin 4"),
        psycopg.connect(scenario.dsn(ADMIN, "postgres"), application_name="shop-api"),
        psycopg.connect(scenario.dsn("blog_app", "blog_db"), application_name="blog"),
    ):
        pid = app_conn.info.backend_pid
        snapshot, results = scenario.scan()
    yield scenario, snapshot, results, pid


def test_role_001_privileged_app_role(scanned: tuple[Scenario, Snapshot, Results, int]) -> None:
    _, snapshot, results, _ = scanned
    version = version_of(snapshot)
    assert family(keys(results), "PGW-ROLE-001") == {
        ("PGW-ROLE-001", "role/shop_app", "role/shop_app"),
        ("PGW-ROLE-001", "role/crm_app", "role/crm_app"),
    }
    shop = finding(results, "PGW-ROLE-001", "role/shop_app", "role/shop_app")
    assert shop.evidence["attributes"] == ["CREATEDB"]
    assert shop.remediation == "ALTER ROLE shop_app NOCREATEDB;"
    crm = finding(results, "PGW-ROLE-001", "role/crm_app", "role/crm_app")
    (via,) = crm.evidence["via_set_role"]
    assert via == {
        "role": "ops_super",
        "attributes": ["SUPERUSER"],
        "path": ["crm_app", "ops_super"],
        # From 16 SET is a grant option of its own: what confers the attributes.
        "verify": "SELECT pg_has_role('crm_app', 'ops_super', "
        + ("'SET');" if version >= PG16 else "'MEMBER');"),
    }
    assert (
        f"REVOKE ops_super FROM crm_app{granted_by(version)};" in str(crm.remediation).splitlines()
    )


def test_role_002_memberships(scanned: tuple[Scenario, Snapshot, Results, int]) -> None:
    _, snapshot, results, _ = scanned
    version = version_of(snapshot)
    assert family(keys(results), "PGW-ROLE-002") == {
        ("PGW-ROLE-002", "role/pg_read_all_data", "role/blog_app"),
        ("PGW-ROLE-002", "role/pg_read_all_data", "role/crm_app"),
        ("PGW-ROLE-002", "role/blog_app", "role/crm_app"),
        ("PGW-ROLE-002", f"role/{ADMIN}", "role/shop_batch"),
        ("PGW-ROLE-002", "role/azure_pg_admin", "role/shop_batch"),
    }
    read_all = finding(results, "PGW-ROLE-002", "role/pg_read_all_data", "role/blog_app")
    assert "pg_authid" in read_all.message
    assert read_all.evidence["paths"] == [
        {"path": ["blog_app", "readers_all", "pg_read_all_data"], "mode": "inherit"}
    ]
    # readers_all is no role of blog's: the chain leaves the app at its first grant.
    lines = str(read_all.remediation).splitlines()
    assert f"REVOKE readers_all FROM blog_app{granted_by(version)};" in lines
    alternative = f"REVOKE pg_read_all_data FROM readers_all{granted_by(version)};"
    assert f"-- or, for every member of 'readers_all': {alternative}" in lines
    noinherit = finding(results, "PGW-ROLE-002", "role/blog_app", "role/crm_app")
    assert noinherit.evidence["needs_set_role"] is True
    assert "SET ROLE blog_app" in noinherit.evidence["note"]
    # The membership rows are shown as pg_auth_members has them.
    assert noinherit.evidence["membership_grants"] == [
        {
            "role": "blog_app",
            "member": "crm_app",
            "grantor": "postgres",
            "admin_option": False,
            "inherit_option": False,
            "set_option": True,
        }
    ]


def test_role_003_connection_limits(scanned: tuple[Scenario, Snapshot, Results, int]) -> None:
    _, _, results, _ = scanned
    assert family(keys(results), "PGW-ROLE-003") == {
        ("PGW-ROLE-003", "role/shop_app", "role/shop_app"),
        ("PGW-ROLE-003", "role/crm_app", "role/crm_app"),
        ("PGW-ROLE-003", "setting/max_connections", None),
    }
    server = finding(results, "PGW-ROLE-003", "setting/max_connections", None)
    # The test server runs max_connections = 300 with 3 superuser slots (PostgreSQL 15:
    # no reserved_connections).
    assert server.evidence["available"] == 297
    assert server.evidence["app_limits"] == {"blog": 400, "crm": 15}
    assert server.evidence["apps_without_limit"] == ["shop"]
    budget = finding(results, "PGW-ROLE-003", "role/crm_app", "role/crm_app")
    assert "connection_budget of 10" in budget.message
    assert "ALTER ROLE crm_app CONNECTION LIMIT 10;" in str(budget.remediation)


def test_role_004_unmapped_login(scanned: tuple[Scenario, Snapshot, Results, int]) -> None:
    _, _, results, _ = scanned
    # Not: the admin, the auditor, the bootstrap superuser, azuresu, replication,
    # NOLOGIN groups.
    assert family(keys(results), "PGW-ROLE-004") == {
        ("PGW-ROLE-004", "role/old_etl", "role/old_etl"),
    }
    found = finding(results, "PGW-ROLE-004", "role/old_etl", "role/old_etl")
    assert "ALTER ROLE old_etl NOLOGIN;" in str(found.remediation).splitlines()
    # Databases that refuse connections (template0) are not counted as reachable.
    assert "template0" not in found.evidence["can_connect_to"]


def test_auth_001_password_encryption(scanned: tuple[Scenario, Snapshot, Results, int]) -> None:
    _, _, results, _ = scanned
    assert family(keys(results), "PGW-AUTH") == {
        ("PGW-AUTH-001", "setting/password_encryption", None)
    }
    found = finding(results, "PGW-AUTH-001", "setting/password_encryption", None)
    assert found.evidence["value"] == "md5"


def test_adm_001_admin_sessions(scanned: tuple[Scenario, Snapshot, Results, int]) -> None:
    _, _, results, pid = scanned
    assert family(keys(results), "PGW-ADM") == {
        ("PGW-ADM-001", f"session/{pid}", f"role/{ADMIN}"),
    }
    found = finding(results, "PGW-ADM-001", f"session/{pid}", f"role/{ADMIN}")
    assert found.evidence["application_name"] == "shop-api"
    assert found.evidence["database"] == "shop_db"
    assert found.evidence["client_addr"] == "127.0.0.1"  # pg_monitor sees addresses
    assert found.evidence["backend_start"]
    assert found.app == "shop"
    assert f"SELECT pg_terminate_backend({pid});" in str(found.remediation).splitlines()


def test_live_and_round_tripped_snapshot_agree(
    scanned: tuple[Scenario, Snapshot, Results, int],
) -> None:
    scenario, snapshot, results, _ = scanned
    assert_round_trip(scenario, snapshot, results)
