"""A SQL_ASCII database, and names that are not UTF-8, against a real server.

A database created with ``ENCODING 'SQL_ASCII'`` stores the bytes it is given, unchecked:
its catalogs, and the shared ones when a role or database is created from it, may hold
names that are not valid UTF-8. Such a database once sank the whole server's audit
(psycopg read its text as bytes), and so did one role named from it (a decoding error
on the server-wide role list). Now pgwarden reads such text with each byte that is not
UTF-8 escaped (``caf\\xe9``), judges it like any other, and says when two names read
alike so (the analysis knows roles and databases by name): the scan is then incomplete.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.postgres.collector import PostgresCollector
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from tests.rules.scenario import (
    AUDITOR,
    App,
    Scenario,
    assert_round_trip,
    build_scenario,
    finding,
    keys,
)

pytestmark = pytest.mark.versioned

APPS = (
    App("alpha", ("alpha_db",), ("alpha_app",)),
    App("legacy", ("legacy_db",), ("legacy_app",)),
)
# A table and a login role whose names hold the byte 0xE9 (é in Latin-1), as a client
# writing Latin-1 into a SQL_ASCII database makes them; and how pgwarden reads them.
CAFE, STRAY = b'"caf\xe9"', b'"stray\xe9"'
CAFE_READ, STRAY_READ = "caf\\xe9", "stray\\xe9"


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer) -> tuple[Scenario, Snapshot, Results]:
    scenario = build_scenario(
        pg_server,
        APPS,
        sql_ascii=("legacy_db",),
        database_sql={
            "legacy_db": [
                b"CREATE SCHEMA app AUTHORIZATION legacy_app",
                b"CREATE TABLE app." + CAFE + b" (id int)",
                b"ALTER TABLE app." + CAFE + b" OWNER TO legacy_app",
                b"GRANT SELECT ON app." + CAFE + b" TO alpha_app",
                b"CREATE TABLE app.plain (id int)",
                b"ALTER TABLE app.plain OWNER TO legacy_app",
                b"GRANT SELECT ON app.plain TO alpha_app",
                # A role made from here: its name, not UTF-8, is in the shared catalog.
                b"CREATE ROLE " + STRAY + b" LOGIN",
                b"GRANT CONNECT ON DATABASE alpha_db TO " + STRAY,
            ],
        },
    )
    snapshot, results = scenario.scan()
    return scenario, snapshot, results


def test_the_database_and_the_names_are_read_and_judged(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, snapshot, results = scanned
    pg = snapshot.servers[0].postgres
    assert pg is not None and not pg.gaps
    legacy = pg.detail("legacy_db")
    assert legacy is not None and legacy.collected and not legacy.unread
    assert {g.name for g in legacy.object_grants if g.grantee == "alpha_app"} == {
        CAFE_READ,
        "plain",
    }
    assert STRAY_READ in {r.name for r in pg.roles}
    found = keys(results)
    assert {
        ("PGW-ISO-004", f"table/legacy_db.app.{CAFE_READ}", "role/alpha_app"),
        ("PGW-ISO-004", "table/legacy_db.app.plain", "role/alpha_app"),
        ("PGW-ROLE-004", f"role/{STRAY_READ}", f"role/{STRAY_READ}"),
        ("PGW-ISO-002", "database/alpha_db", f"role/{STRAY_READ}"),
    } <= found
    assert not keys(results, status="error")
    assert results.scan.complete
    # Written and read back like any text (a lone surrogate could not be).
    assert Results.model_validate_json(results.model_dump_json()) == results
    assert_round_trip(scenario, snapshot, results)


def test_a_remediation_names_the_escaped_text(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """PostgreSQL reads the escaped text as another name: where no object is so named,
    the script fails as written (the README says to fix such an object by hand)."""
    scenario, _, results = scanned
    leak = finding(results, "PGW-ISO-004", f"table/legacy_db.app.{CAFE_READ}", "role/alpha_app")
    assert leak.remediation is not None and CAFE_READ in leak.remediation
    with scenario.superuser("legacy_db") as conn, pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute(leak.remediation.encode())


def test_a_scan_that_starts_in_the_sql_ascii_database_reads_the_same(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """The server-wide catalogs read from a session in the SQL_ASCII database."""
    scenario, snapshot, _ = scanned
    there = PostgresCollector(
        scenario.dsn(AUDITOR, "legacy_db"), session_samples=1, session_window_seconds=0
    ).collect()
    here = snapshot.servers[0].postgres
    assert here is not None and not there.gaps
    assert there.roles == here.roles and there.databases == here.databases
    assert there.memberships == here.memberships
    assert there.database_details == here.database_details


@pytest.fixture
def alike(scanned: tuple[Scenario, Snapshot, Results]) -> Iterator[Scenario]:
    """A role and a database named with the backslash the escaped names show, beside a
    database made from legacy_db whose name holds the byte."""
    scenario = scanned[0]
    twin = sql.Identifier(STRAY_READ)
    with scenario.superuser() as conn:
        conn.autocommit = True
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(twin))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("old\\xe9")))
    with scenario.superuser("legacy_db") as conn:
        conn.autocommit = True
        conn.execute(b'CREATE DATABASE "old\xe9"')
    try:
        yield scenario
    finally:
        with scenario.superuser("legacy_db") as conn:
            conn.autocommit = True
            conn.execute(b'DROP DATABASE "old\xe9"')
        with scenario.superuser() as conn:
            conn.autocommit = True
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier("old\\xe9")))
            conn.execute(sql.SQL("DROP ROLE {}").format(twin))


def test_names_that_read_alike_are_a_gap_not_a_guess(alike: Scenario) -> None:
    snapshot, results = alike.scan()
    pg = snapshot.servers[0].postgres
    assert pg is not None
    roles, databases = pg.gap("roles"), pg.gap("databases")
    assert roles is not None and databases is not None
    assert roles.reason == (
        f"more than one role reads as {STRAY_READ!r} once the bytes of its name that are "
        "not UTF-8 are escaped: the roles so named are not told apart"
    )
    assert repr("old\\xe9") in databases.reason
    # Neither database so named was read: which one a login by that name opens is unknown.
    assert pg.detail("old\\xe9") is None
    assert not results.scan.complete
