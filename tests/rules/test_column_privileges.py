"""Column privileges (``GRANT SELECT (c) ON t TO r``) against a real server.

A role of another app granted some columns of an app's table can read them as surely
as with a grant on the whole table: PGW-ISO-004 finds it, names the columns, and its
remediation (``REVOKE SELECT (c) ON TABLE t``) ends it. The server says which databases
hold column privileges (pg_shdepend); only those are read for them.
"""

from __future__ import annotations

import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.postgres import queries as q
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from tests.rules.scenario import (
    App,
    Scenario,
    apply_remediation,
    assert_round_trip,
    build_scenario,
    family,
    finding,
    keys,
)

pytestmark = pytest.mark.versioned

APPS = (
    App("alpha", ("alpha_db",), ("alpha_app", "alpha_reader")),
    App("beta", ("beta_db",), ("beta_app",)),
    App("gamma", ("gamma_db",), ("gamma_app",)),
)
CUSTOMERS = "table/alpha_db.alpha.customers"
HOSTILE = "note\x1b[31m\nDROP TABLE x;"
HOSTILE_SQL = 'U&"note\\001B[31m\\000ADROP TABLE x;"'


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer) -> tuple[Scenario, Snapshot, Results]:
    scenario = build_scenario(
        pg_server,
        APPS,
        server_sql=[
            'CREATE ROLE "Gamma Team" NOLOGIN',
            'GRANT "Gamma Team" TO gamma_app',
        ],
        database_sql={
            "alpha_db": [
                "CREATE SCHEMA alpha AUTHORIZATION alpha_app",
                'CREATE TABLE alpha.customers (id int, email text, "Card No" text, ssn text)',
                "ALTER TABLE alpha.customers OWNER TO alpha_app",
                # Another app's role, directly, on three columns, one named to run an
                # escape code and break the line where it is written raw.
                f"ALTER TABLE alpha.customers ADD COLUMN {HOSTILE_SQL} text",
                f"GRANT SELECT (id, email, {HOSTILE_SQL}) ON alpha.customers TO beta_app",
                # Another app's role, through a group, on a quoted column name.
                'GRANT UPDATE ("Card No") ON alpha.customers TO "Gamma Team"',
                # PUBLIC, in a database the server lists for its other column privileges.
                "GRANT SELECT (id) ON alpha.customers TO PUBLIC",
                # Look-alikes: the app's own role; a dropped column's privilege.
                "GRANT SELECT (ssn) ON alpha.customers TO alpha_reader",
                "ALTER TABLE alpha.customers ADD COLUMN old text",
                "GRANT SELECT (old) ON alpha.customers TO beta_app",
                "ALTER TABLE alpha.customers DROP COLUMN old",
            ],
            "gamma_db": [
                # Look-alike: no column privileges; the database is not read for them.
                "CREATE TABLE public.events (id int)",
                "ALTER TABLE public.events OWNER TO gamma_app",
            ],
        },
    )
    snapshot, results = scenario.scan()
    return scenario, snapshot, results


def test_another_apps_column_privileges_are_found(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    _, _, results = scanned
    assert family(keys(results), "PGW-ISO-004") == {
        ("PGW-ISO-004", CUSTOMERS, "role/beta_app"),
        ("PGW-ISO-004", CUSTOMERS, "PUBLIC"),
        ("PGW-ISO-004", "database/alpha_db", "role/gamma_app"),
    }
    beta = finding(results, "PGW-ISO-004", CUSTOMERS, "role/beta_app")
    assert beta.evidence["access"][0]["privileges"] == ["SELECT"]
    assert beta.evidence["object_type"] == "table"
    assert beta.evidence["columns"] == ["email", "id", HOSTILE]
    assert beta.message == (
        f"role 'beta_app' (app 'beta') holds SELECT on columns email, id, {HOSTILE_SQL} "
        "of table 'alpha_db.alpha.customers' of app 'alpha'"
    )
    revoke = "REVOKE SELECT ({}) ON TABLE alpha.customers FROM beta_app;"
    assert revoke.format(HOSTILE_SQL) in str(beta.remediation)
    assert "\x1b" not in str(beta.remediation) and "\x1b" not in beta.message
    public = finding(results, "PGW-ISO-004", CUSTOMERS, "PUBLIC")
    assert public.evidence["columns"] == ["id"]
    assert "REVOKE SELECT (id) ON TABLE alpha.customers FROM PUBLIC;" in str(public.remediation)
    assert "REVOKE SELECT (email) ON TABLE alpha.customers FROM beta_app;" in str(beta.remediation)
    gamma = finding(results, "PGW-ISO-004", "database/alpha_db", "role/gamma_app")
    assert gamma.evidence["access"][0]["chain"] == (
        'gamma_app → Gamma Team → UPDATE on COLUMN alpha.customers."Card No"'
    )


def test_the_remediation_ends_the_column_privileges(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, _, results = scanned
    for principal in ("role/beta_app", "PUBLIC"):
        apply_remediation(scenario, finding(results, "PGW-ISO-004", CUSTOMERS, principal))
    _, after = scenario.scan()
    assert family(keys(after), "PGW-ISO-004") == {
        ("PGW-ISO-004", "database/alpha_db", "role/gamma_app"),
    }


def test_only_databases_holding_column_privileges_are_read_for_them(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    _, snapshot, _ = scanned
    pg = snapshot.servers[0].postgres
    assert pg is not None and pg.stats is not None
    details = {d.name: d for d in pg.database_details}
    assert {g.column for g in details["alpha_db"].object_grants} == {
        "id",
        "email",
        HOSTILE,
        "Card No",
        "ssn",
    }
    assert not any(g.column for g in details["gamma_db"].object_grants)
    # The server-wide reads (the list of databases holding column privileges among
    # them), the session samples, each database's round trip, and one statement more
    # in alpha_db, the one database listed.
    server_wide = 7
    per_database = len(q.DATABASE_OBJECTS) * len(details)
    assert pg.stats.statements == server_wide + pg.session_samples + per_database + 1


def test_the_snapshot_round_trips(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    scenario, snapshot, results = scanned
    assert_round_trip(scenario, snapshot, results)
