"""A catalog the auditor may not read costs its section of the database, not the database.

Each database's catalogs are read in one round trip of seven statements
(``queries.DATABASE_OBJECTS``). A server may refuse one of them: SELECT on a catalog
revoked from PUBLIC (a hardening some self-managed servers apply to ``pg_proc``, to hide
routines' source), or a statement timeout on a very large catalog. The statements are
then sent again one at a time: each refused loses its section (``DatabaseDetail.unread``)
and every rule that needed it reports an ``error`` for that database, while the rest of
the database, and every other database, is judged as before. Only the schemas, without
which nothing in a database can be named, lose the database.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.postgres import queries as q
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from pgwarden.rules.registry import load_rules
from tests.rules.scenario import (
    App,
    Key,
    Scenario,
    assert_round_trip,
    build_scenario,
    finding,
    keys,
)

pytestmark = pytest.mark.versioned

APPS = (
    App("alpha", ("alpha_db",), ("alpha_app",)),
    App("beta", ("beta_db",), ("beta_app",)),
)
ALPHA = "database/alpha_db"
EVERY_RULE = tuple(entry.rule.id for entry in load_rules())


def _leaks(owner: str, other: str, other_db: str, port: int) -> list[str]:
    """A table and a SECURITY DEFINER routine of ``owner`` granted to ``other``,
    default privileges for it, dblink, and a postgres_fdw server into ``other_db``."""
    return [
        f"CREATE SCHEMA app AUTHORIZATION {owner}",
        "CREATE TABLE app.notes (id int)",
        f"ALTER TABLE app.notes OWNER TO {owner}",
        f"GRANT SELECT ON app.notes TO {other}",
        "CREATE FUNCTION app.tally() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
        f"ALTER FUNCTION app.tally() OWNER TO {owner}",
        f"GRANT EXECUTE ON FUNCTION app.tally() TO {other}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA app "
        f"GRANT SELECT ON TABLES TO {other}",
        "CREATE EXTENSION dblink",
        "CREATE EXTENSION postgres_fdw",
        "CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw "
        f"OPTIONS (host '127.0.0.1', port '{port}', dbname '{other_db}')",
    ]


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer) -> tuple[Scenario, Snapshot, Results]:
    scenario = build_scenario(
        pg_server,
        APPS,
        database_sql={
            "alpha_db": _leaks("alpha_app", "beta_app", "beta_db", pg_server.port),
            "beta_db": _leaks("beta_app", "alpha_app", "alpha_db", pg_server.port),
        },
    )
    snapshot, results = scenario.scan()
    return scenario, snapshot, results


def _in_alpha(*rules: str) -> Callable[[Key], bool]:
    """A finding of one of ``rules`` on something in alpha_db."""
    return lambda key: (
        key[0].startswith(rules)
        and (key[1] == ALPHA or key[1].split("/", 1)[1].startswith("alpha_db."))
    )


# The catalog refused, the section lost with it, the rules that then report an error on
# alpha_db, and the findings that go with the section.
CASES: dict[str, tuple[str, tuple[str, ...], Callable[[Key], bool]]] = {
    "pg_class": ("relations", ("PGW-ISO-004",), lambda k: k[1].startswith("table/alpha_db.")),
    "pg_proc": (
        "routines",
        ("PGW-ISO-004", "PGW-FUNC-001", "PGW-FUNC-002", "PGW-FUNC-003"),
        lambda k: k[1].startswith("function/alpha_db.") or _in_alpha("PGW-FUNC-")(k),
    ),
    "pg_default_acl": ("default_privileges", ("PGW-ISO-006",), _in_alpha("PGW-ISO-006")),
    "pg_foreign_server": (
        "foreign_servers",
        ("PGW-CHAN-001", "PGW-CHAN-002", "PGW-CHAN-003"),
        _in_alpha("PGW-CHAN-"),
    ),
    # (PGW-EXT-001 judges extensions only against an allow-list; none is set here.)
    "pg_extension": ("extensions", ("PGW-EXT-002",), _in_alpha("PGW-EXT-002")),
    "pg_language": ("untrusted_languages", ("PGW-EXT-003",), _in_alpha("PGW-EXT-003")),
}


@pytest.mark.parametrize("catalog", sorted(CASES))
def test_a_refused_catalog_costs_its_section_only(
    scanned: tuple[Scenario, Snapshot, Results], catalog: str
) -> None:
    scenario, before_snapshot, before = scanned
    section, erring, lost = CASES[catalog]
    snapshot, results, alpha = scenario.scan_refused("alpha_db", catalog)
    reason = f"permission denied for table {catalog}"
    # alpha_db was read but for that section, which says why.
    assert alpha.collected and alpha.error is None
    assert alpha.unread == {section: reason}
    assert "app" in {s.name for s in alpha.schemas}
    # Each rule that needed it reports one error on alpha_db, saying why; no other errors.
    errors = keys(results, status="error", rules=EVERY_RULE)
    assert errors == {(rule, ALPHA, None) for rule in erring}
    for rule in erring:
        error = finding(results, rule, ALPHA, None)
        assert reason in error.message and error.evidence["unread"] == {section: reason}
    # What the section held is not judged (never passed); everything else is as before.
    failing = keys(before, rules=EVERY_RULE)
    gone = {key for key in failing if lost(key)}
    assert gone or catalog == "pg_language"  # no untrusted language to plant
    assert keys(results, rules=EVERY_RULE) == failing - gone
    assert_round_trip(scenario, snapshot, results)
    # The round trip, then the seven statements again one at a time, in alpha_db alone
    # (without its foreign servers, their user mappings are not asked for).
    pg, pg_before = snapshot.servers[0].postgres, before_snapshot.servers[0].postgres
    assert pg is not None and pg.stats is not None
    assert pg_before is not None and pg_before.stats is not None
    again = len(q.DATABASE_OBJECTS) - (catalog == "pg_foreign_server")
    assert pg.stats.statements - pg.session_samples == (
        pg_before.stats.statements - pg_before.session_samples + again
    )


def test_the_sections_are_every_statement_but_the_schemas() -> None:
    assert len(q.DATABASE_OBJECT_SECTIONS) == len(q.DATABASE_OBJECTS)
    assert q.DATABASE_OBJECT_SECTIONS[0] is None and "pg_namespace" in q.DATABASE_OBJECTS[0]
    assert set(q.DATABASE_OBJECT_SECTIONS[1:]) == {case[0] for case in CASES.values()}


def test_refused_schemas_lose_the_database_and_say_why(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, _, before = scanned
    _, results, alpha = scenario.scan_refused("alpha_db", "pg_namespace")
    assert not alpha.collected
    assert alpha.error == "permission denied for table pg_namespace"
    error = finding(results, "PGW-ISO-004", ALPHA, None)
    assert error.status == "error" and "pg_namespace" in error.message
    # beta_db is judged as before.
    assert {k for k in keys(results, rules=EVERY_RULE) if "beta_db" in k[1]} == {
        k for k in keys(before, rules=EVERY_RULE) if "beta_db" in k[1]
    }


def test_an_invalid_database_is_not_read_and_says_how_to_finish_it(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    """A database an interrupted DROP DATABASE left (datconnlimit -2): nobody can
    connect, so it is not tried (no gap); the rules that look inside say so, and how to
    end it."""
    scenario, _, before = scanned
    mark = "UPDATE pg_database SET datconnlimit = {} WHERE datname = 'beta_db'"
    scenario.execute("postgres", [mark.format(-2)])
    try:
        snapshot, results = scenario.scan()
    finally:
        scenario.execute("postgres", [mark.format(-1)])
    pg = snapshot.servers[0].postgres
    assert pg is not None and pg.detail("beta_db") is None and not pg.gaps
    [beta] = [db for db in pg.databases if db.name == "beta_db"]
    assert beta.invalid
    error = finding(results, "PGW-ISO-004", "database/beta_db", None)
    assert error.status == "error"
    assert "it is invalid: a DROP DATABASE was interrupted" in error.message
    assert error.remediation is not None
    assert error.remediation.endswith("DROP DATABASE beta_db;")
    chan = finding(results, "PGW-CHAN-001", "database/beta_db", None)
    assert chan.status == "error" and chan.remediation == error.remediation
    # alpha_db is judged as before.
    assert {k for k in keys(results, rules=EVERY_RULE) if "alpha_db" in k[1]} == {
        k for k in keys(before, rules=EVERY_RULE) if "alpha_db" in k[1]
    }
