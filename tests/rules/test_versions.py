"""What changed between PostgreSQL 14 and 18, on a live server of the version under test.

``.ci/run`` runs this module on each major version Azure runs (``PGWARDEN_PG_BIN``).
One scenario is built with the same SQL everywhere, except the statements of a feature
the version lacks, which must then be refused by the server: a feature is exercised
where it exists and proved absent where it does not, never skipped. The scan's
findings are compared whole with what that version must give:

* 14: ``pg_read_all_data`` and ``pg_write_all_data`` (PGW-ROLE-002, and what they really
  allow); ``pg_database_owner`` hands a schema to whoever owns the database; every new
  database's ``public`` schema gives PUBLIC CREATE (PGW-ISO-003);
* 15: ``public`` is owned by ``pg_database_owner`` and gives PUBLIC USAGE only;
* 16: membership grants carry INHERIT, SET and ADMIN and one row per grantor (each
  revoked as its grantor); the admin's CREATEROLE makes it an ADMIN-only member of the
  roles it creates, and no longer lets a role take any role it likes;
* 17: the MAINTAIN privilege and ``pg_maintain`` (PGW-ISO-004, PGW-ROLE-002);
* 18: ``log_connections`` is a list of aspects (PGW-LOG-001 wants ``authorization``);
  MD5 passwords are deprecated and warned about, and still found (PGW-AUTH-001);
  default privileges cover large objects (PGW-ISO-006).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import psycopg
import pytest
from psycopg import errors

from pgwarden.cli.flexible_server import (
    AZURE_MAINTENANCE_DATABASE,
    AZURE_QUERY_STORE_DATABASE,
    AZURE_REPLICATION,
    AZURE_SUPERUSER,
)
from pgwarden.cli.localpg import SUPERUSER, LocalServer
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from tests.rules.scenario import (
    ADMIN,
    OWN_RULES,
    PG14,
    PG15,
    PG16,
    PG17,
    PG18,
    App,
    Key,
    Scenario,
    apply_remediation,
    assert_round_trip,
    build_scenario,
    finding,
    keys,
    old_public_schemas,
    version_of,
)

pytestmark = pytest.mark.versioned

RULES_HERE = (*OWN_RULES, "PGW-MAP-001", "PGW-LOG-001")

APPS = (
    App("north", ("north_db",), ("north_app",)),
    App("south", ("south_db",), ("south_app",)),
    App("east", ("east_db",), ("east_app",)),
    App("west", ("west_db",), ("west_app",)),
    App("port", ("port_db",), ("port_app",)),
)

# (first version, statement) run as the bootstrap superuser; a version before the first
# must refuse the statement.
SERVER_SQL: tuple[tuple[int, str], ...] = (
    # 14: the predefined roles that read or write every table of every database.
    (PG14, "GRANT pg_read_all_data TO south_app"),
    (PG14, "GRANT pg_write_all_data TO east_app"),
    # 14: west_db handed to north's role; pg_database_owner stands for whoever owns it.
    (PG14, "ALTER DATABASE west_db OWNER TO north_app"),
    # Any version: a NOINHERIT role's membership is usable by SET ROLE only (16: the
    # grant takes INHERIT FALSE from the role; before 16 the role's attribute decides).
    (PG14, "GRANT north_app TO port_app"),
    # 16: one membership granted twice, by two grantors (before 16 the second GRANT
    # is a no-op: one grant per pair).
    (PG14, "GRANT north_app TO east_app"),
    (PG14, f"GRANT north_app TO east_app GRANTED BY {ADMIN}"),
    # 16: a grant with neither INHERIT nor SET gives no access at all.
    (PG16, "GRANT south_app TO west_app WITH INHERIT FALSE, SET FALSE"),
    # 17: the role that may VACUUM, ANALYZE, REINDEX, CLUSTER, REFRESH and LOCK every table.
    (PG17, "GRANT pg_maintain TO west_app"),
    # A table of the bootstrap superuser's, for the live proofs below.
    (PG14, "CREATE TABLE public.platform_notes (id int)"),
)
DATABASE_SQL: dict[str, tuple[tuple[int, str], ...]] = {
    "north_db": (
        (PG14, "CREATE SCHEMA north AUTHORIZATION north_app"),
        (PG14, "CREATE TABLE north.ledger (id int)"),
        (PG14, "ALTER TABLE north.ledger OWNER TO north_app"),
        # 17: MAINTAIN on one table, for another app's role.
        (PG17, "GRANT MAINTAIN ON north.ledger TO south_app"),
    ),
    "west_db": (
        # 14: a schema owned by pg_database_owner: north_app's, as west_db's owner.
        (PG14, "CREATE SCHEMA shared AUTHORIZATION pg_database_owner"),
    ),
    "south_db": (
        # 18: default privileges for large objects (PGW-ISO-006).
        (
            PG18,
            "ALTER DEFAULT PRIVILEGES FOR ROLE south_app GRANT SELECT ON LARGE OBJECTS TO PUBLIC",
        ),
    ),
}


def _applicable(statements: Sequence[tuple[int, str]], version: int) -> list[str]:
    return [statement for since, statement in statements if since <= version]


def _server_version(server: LocalServer) -> int:
    with psycopg.connect(server.dsn()) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer) -> Iterator[tuple[Scenario, Snapshot, Results]]:
    version = _server_version(pg_server)
    scenario = build_scenario(
        pg_server,
        APPS,
        roles={"port_app": "NOINHERIT CREATEROLE CONNECTION LIMIT 10"},
        server_sql=_applicable(SERVER_SQL, version),
        database_sql={db: _applicable(sql, version) for db, sql in DATABASE_SQL.items()},
    )
    scenario.execute(
        "postgres",
        [
            "ALTER SYSTEM SET password_encryption = 'md5'",
            "ALTER SYSTEM SET log_disconnections = on",
            "ALTER SYSTEM SET log_checkpoints = on",
            "SELECT pg_reload_conf()",
        ],
    )
    snapshot, results = scenario.scan()
    yield scenario, snapshot, results


def expected_findings(version: int) -> set[Key]:
    """Every finding of RULES_HERE the scenario must give on ``version``."""
    found: set[Key] = {
        # 14+: membership in the read-all and write-all roles.
        ("PGW-ROLE-002", "role/pg_read_all_data", "role/south_app"),
        ("PGW-ROLE-002", "role/pg_write_all_data", "role/east_app"),
        # Another app's role: by inheritance (east, twice granted) or SET ROLE (port).
        ("PGW-ROLE-002", "role/north_app", "role/east_app"),
        ("PGW-ROLE-002", "role/north_app", "role/port_app"),
        ("PGW-ISO-002", "database/north_db", "role/east_app"),
        ("PGW-ISO-002", "database/north_db", "role/port_app"),
        # north_app owns west_db, and so its pg_database_owner schema (and from 15 public).
        ("PGW-ISO-002", "database/west_db", "role/north_app"),
        ("PGW-ISO-004", "database/west_db", "role/north_app"),
        # ... and as north_app, owner of schema north and its table in north_db.
        ("PGW-ISO-004", "database/north_db", "role/east_app"),
        ("PGW-ISO-004", "database/north_db", "role/port_app"),
        # east_app and port_app act as north_app, which owns west_db too.
        ("PGW-ISO-002", "database/west_db", "role/east_app"),
        ("PGW-ISO-004", "database/west_db", "role/east_app"),
        ("PGW-ISO-002", "database/west_db", "role/port_app"),
        ("PGW-ISO-004", "database/west_db", "role/port_app"),
        # CREATEROLE on an app role.
        ("PGW-ROLE-001", "role/port_app", "role/port_app"),
        ("PGW-AUTH-001", "setting/password_encryption", None),
        ("PGW-LOG-001", "setting/log_connections", None),
    }
    # Not, from 16: west_app's membership in south_app (no INHERIT, no SET: no access).
    found |= old_public_schemas(version, [db for app in APPS for db in app.databases])
    if version >= PG17:
        found.add(("PGW-ISO-004", "table/north_db.north.ledger", "role/south_app"))
        found.add(("PGW-ROLE-002", "role/pg_maintain", "role/west_app"))
    if version >= PG18:
        found.add(("PGW-ISO-006", "database/south_db", "PUBLIC"))
    return found


def test_exactly_the_findings_of_this_version(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    _, snapshot, results = scanned
    assert keys(results, rules=RULES_HERE) == expected_findings(version_of(snapshot))
    assert not keys(results, status="error", rules=RULES_HERE)


def test_features_exist_exactly_from_their_version(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """Every statement the scenario left out is one this server cannot run."""
    scenario, snapshot, _ = scanned
    version = version_of(snapshot)
    later = [("postgres", s) for since, s in SERVER_SQL if since > version]
    later += [(db, s) for db, sql in DATABASE_SQL.items() for since, s in sql if since > version]
    assert len(later) == {14: 4, 15: 4, 16: 3, 17: 1}.get(version // 10000, 0)
    for database, statement in later:
        with scenario.superuser(database) as conn, pytest.raises(errors.ProgrammingError):
            conn.execute(statement)


# -- 18: default privileges for large objects ---------------------------------------------


def test_default_privileges_on_large_objects(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """From 18 ALTER DEFAULT PRIVILEGES covers large objects: read as such (not as
    tables), and revoked, as the finding says, on large objects."""
    scenario, snapshot, results = scanned
    if version_of(snapshot) < PG18:
        return  # the statement was refused (test_features_exist_exactly_from_their_version)
    pg = snapshot.servers[0].postgres
    assert pg is not None
    detail = pg.detail("south_db")
    assert detail is not None
    [default] = detail.default_privileges
    assert (default.role, default.object_type) == ("south_app", "large object")
    found = finding(results, "PGW-ISO-006", "database/south_db", "PUBLIC")
    assert (
        "ALTER DEFAULT PRIVILEGES FOR ROLE south_app REVOKE SELECT ON LARGE OBJECTS FROM PUBLIC;"
        in str(found.remediation)
    )
    with scenario.superuser("south_db") as conn:
        conn.execute("SET ROLE south_app")
        created = conn.execute("SELECT lo_from_bytea(0, 'x')").fetchone()
        assert created is not None
        row = conn.execute(
            "SELECT lomacl::text FROM pg_largeobject_metadata WHERE oid = %s", created
        ).fetchone()
        conn.rollback()
    assert row is not None and "=r/south_app" in str(row[0])
    apply_remediation(scenario, found)
    _, after = scenario.scan()
    assert ("PGW-ISO-006", "database/south_db", "PUBLIC") not in keys(after)


# -- 14: pg_read_all_data, pg_write_all_data, pg_database_owner -------------------------


def test_read_all_data_reads_password_verifiers(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """What PGW-ROLE-002 says of pg_read_all_data, the server does."""
    scenario, _, results = scanned
    found = finding(results, "PGW-ROLE-002", "role/pg_read_all_data", "role/south_app")
    assert found.severity == "critical" and "pg_authid" in found.message
    with psycopg.connect(scenario.dsn("south_app")) as conn:
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'north_app'"
        ).fetchone()
    assert row is not None and str(row[0]).startswith("SCRAM-SHA-256$")
    with (
        psycopg.connect(scenario.dsn("west_app")) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT rolpassword FROM pg_authid")


def test_write_all_data_writes_others_tables(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, _, results = scanned
    found = finding(results, "PGW-ROLE-002", "role/pg_write_all_data", "role/east_app")
    assert found.severity == "critical"
    with psycopg.connect(scenario.dsn("east_app")) as conn:
        conn.execute("INSERT INTO public.platform_notes VALUES (1)")
        conn.rollback()
    with (
        psycopg.connect(scenario.dsn("south_app")) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute("INSERT INTO public.platform_notes VALUES (1)")


def test_database_owner_holds_pg_database_owner_schemas(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """pg_database_owner has no rows in pg_auth_members: the finding is the database's
    ownership, and the server agrees that it brings the schema."""
    scenario, snapshot, results = scanned
    pg = snapshot.servers[0].postgres
    assert pg is not None
    detail = pg.detail("west_db")
    assert detail is not None
    owners = {schema.name: schema.owner for schema in detail.schemas}
    assert owners["shared"] == "pg_database_owner"
    assert owners["public"] == ("pg_database_owner" if version_of(snapshot) >= PG15 else SUPERUSER)
    found = finding(results, "PGW-ISO-004", "database/west_db", "role/north_app")
    assert "ALTER DATABASE west_db OWNER TO" in str(found.remediation)
    with psycopg.connect(scenario.dsn("north_app", "west_db")) as conn:
        conn.execute("CREATE TABLE shared.taken (id int)")
        conn.rollback()
        row = conn.execute("SELECT pg_has_role('pg_database_owner', 'USAGE')").fetchone()
    assert row == (True,)


# -- 15: the public schema ---------------------------------------------------------------


def test_public_schema_of_a_new_database(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    scenario, snapshot, results = scanned
    version = version_of(snapshot)
    with psycopg.connect(scenario.dsn("south_app", "south_db")) as conn:
        row = conn.execute("SELECT has_schema_privilege('public', 'CREATE')").fetchone()
    assert row == (version < PG15,)
    if version < PG15:
        found = finding(results, "PGW-ISO-003", "schema/south_db.public", "PUBLIC")
        assert found.evidence["acl_item"] == f"=UC/{SUPERUSER}"
        assert "before PostgreSQL 15" in found.evidence["note"]


# -- 16: membership options, grantors, CREATEROLE -----------------------------------------


def test_membership_rows_as_the_version_keeps_them(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    _, snapshot, _ = scanned
    version = version_of(snapshot)
    pg = snapshot.servers[0].postgres
    assert pg is not None
    rows = {
        (m.role, m.member, m.grantor): (m.admin_option, m.inherit_option, m.set_option)
        for m in pg.memberships
    }
    twice = {k for k in rows if k[:2] == ("north_app", "east_app")}
    port = rows[("north_app", "port_app", SUPERUSER)]
    if version >= PG16:
        assert twice == {("north_app", "east_app", SUPERUSER), ("north_app", "east_app", ADMIN)}
        # The options are the grant's: INHERIT FALSE from the NOINHERIT role.
        assert port == (False, False, True)
        assert rows[("south_app", "west_app", SUPERUSER)] == (False, False, False)
        # The admin created every app role: a member of each with ADMIN only.
        for app in APPS:
            (role,) = app.roles
            assert rows[(role, ADMIN, SUPERUSER)] == (True, False, False)
    else:
        # One grant per pair; INHERIT is the member's attribute, SET always allowed.
        assert twice == {("north_app", "east_app", SUPERUSER)}
        assert port == (False, False, True)
        assert not [k for k in rows if k[1] == ADMIN and k[0] != "azure_pg_admin"]


def test_membership_granted_twice_is_revoked_twice(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """From 16 each grantor's grant must go: the remediation, run as written, ends it."""
    scenario, snapshot, results = scanned
    found = finding(results, "PGW-ROLE-002", "role/north_app", "role/east_app")
    statements = [ln for ln in str(found.remediation).splitlines() if not ln.startswith("--")]
    if version_of(snapshot) >= PG16:
        assert statements == [
            f"REVOKE north_app FROM east_app GRANTED BY {SUPERUSER};",
            f"REVOKE north_app FROM east_app GRANTED BY {ADMIN};",
        ]
    else:
        assert statements == ["REVOKE north_app FROM east_app;"]
    apply_remediation(scenario, found)
    with scenario.superuser() as conn:
        row = conn.execute("SELECT pg_has_role('east_app', 'north_app', 'MEMBER')").fetchone()
    assert row == (False,)
    _, after = scenario.scan()
    assert ("PGW-ROLE-002", "role/north_app", "role/east_app") not in keys(after)
    assert ("PGW-ISO-002", "database/north_db", "role/east_app") not in keys(after)


def test_grant_without_inherit_or_set_is_no_access(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, snapshot, results = scanned
    if version_of(snapshot) < PG16:
        return  # the grant cannot be made (test_features_exist_exactly_from_their_version)
    assert not [
        f
        for f in results.findings
        if f.principal == "role/west_app" and f.resource in ("role/south_app", "database/south_db")
    ]
    with (
        psycopg.connect(scenario.dsn("west_app")) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute("SET ROLE south_app")


def test_createrole_reaches_every_role_before_16(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """PGW-ROLE-001 says CREATEROLE let a role take any role before 16: the server agrees."""
    scenario, snapshot, results = scanned
    found = finding(results, "PGW-ROLE-001", "role/port_app", "role/port_app")
    assert found.evidence["attributes"] == ["CREATEROLE"]
    note = str(found.evidence["note"])
    if version_of(snapshot) >= PG16:
        assert note.startswith("PostgreSQL 16+: CREATEROLE manages the roles it holds ADMIN")
    else:
        assert note.startswith("before PostgreSQL 16, CREATEROLE can alter any non-superuser")
    with psycopg.connect(scenario.dsn("port_app")) as conn:
        if version_of(snapshot) >= PG16:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("GRANT south_app TO port_app")
        else:
            conn.execute("GRANT south_app TO port_app")
            conn.rollback()


def test_admin_only_grants_of_the_admin_are_no_finding(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """From 16 the admin is an ADMIN-only member of every app role it created (see the
    rows above): administration, not access, so no finding names it."""
    _, _, results = scanned
    assert not [f for f in results.findings if f.principal == f"role/{ADMIN}"]


# -- 17: MAINTAIN and pg_maintain --------------------------------------------------------


def test_maintain_privilege_is_read_and_reported(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, snapshot, results = scanned
    if version_of(snapshot) < PG17:
        return
    pg = snapshot.servers[0].postgres
    assert pg is not None
    detail = pg.detail("north_db")
    assert detail is not None
    (grant,) = [g for g in detail.object_grants if g.grantee == "south_app"]
    assert grant.privileges == ("MAINTAIN",)
    found = finding(results, "PGW-ISO-004", "table/north_db.north.ledger", "role/south_app")
    assert found.evidence["access"][0]["privileges"] == ["MAINTAIN"]
    assert "REVOKE MAINTAIN ON TABLE north.ledger FROM south_app;" in str(found.remediation)
    apply_remediation(scenario, found)
    _, after = scenario.scan()
    assert ("PGW-ISO-004", "table/north_db.north.ledger", "role/south_app") not in keys(after)


def test_pg_maintain_locks_every_table(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    scenario, snapshot, results = scanned
    if version_of(snapshot) < PG17:
        return
    found = finding(results, "PGW-ROLE-002", "role/pg_maintain", "role/west_app")
    assert found.severity == "critical"
    with psycopg.connect(scenario.dsn("west_app")) as conn:
        conn.execute("LOCK TABLE public.platform_notes IN ACCESS EXCLUSIVE MODE")
        conn.rollback()
    with (
        psycopg.connect(scenario.dsn("port_app")) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute("LOCK TABLE public.platform_notes IN ACCESS EXCLUSIVE MODE")


# -- 18: log_connections aspects, MD5 deprecation ----------------------------------------


def test_md5_is_found_and_the_server_warns_from_18(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, snapshot, results = scanned
    found = finding(results, "PGW-AUTH-001", "setting/password_encryption", None)
    assert found.evidence["value"] == "md5"
    warnings: list[str] = []
    with scenario.superuser() as conn:
        conn.add_notice_handler(lambda notice: warnings.append(str(notice.message_primary)))
        with conn.transaction(force_rollback=True):
            conn.execute("CREATE ROLE md5_probe LOGIN PASSWORD 'probe-password'")
    warned = "setting an MD5-encrypted password" in warnings
    assert warned is (version_of(snapshot) >= PG18)


@pytest.mark.parametrize(
    ("value", "since", "logged"),
    [
        ("on", PG14, True),
        ("off", PG14, False),
        ("all", PG18, True),
        ("receipt,authorization", PG18, True),
        # 18: only 'authorization' logs which role reached which database.
        ("receipt", PG18, False),
        ("receipt,authentication", PG18, False),
    ],
)
def test_log_connections_must_log_authorization(
    scanned: tuple[Scenario, Snapshot, Results], value: str, since: int, logged: bool
) -> None:
    scenario, snapshot, results = scanned
    key = ("PGW-LOG-001", "setting/log_connections", None)
    # Unset: off before 18, the empty list from 18.
    default = finding(results, *key)
    assert default.evidence["value"] == ("" if version_of(snapshot) >= PG18 else "off")
    setting = f"ALTER SYSTEM SET log_connections = '{value}'"
    if version_of(snapshot) < since:
        # A boolean before 18.
        with scenario.superuser() as conn, pytest.raises(errors.InvalidParameterValue):
            conn.execute(setting)
        return
    scenario.execute("postgres", [setting, "SELECT pg_reload_conf()"])
    try:
        _, after = scenario.scan()
    finally:
        scenario.execute(
            "postgres", ["ALTER SYSTEM RESET log_connections", "SELECT pg_reload_conf()"]
        )
    assert (key not in keys(after, rules=("PGW-LOG-001",))) is logged


# -- Azure's own roles and databases -----------------------------------------------------


def test_azure_roles_and_databases_are_no_tenants(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    _, snapshot, results = scanned
    pg = snapshot.servers[0].postgres
    assert pg is not None
    roles = {role.name: role for role in pg.roles}
    assert roles[AZURE_SUPERUSER].superuser and roles[AZURE_SUPERUSER].login
    assert roles[AZURE_REPLICATION].replication and roles[AZURE_REPLICATION].login
    assert roles[ADMIN].createrole and roles[ADMIN].createdb and not roles[ADMIN].superuser
    databases = {db.name for db in pg.databases}
    assert {AZURE_MAINTENANCE_DATABASE, AZURE_QUERY_STORE_DATABASE} <= databases
    azure = {
        f"role/{AZURE_SUPERUSER}",
        f"role/{AZURE_REPLICATION}",
        "role/azure_pg_admin",
        f"database/{AZURE_MAINTENANCE_DATABASE}",
        f"database/{AZURE_QUERY_STORE_DATABASE}",
    }
    assert not [f for f in results.findings if {f.resource, f.principal} & azure]


def test_live_and_round_tripped_snapshot_agree(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    assert_round_trip(*scanned)
