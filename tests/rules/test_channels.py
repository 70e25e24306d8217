"""PGW-CHAN-001 … 003 against a real server: foreign servers and user mappings.

``postgres_fdw`` and ``dblink`` (PostgreSQL's contrib) are created in the apps'
databases, with foreign servers that come back to this server and look-alikes that do
not (or come back to the app's own database). Scanned as the non-superuser
``pg_monitor`` auditor, which cannot read user mapping options of other roles, and
again as the superuser, which can.
"""

from __future__ import annotations

import secrets

import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.run import collect
from pgwarden.engine import evaluate
from pgwarden.model.config import parse_config
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from pgwarden.rules.registry import load_rules
from tests.rules.scenario import (
    AUDITOR,
    App,
    Scenario,
    apply_remediation,
    build_scenario,
    finding,
    keys,
    toml_string,
)

RULES = ("PGW-CHAN-001", "PGW-CHAN-002", "PGW-CHAN-003")
APPS = (
    App("alpha", ("alpha_db",), ("alpha_app",)),
    App("beta", ("beta_db",), ("beta_app",)),
    App("gamma", ("gamma_db",), ("gamma_app",)),
)
# Stored in user mappings: must never leave the server.
PASSWORD = secrets.token_urlsafe(18)

Scans = tuple[Scenario, Snapshot, Results, Snapshot, Results]


def _server_sql(port: int) -> dict[str, list[str]]:
    here = f"host '127.0.0.1', port '{port}'"
    return {
        "alpha_db": [
            "CREATE EXTENSION postgres_fdw",
            "CREATE EXTENSION dblink",
            # A channel into beta's database, used by alpha's role as beta's role.
            f"CREATE SERVER to_beta FOREIGN DATA WRAPPER postgres_fdw OPTIONS ({here}, "
            "dbname 'beta_db')",
            "GRANT USAGE ON FOREIGN SERVER to_beta TO alpha_app",
            "CREATE USER MAPPING FOR alpha_app SERVER to_beta "
            f"OPTIONS (user 'beta_app', password '{PASSWORD}')",
            # No host: libpq's default is the server's own Unix socket.
            f"CREATE SERVER by_socket FOREIGN DATA WRAPPER dblink_fdw OPTIONS (port '{port}', "
            "dbname 'gamma_db')",
            # A private address pgwarden cannot tie to this server.
            "CREATE SERVER private_net FOREIGN DATA WRAPPER postgres_fdw "
            "OPTIONS (host '10.20.30.40', dbname 'beta_db')",
            # No dbname: the database is the remote user's name, hidden in the mapping.
            f"CREATE SERVER no_dbname FOREIGN DATA WRAPPER dblink_fdw OPTIONS ({here})",
            "CREATE USER MAPPING FOR alpha_app SERVER no_dbname OPTIONS (user 'beta_db')",
            # Look-alikes: the app's own database; another host; another cluster here.
            f"CREATE SERVER to_self FOREIGN DATA WRAPPER postgres_fdw OPTIONS ({here}, "
            "dbname 'alpha_db')",
            "GRANT USAGE ON FOREIGN SERVER to_self TO alpha_app",
            "CREATE USER MAPPING FOR alpha_app SERVER to_self "
            f"OPTIONS (user 'alpha_app', password '{PASSWORD}')",
            "CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw "
            "OPTIONS (host '203.0.113.9', dbname 'beta_db')",
            "CREATE USER MAPPING FOR alpha_app SERVER remote OPTIONS (user 'beta_app')",
            "CREATE SERVER other_cluster FOREIGN DATA WRAPPER postgres_fdw "
            f"OPTIONS (host 'localhost', port '{port + 1}', dbname 'beta_db')",
        ],
        "beta_db": [
            "CREATE EXTENSION postgres_fdw",
            # Open to every role that can connect to beta_db, as gamma's role; owned by
            # the auditor, so it may read the PUBLIC mapping's options.
            f"CREATE SERVER to_gamma FOREIGN DATA WRAPPER postgres_fdw OPTIONS ({here}, "
            "dbname 'gamma_db')",
            f"ALTER SERVER to_gamma OWNER TO {AUDITOR}",
            "GRANT USAGE ON FOREIGN SERVER to_gamma TO PUBLIC",
            "CREATE USER MAPPING FOR PUBLIC SERVER to_gamma "
            f"OPTIONS (user 'gamma_app', password '{PASSWORD}')",
        ],
    }


def _scan_as(scenario: Scenario, dsn: str) -> tuple[Snapshot, Results]:
    text = scenario.config_text.replace(
        f"dsn = {toml_string(scenario.dsn(AUDITOR))}", f"dsn = {toml_string(dsn)}"
    )
    config = parse_config(text, "superuser.toml")
    snapshot = collect(config)
    return snapshot, evaluate(snapshot, config, load_rules())


@pytest.fixture(scope="module")
def scans(pg_server: LocalServer) -> Scans:
    scenario = build_scenario(
        pg_server, APPS, database_sql=_server_sql(pg_server.port), public_connect=("beta_db",)
    )
    snapshot, results = scenario.scan()
    as_superuser = _scan_as(scenario, pg_server.dsn())
    return scenario, snapshot, results, *as_superuser


def test_channels_found_as_the_auditor(scans: Scans) -> None:
    _, _, results, _, _ = scans
    assert keys(results, rules=RULES) == {
        ("PGW-CHAN-001", "foreign-server/alpha_db.to_beta", None),
        ("PGW-CHAN-001", "foreign-server/alpha_db.by_socket", None),
        ("PGW-CHAN-001", "foreign-server/alpha_db.private_net", None),
        ("PGW-CHAN-001", "foreign-server/beta_db.to_gamma", None),
        ("PGW-CHAN-002", "foreign-server/alpha_db.to_beta", "role/alpha_app"),
        ("PGW-CHAN-002", "foreign-server/beta_db.to_gamma", "PUBLIC"),
        ("PGW-CHAN-003", "foreign-server/beta_db.to_gamma", "PUBLIC"),
    }
    # The auditor cannot read alpha_app's mapping options: an error naming who can.
    assert keys(results, status="error", rules=RULES) == {
        ("PGW-CHAN-001", "foreign-server/alpha_db.no_dbname", None),
        ("PGW-CHAN-003", "foreign-server/alpha_db.to_beta", "role/alpha_app"),
        ("PGW-CHAN-003", "foreign-server/alpha_db.no_dbname", "role/alpha_app"),
        ("PGW-CHAN-003", "foreign-server/alpha_db.to_self", "role/alpha_app"),
    }
    hidden = finding(results, "PGW-CHAN-003", "foreign-server/alpha_db.to_beta", "role/alpha_app")
    assert "only 'alpha_app' itself or a superuser may read them" in hidden.message


def test_how_the_target_was_resolved(scans: Scans) -> None:
    _, _, results, _, _ = scans
    direct = finding(results, "PGW-CHAN-001", "foreign-server/alpha_db.to_beta", None)
    assert direct.evidence["target"] == "this server"
    assert direct.evidence["reaches"] == [{"database": "beta_db", "app": "beta"}]
    assert direct.app == "beta"
    assert "leads to database 'beta_db' of app 'beta'" in direct.message
    socket = finding(results, "PGW-CHAN-001", "foreign-server/alpha_db.by_socket", None)
    assert socket.evidence["wrapper"] == "dblink_fdw"
    assert "Unix socket" in str(socket.evidence["why"])
    private = finding(results, "PGW-CHAN-001", "foreign-server/alpha_db.private_net", None)
    assert private.evidence["target"] == "possibly this server"
    assert "may lead" in private.message


def test_who_opens_the_channel(scans: Scans) -> None:
    _, _, results, _, _ = scans
    public = finding(results, "PGW-CHAN-002", "foreign-server/beta_db.to_gamma", "PUBLIC")
    # Every principal that can connect to beta_db (PUBLIC CONNECT), but gamma's own.
    assert public.evidence["principals"] == {"alpha_app": "alpha", "beta_app": "beta"}
    assert public.app == "gamma"
    own = finding(results, "PGW-CHAN-002", "foreign-server/alpha_db.to_beta", "role/alpha_app")
    assert own.evidence["mapping"]["options_visible"] is False
    assert "as the remote user its hidden options name" in own.message


def test_credentials_as_the_superuser(scans: Scans) -> None:
    _, _, _, _, results = scans
    assert keys(results, rules=("PGW-CHAN-003",)) == {
        ("PGW-CHAN-003", "foreign-server/alpha_db.to_beta", "role/alpha_app"),
        ("PGW-CHAN-003", "foreign-server/beta_db.to_gamma", "PUBLIC"),
    }
    assert not keys(results, status="error", rules=RULES)
    stored = finding(results, "PGW-CHAN-003", "foreign-server/alpha_db.to_beta", "role/alpha_app")
    assert stored.evidence["remote_user"] == "beta_app"
    assert stored.evidence["risk"] == "a role of app 'beta'"
    assert stored.evidence["mapping"]["password_stored"] is True
    assert "ALTER ROLE beta_app PASSWORD" in str(stored.remediation)
    # Seen whole, no_dbname opens 'beta_db' (its remote user's name).
    assert ("PGW-CHAN-001", "foreign-server/alpha_db.no_dbname", None) in keys(results, rules=RULES)


def test_no_secret_leaves_the_server(scans: Scans) -> None:
    _, snapshot, results, snapshot_su, results_su = scans
    for document in (snapshot.to_json(), results.model_dump_json()):
        assert PASSWORD not in document
    for document in (snapshot_su.to_json(), results_su.model_dump_json()):
        assert PASSWORD not in document
    pg = snapshot_su.servers[0].postgres
    assert pg is not None
    detail = pg.detail("alpha_db")
    assert detail is not None and detail.foreign_servers is not None
    mapping = next(s for s in detail.foreign_servers if s.name == "to_beta").user_mappings[0]
    assert mapping.option_names == ("password", "user")


def test_the_snapshot_round_trips(scans: Scans) -> None:
    scenario, snapshot, results, _, _ = scans
    again = Snapshot.model_validate_json(snapshot.to_json())
    assert again == snapshot
    assert keys(scenario.evaluate(again), rules=RULES) == keys(results, rules=RULES)


def test_mappings_the_auditor_cannot_read_cost_only_that_database_s_channels(
    scans: Scans,
) -> None:
    scenario, _, results, _, _ = scans
    _, refused, alpha = scenario.scan_refused("alpha_db", "pg_user_mappings")
    # The rest of alpha_db was read: its extensions, schemas and grants.
    assert alpha.collected and alpha.foreign_servers is None and alpha.extensions
    assert alpha.unread == {"foreign_servers": "permission denied for view pg_user_mappings"}
    # alpha_db's channels are one error per rule; beta_db's are judged as before.
    assert keys(refused, status="error", rules=RULES) == {
        (rule, "database/alpha_db", None) for rule in RULES
    }
    error = finding(refused, "PGW-CHAN-002", "database/alpha_db", None)
    assert error.message == (
        "PGW-CHAN-002 cannot judge database 'alpha_db': its foreign servers could not be "
        "read (permission denied for view pg_user_mappings)"
    )
    assert keys(refused, rules=RULES) == {
        k for k in keys(results, rules=RULES) if "beta_db" in k[1]
    }
    # The database's other rules are unchanged (dblink and postgres_fdw are there).
    others = ("PGW-EXT-002",)
    assert ("PGW-EXT-002", "extension/alpha_db.dblink", None) in keys(results, rules=others)
    assert keys(refused, rules=others) == keys(results, rules=others)


def test_dropping_the_mapping_closes_the_channel(scans: Scans) -> None:
    scenario, _, results, _, _ = scans
    apply_remediation(
        scenario, finding(results, "PGW-CHAN-002", "foreign-server/beta_db.to_gamma", "PUBLIC")
    )
    _, again = scenario.scan()
    found = keys(again, rules=RULES)
    assert ("PGW-CHAN-002", "foreign-server/beta_db.to_gamma", "PUBLIC") not in found
    assert ("PGW-CHAN-003", "foreign-server/beta_db.to_gamma", "PUBLIC") not in found
    # The server itself is still there, dormant: still reported.
    assert ("PGW-CHAN-001", "foreign-server/beta_db.to_gamma", None) in found
