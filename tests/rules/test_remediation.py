"""Hostile identifiers end to end, and remediation that really removes the finding.

Every name here would break naive SQL: mixed case, spaces, embedded double quotes,
unicode, a reserved word, SQL-looking text, and a line break (which must not end a
``--`` comment in a remediation script). The scan must name them exactly as the catalog
does; each generated remediation, run as written by the superuser, must remove its own
finding on the next scan and create no new one.
"""

from __future__ import annotations

import pytest
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from tests.rules.scenario import (
    AUDITOR,
    App,
    Key,
    Scenario,
    apply_remediation,
    assert_round_trip,
    build_scenario,
    finding,
    granted_by,
    keys,
    old_public_schemas,
    version_of,
)

pytestmark = pytest.mark.versioned

DB_A = 'Données "Prod"; DROP DATABASE x; --'
DB_B = "Beta DB"
ROLE_A = "Alpha App"
ROLE_B = 'x"; DROP TABLE y; --'
ROLE_C = "user"
GROUP = 'Read Only "grp"\nDROP ROLE postgres; --'
SCHEMA = "My Schema"
TABLE = 'Ünï "tbl"'

APPS = (
    App("Ünïcode app", (DB_A,), (ROLE_A,)),
    App("beta", (DB_B,), (ROLE_B,)),
    App("gamma", ("gamma",), (ROLE_C,)),
)

EXPECTED: set[Key] = {
    ("PGW-ISO-001", f"database/{DB_B}", "PUBLIC"),
    ("PGW-ISO-005", f"database/{DB_B}", "PUBLIC"),
    ("PGW-ISO-002", f"database/{DB_A}", f"role/{ROLE_B}"),
    ("PGW-ISO-002", f"database/{DB_A}", f"role/{ROLE_C}"),
    ("PGW-ISO-003", f"schema/{DB_A}.{SCHEMA}", "PUBLIC"),
    ("PGW-ISO-004", f"table/{DB_A}.{SCHEMA}.{TABLE}", f"role/{ROLE_B}"),
    ("PGW-ISO-006", f"schema/{DB_A}.{SCHEMA}", f"role/{ROLE_B}"),
    ("PGW-ROLE-001", f"role/{ROLE_B}", f"role/{ROLE_B}"),
    ("PGW-ROLE-002", "role/pg_write_all_data", f"role/{ROLE_B}"),
}


def _build(server: LocalServer) -> Scenario:
    i = sql.Identifier
    return build_scenario(
        server,
        APPS,
        public_connect=(DB_B,),
        server_sql=[
            sql.SQL("CREATE ROLE {} NOLOGIN").format(i(GROUP)),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(i(DB_A), i(ROLE_B)),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(i(DB_A), i(GROUP)),
            sql.SQL("GRANT {} TO {}").format(i(GROUP), i(ROLE_C)),
            sql.SQL("ALTER ROLE {} CREATEDB").format(i(ROLE_B)),
            sql.SQL("GRANT pg_write_all_data TO {}").format(i(ROLE_B)),
        ],
        database_sql={
            DB_A: [
                sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(i(SCHEMA), i(ROLE_A)),
                sql.SQL("GRANT CREATE ON SCHEMA {} TO PUBLIC").format(i(SCHEMA)),
                sql.SQL("CREATE TABLE {}.{} (id int)").format(i(SCHEMA), i(TABLE)),
                sql.SQL("ALTER TABLE {}.{} OWNER TO {}").format(i(SCHEMA), i(TABLE), i(ROLE_A)),
                sql.SQL("GRANT SELECT ON {}.{} TO {}").format(i(SCHEMA), i(TABLE), i(ROLE_B)),
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
                ).format(i(ROLE_A), i(SCHEMA), i(ROLE_B)),
            ]
        },
    )


@pytest.fixture(scope="module")
def hostile(pg_server: LocalServer) -> Scenario:
    return _build(pg_server)


def test_names_are_reported_exactly_as_the_catalog_has_them(hostile: Scenario) -> None:
    snapshot, results = hostile.scan()
    version = version_of(snapshot)
    assert keys(results) == EXPECTED | old_public_schemas(version, (DB_A, DB_B, "gamma"))
    assert not keys(results, status="error")
    via_group = finding(results, "PGW-ISO-002", f"database/{DB_A}", f"role/{ROLE_C}")
    (access,) = via_group.evidence["access"]
    # One direct membership: the principal and the grantee are the whole path.
    assert access["grantee"] == GROUP and "paths" not in access
    assert access["chain"] == f'user → {GROUP} → CONNECT on "Données ""Prod""; DROP DATABASE x; --"'
    assert access["acl_item"] == '"Read Only ""grp""\nDROP ROLE postgres; --"=c/pgw_admin'
    script = str(via_group.remediation).splitlines()
    # The membership is revoked with both names quoted ("user" is a reserved word), the
    # line break written as an escape PostgreSQL reads back: one line, nothing raw.
    assert (
        'REVOKE U&"Read Only ""grp""\\000ADROP ROLE postgres; --" '
        f'FROM "user"{granted_by(version)};'
    ) in script
    # In comments the line break is written as \n (or \000A, in a quoted name): it
    # cannot end the comment.
    comments = [line for line in script if line.startswith("--")]
    assert comments
    for comment in comments:
        assert "DROP ROLE postgres" not in comment or "\\n" in comment or "\\000A" in comment
    assert all(line.isprintable() for line in script)
    # Running every script below proves each reaches the named role and nothing else
    # is executed.
    assert_round_trip(hostile, snapshot, results)


def _order(key: Key) -> tuple[str, str, str]:
    return (key[0], key[1], key[2] or "")


def _case_id(key: object) -> str:
    return f"{key[0]}:{key[1]}" if isinstance(key, tuple) else str(key)


ORDERED: list[Key] = sorted(EXPECTED, key=_order)


@pytest.mark.parametrize(
    "key",
    ORDERED,
    ids=_case_id,
)
def test_remediation_removes_the_finding(hostile: Scenario, key: Key) -> None:
    """Each remediation, run as written, removes its own finding and nothing else.

    The cases run one after another on the same server; since each may only remove
    its own finding, every later case still finds its own.
    """
    _, before = hostile.scan()
    assert key in keys(before), "an earlier remediation removed more than its own finding"
    found = finding(before, *key)
    apply_remediation(hostile, found)
    _, after = hostile.scan()
    remaining = keys(after)
    assert key not in remaining, found.remediation
    assert remaining == keys(before) - {key}, f"changed: {remaining ^ (keys(before) - {key})}"
    # The fix must not lock the auditor out: the next scan is not blind anywhere.
    assert not keys(after, status="error")
    assert all(s.connected_as == AUDITOR for s in after.servers)


def test_old_public_schemas_are_fixed_as_written(hostile: Scenario) -> None:
    """Before PostgreSQL 15 every new database's public schema gives PUBLIC CREATE: each
    fix, run as written, removes its finding (from 15 the findings do not arise)."""
    snapshot, before = hostile.scan()
    old = old_public_schemas(version_of(snapshot), (DB_A, DB_B, "gamma"))
    assert {k for k in keys(before) if k[1].endswith(".public")} == old
    for key in sorted(old, key=lambda k: k[1]):
        apply_remediation(hostile, finding(before, *key))
    _, after = hostile.scan()
    assert keys(after) == keys(before) - old
