"""PGW-ISO-004 names what a membership hands over, capped, and how to list all of it.

A login of no app that belongs to an app's read-only group holds every grant of the
group: the finding names the first objects, sorted, counts them all, and gives a query
that, run in the database, lists every one of them (with hostile names, as the catalog
spells them).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from pgwarden.model.evidence import MAX_LISTED
from pgwarden.rules.isolation._evidence import held_query
from tests.rules.scenario import AUDITOR, App, Scenario, build_scenario, finding

DB = "held db"
OWNER = "held_owner"
GROUP = 'held "ro"'
STRAY = "stray login"
SCHEMA = 'Sch"ema'
TABLES = [f"t{n:03d}" for n in range(MAX_LISTED + 7)]


@pytest.fixture(scope="module")
def held(pg_server: LocalServer) -> Scenario:
    i = sql.Identifier
    tables = [
        statement
        for table in TABLES
        for statement in (
            sql.SQL("CREATE TABLE {}.{} (id int)").format(i(SCHEMA), i(table)),
            sql.SQL("GRANT SELECT ON {}.{} TO {}").format(i(SCHEMA), i(table), i(GROUP)),
        )
    ]
    return build_scenario(
        pg_server,
        (App("held", (DB,), (OWNER,)),),
        server_sql=[
            sql.SQL("CREATE ROLE {} NOLOGIN").format(i(GROUP)),
            sql.SQL("CREATE ROLE {} LOGIN").format(i(STRAY)),
            sql.SQL("GRANT {} TO {}").format(i(GROUP), i(STRAY)),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(i(DB), i(GROUP)),
        ],
        database_sql={
            DB: [
                sql.SQL("CREATE SCHEMA {}").format(i(SCHEMA)),
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(i(SCHEMA), i(GROUP)),
                *tables,
                # Owned by the group: held through it as ownership.
                sql.SQL("CREATE TABLE {}.owned (id int)").format(i(SCHEMA)),
                sql.SQL("ALTER TABLE {}.owned OWNER TO {}").format(i(SCHEMA), i(GROUP)),
                # A column and a large object, granted to the group.
                sql.SQL('CREATE TABLE {}."col t" (id int, "sec ret" text)').format(i(SCHEMA)),
                sql.SQL('GRANT SELECT ("sec ret") ON {}."col t" TO {}').format(i(SCHEMA), i(GROUP)),
                sql.SQL("SELECT lo_create(95000)"),
                sql.SQL("GRANT SELECT ON LARGE OBJECT 95000 TO {}").format(i(GROUP)),
            ]
        },
    )


def test_held_on_is_capped_sorted_and_the_query_lists_every_object(held: Scenario) -> None:
    _, results = held.scan()
    found = finding(results, "PGW-ISO-004", f"database/{DB}", f"role/{STRAY}")
    evidence = found.evidence
    held_on = evidence["held_on"]
    total = len(TABLES) + 4  # the schema, the owned table, a column, a large object too
    assert len(held_on) == MAX_LISTED
    assert held_on == sorted(held_on)
    assert evidence["held_on_total"] == total
    query = evidence["held_on_more"]
    # Run as the auditor (read-only, no membership of its own): what the finding says.
    with psycopg.connect(held.dsn(AUDITOR, DB), autocommit=True) as conn:
        rows = conn.execute(query).fetchall()
    qualified = '"Sch""ema"'
    assert len(rows) == total
    assert ("schema", qualified, False) in rows
    assert ("table", f"{qualified}.owned", True) in rows
    assert ("table column", f'{qualified}."col t"."sec ret"', False) in rows
    assert ("large object", "95000", False) in rows
    assert all(("table", f"{qualified}.{table}", False) in rows for table in TABLES)
    # The first items shown are the first of the whole list, sorted.
    expected = [
        '1 table in "held db"',  # what the group owns, counted
        f'COLUMN {qualified}."col t"."sec ret"',
        "LARGE OBJECT 95000",
        f"SCHEMA {qualified}",
        *(f"TABLE {qualified}.{table}" for table in TABLES),
    ]
    assert held_on == expected[:MAX_LISTED], held_on
    # The fix ends the membership: the server's, not the database's, so the script does
    # not send anyone to the database first.
    assert found.remediation is not None
    statements = [ln for ln in found.remediation.splitlines() if not ln.startswith("--")]
    assert [s.split(" GRANTED BY ")[0].rstrip(";") for s in statements] == [
        'REVOKE "held ""ro""" FROM "stray login"'
    ]
    assert "run in database" not in found.remediation
    assert "the leak is this membership" in found.remediation


def test_the_query_names_the_role_once_quoted() -> None:
    # Every capped finding carries it: 3,000 findings of a server of unmapped logins
    # carried 1.6 MB of the query over each catalog.
    query = held_query("it's")
    assert query.count("'it''s'") == 1
    assert len(query) < 300
