"""A tenant cannot feed the audit look-alike catalogs through its database's search_path.

The owner of an app database may ``ALTER DATABASE ... SET search_path = mine,
pg_catalog``: every session there then finds ``mine.pg_class`` before the real
``pg_catalog.pg_class``. pgwarden's queries name the catalogs unqualified, so a schema of
views that hide rows would hide a grant to another app from the audit. Its sessions set
their own search_path in the login (which overrides the database's and the role's), and
the hidden grant is found.
"""

from __future__ import annotations

import pytest
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.postgres.session import connect
from pgwarden.model.results import Results
from tests.rules.scenario import AUDITOR, App, build_scenario, keys

pytestmark = pytest.mark.versioned

APPS = (
    App("alpha", ("alpha_db",), ("alpha_app",)),
    App("beta", ("beta_db",), ("beta_app",)),
)
# The catalogs the audit reads in a database, each shadowed by a view showing nothing.
SHADOWED = ("pg_namespace", "pg_class", "pg_proc", "pg_default_acl", "pg_extension")
LEAKS = {
    ("PGW-ISO-004", "table/alpha_db.app.ledger", "role/beta_app"),
    ("PGW-ISO-006", "schema/alpha_db.app", "role/beta_app"),
}


def _scan(scenario_server: LocalServer, shadowed: bool) -> Results:
    scenario = build_scenario(
        scenario_server,
        APPS,
        database_sql={
            "alpha_db": [
                "CREATE SCHEMA app AUTHORIZATION alpha_app",
                "CREATE TABLE app.ledger (id int)",
                "ALTER TABLE app.ledger OWNER TO alpha_app",
                "GRANT SELECT ON app.ledger TO beta_app",
                "ALTER DEFAULT PRIVILEGES FOR ROLE alpha_app IN SCHEMA app "
                "GRANT SELECT ON TABLES TO beta_app",
            ]
            + (
                [
                    "CREATE SCHEMA shadow",
                    "GRANT USAGE ON SCHEMA shadow TO PUBLIC",
                    *(
                        sql.SQL(
                            "CREATE VIEW shadow.{0} AS SELECT * FROM pg_catalog.{0} WHERE false"
                        ).format(sql.Identifier(name))
                        for name in SHADOWED
                    ),
                    *(f"GRANT SELECT ON shadow.{name} TO PUBLIC" for name in SHADOWED),
                    "ALTER DATABASE alpha_db SET search_path = shadow, pg_catalog",
                ]
                if shadowed
                else []
            ),
        },
    )
    if shadowed:
        # What an ordinary session there sees: the look-alikes.
        with scenario.superuser("alpha_db") as conn:
            row = conn.execute("SELECT count(*) FROM pg_class").fetchone()
            assert row is not None and row[0] == 0
    return scenario.scan()[1]


def test_a_shadowed_catalog_hides_nothing(pg_server: LocalServer) -> None:
    plain = keys(_scan(pg_server, shadowed=False))
    assert plain >= LEAKS
    shadowed = keys(_scan(pg_server, shadowed=True))
    # Every finding of the plain server is found; the look-alikes themselves are views
    # PUBLIC may read, each its own finding.
    assert shadowed - plain == {
        ("PGW-ISO-004", f"table/alpha_db.shadow.{name}", "PUBLIC") for name in SHADOWED
    }
    assert plain <= shadowed


def test_every_session_names_the_system_catalogs_first(pg_server: LocalServer) -> None:
    scenario = build_scenario(
        pg_server,
        APPS,
        database_sql={"alpha_db": ["ALTER DATABASE alpha_db SET search_path = public"]},
    )
    with connect(scenario.dsn(AUDITOR, "alpha_db")) as conn:
        row = conn.execute("SHOW search_path").fetchone()
    assert row is not None and row["search_path"] == "pg_catalog,pg_temp"
