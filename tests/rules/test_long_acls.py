"""An ACL that names many roles, one by one, is shown capped in every finding.

An app may give each of its users a grant of their own: a default privilege entry, or
EXECUTE on a SECURITY DEFINER routine, for each of hundreds of logins. Every
PGW-ISO-006 finding of such an entry showed its whole ACL (at 4,000 grantees, 10,000
findings of 85 KB each: 344 MB of results), and PGW-FUNC-002's script revoked EXECUTE
from each grantee in turn (500 statements). The entry's ACL is now its first items,
counted, with a query that lists them all; the script its first REVOKEs and a comment
with a query listing every grantee. Both queries are run here, as the auditor.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from pgwarden.model.evidence import MAX_LISTED
from tests.rules.scenario import AUDITOR, App, Scenario, build_scenario, finding

pytestmark = pytest.mark.versioned

DB = "long db"
OWNER = "long owner"
SCHEMA = 'Sch"ema'
USERS = [f"user {n:02d}" for n in range(MAX_LISTED + 10)]
# A finding stays a few kilobytes whatever the length of the ACLs behind it.
MAX_FINDING_BYTES = 4_096


@pytest.fixture(scope="module")
def long_acls(pg_server: LocalServer) -> Scenario:
    i = sql.Identifier
    users = sql.SQL(", ").join(i(u) for u in USERS)
    return build_scenario(
        pg_server,
        (App("long", (DB,), (OWNER,)),),
        server_sql=[
            *(sql.SQL("CREATE ROLE {} LOGIN").format(i(u)) for u in USERS),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(i(DB), users),
        ],
        database_sql={
            DB: [
                sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(i(SCHEMA), i(OWNER)),
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(i(SCHEMA), users),
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
                ).format(i(OWNER), i(SCHEMA), users),
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT USAGE ON SEQUENCES TO {}"
                ).format(i(OWNER), users),
                sql.SQL(
                    "CREATE FUNCTION {}.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'"
                ).format(i(SCHEMA)),
                sql.SQL("ALTER FUNCTION {}.f() OWNER TO {}").format(i(SCHEMA), i(OWNER)),
                sql.SQL("REVOKE EXECUTE ON FUNCTION {}.f() FROM PUBLIC").format(i(SCHEMA)),
                sql.SQL("GRANT EXECUTE ON FUNCTION {}.f() TO {}").format(i(SCHEMA), users),
            ]
        },
    )


def _rows(scenario: Scenario, query: str) -> list[tuple[object, ...]]:
    """``query`` run in the app's database as the auditor (read-only, as pgwarden)."""
    with psycopg.connect(scenario.dsn(AUDITOR, DB), autocommit=True) as conn:
        return conn.execute(query).fetchall()


def test_each_default_entry_shows_its_first_grantees_counted_and_listed_by_a_query(
    long_acls: Scenario,
) -> None:
    _, results = long_acls.scan()
    found = [f for f in results.findings if f.rule_id == "PGW-ISO-006"]
    # One finding per user for the schema's entry, one per user for the database's.
    assert {f.principal for f in found} == {f"role/{u}" for u in USERS}
    assert len(found) == 2 * len(USERS)
    for f in found:
        assert len(f.model_dump_json(exclude_none=True)) <= MAX_FINDING_BYTES, f.resource
        for entry in f.evidence["default_acl_entries"]:
            assert len(entry["defaclacl"]) == MAX_LISTED
            rows = _rows(long_acls, entry["defaclacl_more"])
            assert len(rows) == entry["defaclacl_total"] >= len(USERS)
            kind = {"table": "r", "sequence": "S"}[entry["object_type"]]
            assert {r[0] for r in rows} == {kind}
    in_schema = finding(results, "PGW-ISO-006", f"schema/{DB}.{SCHEMA}", f"role/{USERS[0]}")
    (entry,) = in_schema.evidence["default_acl_entries"]
    assert entry["schema"] == SCHEMA and entry["defaclacl_total"] == len(USERS)


def test_a_routine_granted_to_each_user_revokes_the_first_and_lists_every_grantee(
    long_acls: Scenario,
) -> None:
    _, results = long_acls.scan()
    (found,) = [f for f in results.findings if f.rule_id == "PGW-FUNC-002"]
    assert found.evidence["callers_total"] == len(USERS)
    assert len(found.model_dump_json(exclude_none=True)) <= MAX_FINDING_BYTES
    script = (found.remediation or "").splitlines()
    revokes = [line for line in script if line.startswith("REVOKE EXECUTE")]
    assert len(revokes) == MAX_LISTED
    (rest,) = [line for line in script if "more like these" in line]
    assert "and 10 more like these" in rest
    query = rest.split("(every grantee: ", 1)[1].removesuffix(")")
    grantees = {str(r[0]).strip('"') for r in _rows(long_acls, query)}
    assert set(USERS) <= grantees
