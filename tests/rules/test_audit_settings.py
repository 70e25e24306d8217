"""PGW-AUD-001 … 003, table-driven over settings as Azure and ``pg_settings`` show them.

The real server (``test_audit_and_cron.py``) shows pgaudit at work; these cases reach
what it cannot: Azure's server parameters (and their defaults), an auditor that may not
read ``shared_preload_libraries``, the spellings pgaudit and libpq accept.
"""

from __future__ import annotations

import pytest

from pgwarden.engine import server_context
from pgwarden.model.config import parse_config
from pgwarden.model.snapshot import (
    AzureServer,
    AzureSnapshot,
    Endpoint,
    PostgresSnapshot,
    ServerParameter,
    ServerSnapshot,
    Setting,
)
from pgwarden.rules.audit_logging import (
    DdlNotLogged,
    LogLinePrefixIncomplete,
    PgauditNotLogging,
    pgaudit_classes,
    prefix_escapes,
)
from pgwarden.rules.base import Rule

GOOD = {
    "shared_preload_libraries": "pg_cron,pgaudit,pg_stat_statements",
    "pgaudit.log": "ddl, role",
    "log_line_prefix": "%m [%p] %quser=%u db=%d app=%a client=%h ",
    "log_destination": "stderr",
    "log_statement": "none",
}
# Azure Database for PostgreSQL flexible server's defaults.
AZURE_DEFAULTS = {
    "shared_preload_libraries": "pg_cron,pg_stat_statements",
    "pgaudit.log": "none",
    "log_line_prefix": "%t-%c-",
    "log_destination": "stderr",
    "log_statement": "none",
}


def _snapshot(values: dict[str, str], source: str) -> ServerSnapshot:
    if source == "azure":
        azure = AzureSnapshot(
            cloud="AzureCloud",
            server=AzureServer(id="x", name="db", subscription_id="s", resource_group="rg"),
            configurations={n: ServerParameter(name=n, value=v) for n, v in values.items()},
        )
        return ServerSnapshot(name="db", azure=azure)
    postgres = PostgresSnapshot(
        version="16.4",
        version_num=160004,
        connected_as="auditor",
        endpoint=Endpoint(host="db.example", port=5432),
        settings={n: Setting(name=n, value=v) for n, v in values.items()},
        databases=(),
        roles=(),
        memberships=(),
        sessions=None,
        database_details=(),
    )
    return ServerSnapshot(name="db", postgres=postgres)


def _check(
    rule: type[Rule], values: dict[str, str], source: str, policy: str = ""
) -> list[tuple[str, str]]:
    config = parse_config(f'[policy]\n{policy}\n[[server]]\nname = "db"\n', "pgwarden.toml")
    snapshot = _snapshot(values, source)
    context = server_context(snapshot, config.server[0], config)
    return [(v.status, v.resource) for v in rule().check(snapshot, context)]


@pytest.mark.parametrize("source", ["azure", "postgres"])
@pytest.mark.parametrize("rule", [PgauditNotLogging, LogLinePrefixIncomplete, DdlNotLogged])
def test_a_well_configured_server_passes(rule: type[Rule], source: str) -> None:
    assert _check(rule, GOOD, source) == []


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (PgauditNotLogging, [("fail", "setting/shared_preload_libraries")]),
        (LogLinePrefixIncomplete, [("fail", "setting/log_line_prefix")]),
        (DdlNotLogged, [("fail", "setting/log_statement")]),
    ],
)
def test_azure_defaults_fail(rule: type[Rule], expected: list[tuple[str, str]]) -> None:
    assert _check(rule, AZURE_DEFAULTS, "azure") == expected


def test_azure_fixes_are_az_commands() -> None:
    config = parse_config('[[server]]\nname = "db"\n', "pgwarden.toml")
    snapshot = _snapshot(AZURE_DEFAULTS, "azure")
    context = server_context(snapshot, config.server[0], config)
    (verdict,) = PgauditNotLogging().check(snapshot, context)
    assert verdict.remediation is not None
    first = verdict.remediation.splitlines()[0]
    assert first == (
        "az postgres flexible-server parameter set --resource-group rg --server-name db "
        "--name shared_preload_libraries --value 'pg_cron,pg_stat_statements,pgaudit'"
    )


@pytest.mark.parametrize(
    ("changes", "policy", "expected"),
    [
        ({"pgaudit.log": "DDL,Role"}, "", []),
        ({"pgaudit.log": "all,-role"}, "", [("fail", "setting/pgaudit.log")]),
        ({"pgaudit.log": "write"}, 'pgaudit_log = ["write"]', []),
        ({"pgaudit.log": "ddl, role"}, 'pgaudit_log = ["all"]', [("fail", "setting/pgaudit.log")]),
        ({"shared_preload_libraries": '"pgaudit"'}, "", []),
        ({"shared_preload_libraries": ""}, "pgaudit_log = []", []),
    ],
)
def test_pgaudit_cases(
    changes: dict[str, str], policy: str, expected: list[tuple[str, str]]
) -> None:
    assert _check(PgauditNotLogging, {**GOOD, **changes}, "postgres", policy) == expected


def test_a_hidden_preload_list_is_an_error_naming_the_grant() -> None:
    values = {k: v for k, v in GOOD.items() if k != "shared_preload_libraries"}
    config = parse_config('[[server]]\nname = "db"\n', "pgwarden.toml")
    snapshot = _snapshot(values, "postgres")
    context = server_context(snapshot, config.server[0], config)
    (verdict,) = PgauditNotLogging().check(snapshot, context)
    assert verdict.status == "error"
    assert verdict.remediation == "GRANT pg_read_all_settings TO auditor;"
    # DDL logging cannot be judged either: pgaudit might log it.
    assert _check(DdlNotLogged, values, "postgres") == [
        ("error", "setting/shared_preload_libraries")
    ]


@pytest.mark.parametrize(
    ("prefix", "destination", "fails"),
    [
        ("%m [%p] ", "stderr", True),
        ("%t [%c] %u@%d %a %r ", "stderr", False),
        ("%-10u %d %a %h %m %p", "syslog", False),
        ("%%u %d %a %h %m %p", "stderr", True),  # %%u is a literal "%u"
        ("%m [%p] ", "csvlog", False),  # csv records carry every field
        ("%m [%p] ", "csvlog,stderr", True),
    ],
)
def test_log_line_prefix(prefix: str, destination: str, fails: bool) -> None:
    values = {**GOOD, "log_line_prefix": prefix, "log_destination": destination}
    assert bool(_check(LogLinePrefixIncomplete, values, "postgres")) is fails


def test_parsers() -> None:
    assert pgaudit_classes("none") == set()
    assert pgaudit_classes("all, -misc, -misc_set") == {"read", "write", "function", "role", "ddl"}
    assert pgaudit_classes("read,+write") == {"read", "write"}
    assert prefix_escapes("%m [%p] %q%u@%d %%x") == {"m", "p", "q", "u", "d"}
