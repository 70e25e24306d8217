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

from pgwarden.access.grants import Access
from pgwarden.cli.localpg import LocalServer
from pgwarden.model.evidence import MAX_LISTED
from pgwarden.rules.isolation._evidence import Exposure, held_query
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
    objects = {object_name for object_name, _privilege in rows}
    assert len(objects) == total
    assert 'SCHEMA "Sch""ema"' in objects
    assert ('RELATION "Sch""ema".owned', "OWNER") in rows
    assert ('COLUMN "Sch""ema"."col t"."sec ret"', "SELECT") in rows
    assert ("LARGE OBJECT 95000", "SELECT") in rows
    assert all(("RELATION " + f'"Sch""ema".{table}', "SELECT") in rows for table in TABLES)
    # The first items shown are the first of the whole list, sorted.
    qualified = '"Sch""ema"'
    expected = [
        '1 table in "held db"',  # what the group owns, counted
        f'COLUMN {qualified}."col t"."sec ret"',
        "LARGE OBJECT 95000",
        f"SCHEMA {qualified}",
        *(f"TABLE {qualified}.{table}" for table in TABLES),
    ]
    assert held_on == expected[:MAX_LISTED], held_on


def test_the_query_reads_columns_and_large_objects_only_for_a_finding_holding_some() -> None:
    # Each costs every such finding a select more in its text: 3,000 findings of a
    # server of unmapped logins would carry 0.7 MB more for catalogs they hold nothing in.
    plain = held_query("r")
    assert "pg_attribute" not in plain and "pg_largeobject_metadata" not in plain
    both = held_query("r", ("COLUMN", "LARGE OBJECT"))
    assert "pg_attribute" in both and "pg_largeobject_metadata" in both


def test_large_objects_owned_through_a_group_put_them_in_the_query() -> None:
    # An ownership's target counts what is owned ("1 large object in ..."): the query
    # must then list large objects, as rows held as OWNER.
    exposure = Exposure("database/db", "role/stray", "app", "db")
    exposure.add(Access("stray", ("ALL",), "owner", "grp"), [], '1 table in "db"')
    assert exposure.sparse() == frozenset()
    exposure.add(Access("stray", ("ALL",), "owner", "grp"), [], '1 large object in "db"')
    assert exposure.sparse() == {"LARGE OBJECT"}
