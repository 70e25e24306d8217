"""PGW-EXT-001 … 003 against a real server, under three policies; -004 on Azure's parameter.

``alpha_db`` gets ``dblink`` (a channel), ``citext`` and an untrusted language made the
way a superuser makes one without an extension (``CREATE LANGUAGE`` with plpgsql's
handler: the same ``pg_language`` row, ``lanpltrusted = false``, as plperlu's);
``beta_db`` gets ``hstore``. One collection, judged with no allow-list, a policy that
allows some, and one that names the channel and the language.
"""

from __future__ import annotations

import dataclasses

import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.engine import server_context
from pgwarden.model.config import parse_config
from pgwarden.model.snapshot import (
    AzureServer,
    AzureSnapshot,
    ServerParameter,
    ServerSnapshot,
    Snapshot,
)
from pgwarden.rules.base import Verdict
from pgwarden.rules.extensions import AzureExtensionsAllowTooMuch
from tests.rules.scenario import App, Key, Scenario, build_scenario, finding, keys

RULES = ("PGW-EXT-001", "PGW-EXT-002", "PGW-EXT-003", "PGW-EXT-004")
APPS = (App("alpha", ("alpha_db",), ("alpha_app",)), App("beta", ("beta_db",), ("beta_app",)))
BASE_POLICY = "session_samples = 1\nsession_window_seconds = 0"


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer) -> tuple[Scenario, Snapshot]:
    scenario = build_scenario(
        pg_server,
        APPS,
        database_sql={
            "alpha_db": [
                "CREATE EXTENSION dblink",
                "CREATE EXTENSION citext",
                "CREATE LANGUAGE pluntrusted HANDLER plpgsql_call_handler",
            ],
            "beta_db": ["CREATE EXTENSION hstore"],
        },
    )
    return scenario, scenario.collect()


def _judged(scanned: tuple[Scenario, Snapshot], policy: str) -> set[Key]:
    scenario, snapshot = scanned
    variant = dataclasses.replace(scenario, policy=f"{BASE_POLICY}\n{policy}", _config=None)
    results = variant.evaluate(snapshot)
    assert not keys(results, status="error", rules=RULES)
    return keys(results, rules=RULES)


def test_what_the_collector_read(scanned: tuple[Scenario, Snapshot]) -> None:
    _, snapshot = scanned
    pg = snapshot.servers[0].postgres
    assert pg is not None
    alpha = pg.detail("alpha_db")
    assert alpha is not None and alpha.extensions is not None
    assert [e.name for e in alpha.extensions] == ["citext", "dblink"]  # not plpgsql
    assert [(lang.name, lang.owner) for lang in alpha.untrusted_languages or ()] == [
        ("pluntrusted", "postgres")
    ]


def test_without_an_allow_list(scanned: tuple[Scenario, Snapshot]) -> None:
    assert _judged(scanned, "") == {
        ("PGW-EXT-002", "extension/alpha_db.dblink", None),
        ("PGW-EXT-003", "language/alpha_db.pluntrusted", None),
    }


def test_with_an_allow_list(scanned: tuple[Scenario, Snapshot]) -> None:
    assert _judged(scanned, 'allowed_extensions = ["citext"]') == {
        ("PGW-EXT-001", "extension/alpha_db.dblink", None),
        ("PGW-EXT-001", "extension/beta_db.hstore", None),
        ("PGW-EXT-002", "extension/alpha_db.dblink", None),
        ("PGW-EXT-003", "language/alpha_db.pluntrusted", None),
    }


def test_named_in_the_policy_is_allowed(scanned: tuple[Scenario, Snapshot]) -> None:
    allowed = 'allowed_extensions = ["citext", "dblink", "hstore", "pluntrusted"]'
    assert _judged(scanned, allowed) == set()


def test_dropping_the_language_as_told(scanned: tuple[Scenario, Snapshot]) -> None:
    scenario, snapshot = scanned
    results = scenario.evaluate(snapshot)
    language = finding(results, "PGW-EXT-003", "language/alpha_db.pluntrusted", None)
    assert str(language.remediation).splitlines()[-1] == "DROP LANGUAGE pluntrusted;"
    with scenario.superuser("alpha_db") as conn:
        conn.execute(str(language.remediation))
    assert ("PGW-EXT-003", "language/alpha_db.pluntrusted", None) not in keys(
        scenario.evaluate(scenario.collect()), rules=RULES
    )


def _azure_check(listed: str, policy: str) -> list[Verdict]:
    config = parse_config(
        f'[policy]\n{policy}\n[[server]]\nname = "db"\n'
        'azure = { subscription_id = "s", resource_group = "rg" }\n',
        "pgwarden.toml",
    )
    azure = AzureSnapshot(
        cloud="AzureCloud",
        server=AzureServer(id="x", name="db", subscription_id="s", resource_group="rg"),
        configurations={"azure.extensions": ServerParameter(name="azure.extensions", value=listed)},
    )
    snapshot = ServerSnapshot(name="db", azure=azure)
    context = server_context(snapshot, config.server[0], config)
    return list(AzureExtensionsAllowTooMuch().check(snapshot, context))


@pytest.mark.parametrize(
    ("listed", "policy", "too_much"),
    [
        ("", "", None),  # nothing may be created
        ("citext,pg_trgm", "", None),  # no channel, no policy list
        ("citext,dblink,pg_cron", "", ["dblink", "pg_cron"]),
        ("citext,dblink", 'allowed_extensions = ["dblink"]', ["citext"]),
        ("CITEXT,DBLINK", 'allowed_extensions = ["citext", "dblink"]', None),
    ],
)
def test_azure_extensions_against_the_policy(
    listed: str, policy: str, too_much: list[str] | None
) -> None:
    verdicts = _azure_check(listed, policy)
    if too_much is None:
        assert verdicts == []
        return
    (verdict,) = verdicts
    assert verdict.resource == "setting/azure.extensions"
    assert verdict.evidence["not_allowed_by_policy"] == too_much
    assert verdict.remediation is not None
    assert "--name azure.extensions --value" in verdict.remediation
