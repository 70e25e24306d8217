"""The seed's shared server, inside its databases: channels, definer routines, extensions,
audit logging.

``build_seed_server`` plants one example of each family: a ``postgres_fdw`` server in
``zep`` that leads to ``ctxEco`` and that ``zep_app`` may use, an admin-owned SECURITY
DEFINER routine with its caller's search_path in ``temporal``, and PostgreSQL's own
logging defaults (no pgaudit, ``log_line_prefix = '%m [%p] '``, ``log_statement =
'none'``). secai-radar's routine is done right and must not be reported.
"""

from __future__ import annotations

import pytest

from pgwarden.cli.demo import ADMIN, AUDITOR, DEMO_CONFIG, DEMO_DSN_VARIABLE, SeedServer
from pgwarden.collect.run import collect
from pgwarden.engine import evaluate
from pgwarden.model.config import parse_config
from pgwarden.model.results import Results
from pgwarden.rules.registry import load_rules
from tests.rules.scenario import Key, finding, keys

FAMILIES = ("PGW-CHAN-", "PGW-FUNC-", "PGW-EXT-", "PGW-AUD-")
PLANTED: dict[str, Key] = {
    "postgres_fdw server in zep leading to ctxEco": (
        "PGW-CHAN-001",
        "foreign-server/zep.ctxeco_link",
        None,
    ),
    "the admin's definer routine in temporal": (
        "PGW-FUNC-001",
        "function/temporal.public.purge_history()",
        None,
    ),
    "postgres_fdw installed in zep": ("PGW-EXT-002", "extension/zep.postgres_fdw", None),
    "pgaudit not loaded": ("PGW-AUD-001", "setting/shared_preload_libraries", None),
    "log_line_prefix without user, database, application, client": (
        "PGW-AUD-002",
        "setting/log_line_prefix",
        None,
    ),
    "no DDL logged": ("PGW-AUD-003", "setting/log_statement", None),
}


@pytest.fixture(scope="module")
def results(seed_server: SeedServer) -> Results:
    config = parse_config(DEMO_CONFIG, "pgwarden.toml")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(DEMO_DSN_VARIABLE, seed_server.dsn(AUDITOR))
        snapshot = collect(config)
    return evaluate(snapshot, config, load_rules())


def _ours(results: Results, status: str = "fail") -> set[Key]:
    ids = {f.rule_id for f in results.findings if f.rule_id.startswith(FAMILIES)}
    return keys(results, status=status, rules=ids)


def test_exactly_the_planted_examples(results: Results) -> None:
    assert _ours(results) == set(PLANTED.values())
    assert not _ours(results, "error")


def test_the_channel_and_who_may_open_it(results: Results) -> None:
    channel = finding(results, "PGW-CHAN-001", "foreign-server/zep.ctxeco_link", None)
    assert channel.app == "ctxeco"
    assert channel.evidence["target"] == "this server"
    assert channel.evidence["reaches"] == [{"database": "ctxEco", "app": "ctxeco"}]
    assert channel.evidence["user_mappings"] == []  # dormant: zep_app may add its own
    assert "DROP SERVER ctxeco_link CASCADE;" in str(channel.remediation).splitlines()


def test_the_admin_routine(results: Results) -> None:
    routine = finding(results, "PGW-FUNC-001", "function/temporal.public.purge_history()", None)
    assert routine.evidence["owner"] == ADMIN
    # temporal keeps PUBLIC CONNECT: every app role may call it, and act as the admin.
    assert set(routine.evidence["callers"]) == {
        "ctxeco_app",
        "zep_app",
        "temporal_app",
        "secairadar_app",
        "secai-radar-mi",  # the demo app's Entra managed identity
        "legacy_etl",
    }
    assert not [f for f in results.findings if "radar.finding_count" in f.resource]
