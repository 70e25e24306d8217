"""Ways in that one fix ends share one block of the remediation script.

An app's read-only group is commonly given default privileges on tables, sequences and
functions alike: a login of no app in that group reaches all three, and revoking its
one membership ends all three. Its one finding on the database (what a group is given
by default is handed to each member once, however many schemas it covers) says so in
one block naming the three, instead of three comments of which two explain nothing;
through a group of no app, each default privilege stays an alternative. One fix of two
memberships names both. A fix that only ends memberships (the server's) does not send
anyone to the database first; one whose alternatives run there does. Each script, run
as written, removes its finding and nothing else.
"""

from __future__ import annotations

import pytest
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from tests.rules.scenario import (
    App,
    Scenario,
    apply_remediation,
    build_scenario,
    finding,
    keys,
)

pytestmark = pytest.mark.versioned

DB = "alpha_db"
OWNER = "alpha_app"
READERS = "alpha_ro"  # the app's own group: meant to hold what it is given
NEUTRAL = "readers"  # a group of no app
STRAY = "stray"
OTHER = "other_stray"
TWICE = "twice"  # in the app's group through two teams of no app
TEAMS = ("team_a", "team_b")
KINDS = (("TABLES", "SELECT"), ("SEQUENCES", "USAGE"), ("FUNCTIONS", "EXECUTE"))


@pytest.fixture(scope="module")
def shared(pg_server: LocalServer) -> Scenario:
    i = sql.Identifier
    defaults = [
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA app GRANT {} ON {} TO {}").format(
            i(OWNER), sql.SQL(privilege), sql.SQL(kind), i(group)
        )
        for group in (READERS, NEUTRAL)
        for kind, privilege in KINDS
    ]
    return build_scenario(
        pg_server,
        (App("alpha", (DB,), (OWNER, READERS)),),
        server_sql=[
            sql.SQL("CREATE ROLE {} NOLOGIN").format(i(NEUTRAL)),
            sql.SQL("CREATE ROLE {} LOGIN").format(i(STRAY)),
            sql.SQL("CREATE ROLE {} LOGIN").format(i(OTHER)),
            sql.SQL("GRANT {} TO {}").format(i(READERS), i(STRAY)),
            sql.SQL("GRANT {} TO {}").format(i(NEUTRAL), i(OTHER)),
            sql.SQL("CREATE ROLE {} LOGIN").format(i(TWICE)),
            *(
                statement
                for team in TEAMS
                for statement in (
                    sql.SQL("CREATE ROLE {} NOLOGIN").format(i(team)),
                    sql.SQL("GRANT {} TO {}").format(i(READERS), i(team)),
                    sql.SQL("GRANT {} TO {}").format(i(team), i(TWICE)),
                )
            ),
        ],
        database_sql={
            DB: [
                sql.SQL("CREATE SCHEMA app AUTHORIZATION {}").format(i(OWNER)),
                *defaults,
                sql.SQL("CREATE TABLE app.orders (id int)"),
                sql.SQL("GRANT SELECT ON app.orders TO {}").format(i(READERS)),
            ]
        },
    )


def _lines(script: str | None) -> tuple[list[str], list[str]]:
    assert script
    lines = script.splitlines()
    return [ln for ln in lines if ln.startswith("--")], [
        ln for ln in lines if not ln.startswith("--")
    ]


def _names_every_kind(comment: str) -> bool:
    return all(f"future {kind} of {OWNER} in schema app" in comment for kind, _ in KINDS)


def test_one_membership_one_block(shared: Scenario) -> None:
    _, results = shared.scan()
    found = finding(results, "PGW-ISO-006", f"database/{DB}", f"role/{STRAY}")
    assert len(found.evidence["access"]) == 3
    comments, statements = _lines(found.remediation)
    assert [s.split(" GRANTED BY ")[0].rstrip(";") for s in statements] == [
        f"REVOKE {READERS} FROM {STRAY}"
    ]
    (comment,) = comments
    assert _names_every_kind(comment)
    assert comment.endswith(
        f"'{READERS}' is meant to hold it: revoke this membership, not the grant"
    )


def test_through_a_group_of_no_app_each_grant_stays_an_alternative(shared: Scenario) -> None:
    _, results = shared.scan()
    found = finding(results, "PGW-ISO-006", f"database/{DB}", f"role/{OTHER}")
    comments, statements = _lines(found.remediation)
    assert [s.split(" GRANTED BY ")[0].rstrip(";") for s in statements] == [
        f"REVOKE {NEUTRAL} FROM {OTHER}"
    ]
    # The alternatives revoke default privileges: they run in the database.
    assert comments[0] == f"-- run in database {DB} (psql: \\connect {DB})"
    assert _names_every_kind(comments[1])
    assert comments[1].endswith(
        f"'{NEUTRAL}' is a group of no app: revoke this membership (or its grant)"
    )
    alternatives = sorted(c for c in comments if c.startswith("-- alternative: "))
    assert alternatives == sorted(
        f"-- alternative: ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA app REVOKE "
        f"{privilege} ON {kind} FROM {NEUTRAL};"
        for kind, privilege in KINDS
    )
    assert len(comments) == 5


def test_two_memberships_are_each_named(shared: Scenario) -> None:
    # Through two teams, one fix is two REVOKEs: the comment names both memberships.
    _, results = shared.scan()
    named = f"the memberships of '{TWICE}' in '{TEAMS[0]}', of '{TWICE}' in '{TEAMS[1]}'"
    defaults = finding(results, "PGW-ISO-006", f"database/{DB}", f"role/{TWICE}")
    comments, statements = _lines(defaults.remediation)
    assert [s.split(" GRANTED BY ")[0].rstrip(";") for s in statements] == [
        f"REVOKE {team} FROM {TWICE}" for team in TEAMS
    ]
    (comment,) = comments
    assert comment.endswith(f"'{READERS}' is meant to hold it: revoke {named}, not the grant")
    assert f"{TWICE} → {TEAMS[0]} → {READERS} → future TABLES of {OWNER}" in comment
    objects = finding(results, "PGW-ISO-004", f"database/{DB}", f"role/{TWICE}")
    assert f"'{READERS}' may keep them; the leaks are {named}" in str(objects.remediation)


@pytest.mark.parametrize("principal", [STRAY, OTHER, TWICE])
def test_the_shared_fix_removes_the_finding(shared: Scenario, principal: str) -> None:
    key = ("PGW-ISO-006", f"database/{DB}", f"role/{principal}")
    _, before = shared.scan()
    assert key in keys(before)
    apply_remediation(shared, finding(before, *key))
    _, after = shared.scan()
    # Nothing new; ending the membership may end the principal's other findings through
    # it (its CONNECT through the app's group, PGW-ISO-002), never another principal's.
    assert key not in keys(after) and keys(after) <= keys(before)
    assert {k for k in keys(before) - keys(after) if k[2] != f"role/{principal}"} == set()
