"""Microsoft Entra principals inside the database, from real catalog rows (PGW-ENTRA).

On Azure, ``pgaadauth_create_principal`` creates the role and labels it with
``SECURITY LABEL FOR pgaadauth ON ROLE … IS 'aadauth,oid=<object id>,type=…'``. That
statement needs the ``pgaadauth`` label provider, which only Azure loads, so here the
bootstrap superuser writes the same catalog row itself::

    INSERT INTO pg_shseclabel (objoid, classoid, provider, label)
    VALUES ('"role"'::regrole, 'pg_authid'::regclass, 'pgaadauth',
            'aadauth,oid=<object id>,type=user');

which is exactly what ``SECURITY LABEL`` stores (and what ``DROP ROLE`` removes). The
scan then runs as the least-privilege auditor, as ``pgwarden scan`` does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from pgwarden.model.identifiers import quote_ident
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from tests.rules.scenario import (
    App,
    Scenario,
    assert_round_trip,
    build_scenario,
    finding,
    keys,
)

RADAR_MI = "6f1b8c1e-0d7a-4d59-9a57-3f6f0f6f1a01"
ALICE = "a11ce000-0000-4000-8000-000000000001"
DBA = "dba00000-0000-4000-8000-000000000002"
DATA_TEAM = "da7a7ea0-0000-4000-8000-000000000003"
ENTRA = ("PGW-ENTRA-001", "PGW-ENTRA-002", "PGW-ENTRA-003")


def label(role: str, object_id: str, kind: str, *, admin: bool = False) -> sql.Composed:
    """The statement that labels ``role`` as Azure's pgaadauth does (see the docstring)."""
    text = f"aadauth,oid={object_id},type={kind}" + (",admin" if admin else "")
    return sql.SQL(
        "INSERT INTO pg_shseclabel (objoid, classoid, provider, label) "
        "VALUES ({}::regrole, 'pg_authid'::regclass, 'pgaadauth', {})"
    ).format(sql.Literal(quote_ident(role)), sql.Literal(text))


@pytest.fixture(scope="module")
def entra_scan(pg_server: LocalServer) -> Iterator[tuple[Scenario, Snapshot, Results]]:
    scenario = build_scenario(
        pg_server,
        [
            App("secai-radar", ("secairadar",), ("secairadar_app",), identities=(RADAR_MI,)),
            App("zep", ("zep",), ("zep_app",)),
        ],
        server_sql=[
            # secai-radar's managed identity, tied to the app by the map's identities.
            'CREATE ROLE "secai-radar-mi" LOGIN CONNECTION LIMIT 5',
            label("secai-radar-mi", RADAR_MI, "service"),
            'GRANT CONNECT ON DATABASE secairadar TO "secai-radar-mi"',
            # A person granted zep's data by name.
            'CREATE ROLE "alice@contoso.com" LOGIN',
            label("alice@contoso.com", ALICE, "user"),
            'GRANT CONNECT ON DATABASE zep TO "alice@contoso.com"',
            # The platform's DBA, a person too, listed in platform_roles: not a tenant.
            'CREATE ROLE "dba@contoso.com" LOGIN',
            label("dba@contoso.com", DBA, "user", admin=True),
            'GRANT CONNECT ON DATABASE zep TO "dba@contoso.com"',
            # A group reaching secai-radar directly and zep through zep_app.
            'CREATE ROLE "data-team" LOGIN',
            label("data-team", DATA_TEAM, "group"),
            'GRANT CONNECT ON DATABASE secairadar TO "data-team"',
            'GRANT zep_app TO "data-team"',
        ],
        database_sql={
            "zep": [
                "CREATE TABLE public.memories (id int)",
                'GRANT SELECT ON public.memories TO "alice@contoso.com"',
                "GRANT SELECT ON public.memories TO zep_app",
                # And one of the app's large objects.
                "SELECT lo_create(94000)",
                "ALTER LARGE OBJECT 94000 OWNER TO zep_app",
                'GRANT SELECT ON LARGE OBJECT 94000 TO "alice@contoso.com"',
            ],
        },
        platform_roles=("pgw_auditor", "dba@contoso.com"),
    )
    snapshot, results = scenario.scan()
    yield scenario, snapshot, results


def test_roles_carry_their_entra_kind_and_object_id(
    entra_scan: tuple[Scenario, Snapshot, Results],
) -> None:
    _, snapshot, _ = entra_scan
    pg = snapshot.servers[0].postgres
    assert pg is not None and pg.gap("entra_labels") is None
    roles = {r.name: (r.entra_kind, r.entra_object_id) for r in pg.roles}
    assert roles["secai-radar-mi"] == ("service", RADAR_MI)
    assert roles["alice@contoso.com"] == ("user", ALICE)
    assert roles["dba@contoso.com"] == ("user", DBA)
    assert roles["data-team"] == ("group", DATA_TEAM)
    assert roles["secairadar_app"] == (None, None)


def test_entra_findings(entra_scan: tuple[Scenario, Snapshot, Results]) -> None:
    _, _, results = entra_scan
    assert keys(results, rules=ENTRA) == {
        ("PGW-ENTRA-001", "role/secairadar_app", "role/secairadar_app"),
        ("PGW-ENTRA-002", "database/zep", "role/alice@contoso.com"),
        ("PGW-ENTRA-003", "role/data-team", "role/data-team"),
    }
    assert not keys(results, status="error", rules=ENTRA)


def test_holdings_the_auditor_cannot_read_are_an_error_not_a_pass(
    entra_scan: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, _, before = entra_scan
    _, results, zep = scenario.scan_refused("zep", "pg_class")
    assert zep.unread == {"relations": "permission denied for table pg_class"}
    # Both rules that weigh what Entra roles hold say what they could not see in zep.
    assert keys(results, status="error", rules=ENTRA) == {
        ("PGW-ENTRA-002", "database/zep", None),
        ("PGW-ENTRA-003", "database/zep", None),
    }
    error = finding(results, "PGW-ENTRA-002", "database/zep", None)
    assert error.message == (
        "PGW-ENTRA-002 cannot see all that roles hold in their own name in database 'zep' "
        "of app 'zep': its tables, views and sequences (permission denied for table "
        "pg_class) could not be read"
    )
    # What could be read is judged as before: the person's CONNECT and large object.
    assert keys(results, rules=ENTRA) == keys(before, rules=ENTRA)
    person = finding(results, "PGW-ENTRA-002", "database/zep", "role/alice@contoso.com")
    assert person.evidence["holds"] == ["CONNECT on database zep", "SELECT on large object 94000"]


def test_the_identity_role_belongs_to_its_app(
    entra_scan: tuple[Scenario, Snapshot, Results],
) -> None:
    _, _, results = entra_scan
    # Mapped through identities: neither a stray login nor a foreign one in secairadar.
    everything = keys(results, rules=("PGW-ROLE-004", "PGW-ISO-002"))
    assert not [k for k in everything if k[2] == "role/secai-radar-mi"]
    assert ("PGW-ROLE-004", "role/alice@contoso.com", "role/alice@contoso.com") in everything
    server = results.servers[0]
    assert {(e.role, e.kind, e.object_id, e.app) for e in server.entra_roles or ()} == {
        ("alice@contoso.com", "user", ALICE, None),
        ("data-team", "group", DATA_TEAM, None),
        ("dba@contoso.com", "user", DBA, None),
        ("secai-radar-mi", "service", RADAR_MI, "secai-radar"),
    }


def test_evidence_and_fixes(entra_scan: tuple[Scenario, Snapshot, Results]) -> None:
    scenario, _, results = entra_scan
    password = finding(results, "PGW-ENTRA-001", "role/secairadar_app", "role/secairadar_app")
    assert password.app == "secai-radar"
    assert password.evidence["entra_roles"] == ["secai-radar-mi"]
    assert password.evidence["identities"] == [RADAR_MI]
    assert "ALTER ROLE secairadar_app NOLOGIN;" in str(password.remediation)
    assert "pgaadauth_create_principal_with_oid" not in str(password.remediation)

    person = finding(results, "PGW-ENTRA-002", "database/zep", "role/alice@contoso.com")
    assert person.app == "zep"
    assert person.evidence["object_id"] == ALICE
    assert person.evidence["holds"] == [
        "CONNECT on database zep",
        'SELECT on table "public".memories',
        "SELECT on large object 94000",
    ]
    group = finding(results, "PGW-ENTRA-003", "role/data-team", "role/data-team")
    assert group.severity == "high"
    assert group.evidence["apps"] == {
        "secai-radar": ["secairadar"],
        "zep": ["zep (through zep_app)"],
    }
    # The fixes work: run them, scan again, the findings are gone.
    with scenario.superuser("zep") as conn:
        for line in str(person.remediation).splitlines():
            if not line.startswith("--"):
                conn.execute(line)
    with scenario.superuser() as conn:
        conn.execute('REVOKE zep_app FROM "data-team"')
    after = keys(scenario.scan()[1], rules=ENTRA)
    assert after == {("PGW-ENTRA-001", "role/secairadar_app", "role/secairadar_app")}


def test_policy_switch_and_round_trip(entra_scan: tuple[Scenario, Snapshot, Results]) -> None:
    scenario, snapshot, results = entra_scan
    assert_round_trip(scenario, snapshot, results)
    relaxed = Scenario(
        scenario.server,
        scenario.apps,
        scenario.passwords,
        scenario.platform_roles,
        policy=scenario.policy + "\nrequire_entra_app_logins = false",
    )
    assert not keys(relaxed.evaluate(snapshot), rules=("PGW-ENTRA-001",))


def test_hidden_labels_are_an_error_not_a_pass(pg_server: LocalServer) -> None:
    scenario = build_scenario(
        pg_server,
        [App("secai-radar", ("secairadar",), ("secairadar_app",), identities=(RADAR_MI,))],
    )
    with scenario.superuser() as conn:
        conn.execute("REVOKE SELECT ON pg_catalog.pg_shseclabel FROM PUBLIC")
    try:
        snapshot, results = scenario.scan()
    finally:
        with scenario.superuser() as conn:
            conn.execute("GRANT SELECT ON pg_catalog.pg_shseclabel TO PUBLIC")
    pg = snapshot.servers[0].postgres
    assert pg is not None
    gap = pg.gap("entra_labels")
    assert gap is not None and "permission denied" in gap.reason
    # The rest of the collection went on: roles, memberships and databases are there.
    assert {r.name for r in pg.roles} >= {"secairadar_app", "pgw_auditor"}
    assert pg.detail("secairadar") is not None
    assert {f.rule_id for f in results.findings if f.status == "error"} >= set(ENTRA)
