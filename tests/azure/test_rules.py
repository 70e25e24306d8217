"""The Azure rules on snapshot fragments: no server, no HTTP (table-driven)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pgwarden.engine import server_context
from pgwarden.model.config import parse_config
from pgwarden.model.snapshot import (
    AppSecret,
    AzureServer,
    AzureSnapshot,
    Endpoint,
    EntraAdministrator,
    FirewallRule,
    Gap,
    KeyVault,
    MetricAlert,
    PostgresSnapshot,
    SecretInfo,
    ServerParameter,
    ServerSnapshot,
    Setting,
)
from pgwarden.rules.backup import (
    BackupRetentionBelowAppNeed,
    BackupRetentionBelowPolicy,
    GeoRedundantBackupOff,
    HighAvailabilityOff,
)
from pgwarden.rules.base import Rule, ServerContext, Verdict
from pgwarden.rules.entra import EntraAuthentication
from pgwarden.rules.keyvault.admin_secrets import AppSecretUsesAdmin, VaultHoldsAdminSecret
from pgwarden.rules.keyvault.app_secrets import (
    AppSecretMissing,
    AppSecretPointsElsewhere,
    AppSecretWithoutTls,
)
from pgwarden.rules.keyvault.lifecycle import DsnSecretLifecycle, VaultNotRecoverable
from pgwarden.rules.logging_settings import LoggingDisabled
from pgwarden.rules.monitoring import MissingMetricAlerts
from pgwarden.rules.network import (
    FirewallAllowsAzureServices,
    FirewallOpenToInternet,
    FirewallRangeTooWide,
    PublicNetworkAccess,
    parse_range,
)
from pgwarden.rules.transport import InsecureTransport

SERVER_ID = (
    "/subscriptions/sub/resourceGroups/ctxeco-rg/providers/"
    "Microsoft.DBforPostgreSQL/flexibleServers/ctxeco-db"
)
FQDN = "ctxeco-db.postgres.database.azure.com"
LATER = datetime.now(UTC) + timedelta(days=90)
ZERO = "0.0.0.0"  # noqa: S104 - a firewall bound, nothing binds to it

CONFIG = """
[policy]
{policy}

[[server]]
name = "ctxeco-db"
platform_roles = ["pgwarden_auditor"]
azure = {{ subscription_id = "sub", resource_group = "ctxeco-rg" }}

[[server.app]]
name = "secai-radar"
databases = ["secairadar"]
roles = ["secairadar_app"]
secret = "keyvault:secai-radar-kv/database-url"
backup_retention_days = 30

[[server.app]]
name = "ctxeco"
databases = ["ctxEco", "zep"]
roles = ["ctxeco_app"]
secret = "keyvault:ctxeco-kv/ctxeco-database-url"
"""


def good_azure() -> AzureSnapshot:
    """A server configured the way the policy wants: every rule passes on it."""
    return AzureSnapshot(
        cloud="AzureCloud",
        server=AzureServer(
            id=SERVER_ID,
            name="ctxeco-db",
            subscription_id="sub",
            resource_group="ctxeco-rg",
            administrator_login="ctxecoadmin",
            version="15",
            fqdn=FQDN,
            backup_retention_days=35,
            geo_redundant_backup="Enabled",
            high_availability_mode="ZoneRedundant",
            public_network_access="Disabled",
            entra_auth="Enabled",
        ),
        firewall_rules=(FirewallRule(name="ci", start_ip="198.51.100.0", end_ip="198.51.100.255"),),
        configurations={
            name: ServerParameter(name=name, value=value)
            for name, value in {
                "require_secure_transport": "on",
                "ssl_min_protocol_version": "TLSv1.2",
                "log_connections": "on",
                "log_disconnections": "on",
                "log_checkpoints": "on",
                "connection_throttle.enable": "on",
                "logfiles.retention_days": "7",
            }.items()
        },
        administrators=(EntraAdministrator(principal_name="dba-group", object_id="o"),),
        app_secrets=(
            _app_secret(
                "secai-radar", "secai-radar-kv", "database-url", "secairadar_app", "secairadar"
            ),
            _app_secret("ctxeco", "ctxeco-kv", "ctxeco-database-url", "ctxeco_app", "ctxEco"),
        ),
        vaults=(
            KeyVault(
                name="secai-radar-kv",
                url="https://secai-radar-kv.vault.azure.net",
                soft_delete=True,
                purge_protection=True,
                secrets=(),
            ),
            KeyVault(
                name="ctxeco-kv",
                url="https://ctxeco-kv.vault.azure.net",
                soft_delete=True,
                purge_protection=True,
                secrets=(),
            ),
        ),
        metric_alerts=(
            MetricAlert(
                id="a",
                name="all",
                enabled=True,
                scopes=(SERVER_ID,),
                metrics=("cpu_percent", "memory_percent", "storage_percent", "active_connections"),
            ),
        ),
    )


def _app_secret(
    app: str, vault: str, name: str, user: str, database: str, **endpoint: Any
) -> AppSecret:
    fields = {
        "user": user,
        "host": FQDN,
        "port": 5432,
        "database": database,
        "sslmode": "verify-full",
        **endpoint,
    }
    return AppSecret(
        app=app,
        reference=f"keyvault:{vault}/{name}",
        vault=vault,
        name=name,
        secret=SecretInfo(
            vault=vault,
            name=name,
            connection_string=True,
            enabled=True,
            expires_on=LATER,
            endpoint=Endpoint(**fields),
        ),
    )


Change = Callable[[AzureSnapshot], AzureSnapshot]


def server_change(**fields: Any) -> Change:
    return lambda a: a.model_copy(
        update={"server": a.server.model_copy(update=fields) if a.server else None}
    )


def parameter(name: str, value: str) -> Change:
    def change(a: AzureSnapshot) -> AzureSnapshot:
        configurations = dict(a.configurations or {})
        configurations[name] = ServerParameter(name=name, value=value)
        return a.model_copy(update={"configurations": configurations})

    return change


def firewall(*rules: tuple[str, str, str]) -> Change:
    return lambda a: a.model_copy(
        update={
            "firewall_rules": tuple(FirewallRule(name=n, start_ip=s, end_ip=e) for n, s, e in rules)
        }
    )


def app_secret(index: int, **fields: Any) -> Change:
    def change(a: AzureSnapshot) -> AzureSnapshot:
        secrets = list(a.app_secrets or ())
        secrets[index] = secrets[index].model_copy(update=fields)
        return a.model_copy(update={"app_secrets": tuple(secrets)})

    return change


def endpoint(index: int, **fields: Any) -> Change:
    def change(a: AzureSnapshot) -> AzureSnapshot:
        item = (a.app_secrets or ())[index]
        assert item.secret is not None and item.secret.endpoint is not None
        secret = item.secret.model_copy(
            update={"endpoint": item.secret.endpoint.model_copy(update=fields)}
        )
        return app_secret(index, secret=secret)(a)

    return change


def secret_info(index: int, **fields: Any) -> Change:
    def change(a: AzureSnapshot) -> AzureSnapshot:
        item = (a.app_secrets or ())[index]
        assert item.secret is not None
        return app_secret(index, secret=item.secret.model_copy(update=fields))(a)

    return change


def vault(index: int, **fields: Any) -> Change:
    def change(a: AzureSnapshot) -> AzureSnapshot:
        vaults = list(a.vaults or ())
        vaults[index] = vaults[index].model_copy(update=fields)
        return a.model_copy(update={"vaults": tuple(vaults)})

    return change


def replace(**fields: Any) -> Change:
    return lambda a: a.model_copy(update=fields)


def compose(*changes: Change) -> Change:
    def change(a: AzureSnapshot) -> AzureSnapshot:
        for each in changes:
            a = each(a)
        return a

    return change


STRICT = (
    "require_geo_redundant_backup = true\nrequire_private_access = true\n"
    "require_high_availability = true\nrequire_entra_auth = true"
)
FORBIDDEN = Gap(
    section="azure.keyvault",
    reason="Azure refused to read secret database-url",
    fix="assign Key Vault Secrets User on secai-radar-kv",
)
ADMIN_DSN = SecretInfo(
    vault="secai-radar-kv",
    name="migrations-dsn",
    connection_string=True,
    expires_on=LATER,
    endpoint=Endpoint(user="ctxecoadmin", host=FQDN),
)

# (rule, change to the good snapshot, policy TOML, expected (status, resource) verdicts)
CASES: list[tuple[type[Rule], Change, str, list[tuple[str, str]]]] = [
    (
        FirewallOpenToInternet,
        firewall(("all", ZERO, "255.255.255.255")),
        "",
        [("fail", "firewall-rule/all")],
    ),
    (
        FirewallOpenToInternet,
        firewall(("most", "1.0.0.0", "223.255.255.255")),
        "",
        [("fail", "firewall-rule/most")],
    ),
    (FirewallOpenToInternet, firewall(("half", ZERO, "127.255.255.255")), "", []),
    (FirewallOpenToInternet, firewall(("bad", "::1", "::2")), "", [("error", "firewall-rule/bad")]),
    (
        FirewallAllowsAzureServices,
        firewall(("azure", ZERO, ZERO)),
        "",
        [("fail", "firewall-rule/azure")],
    ),
    (
        FirewallAllowsAzureServices,
        firewall(("azure", ZERO, ZERO)),
        "allow_azure_services = true",
        [],
    ),
    (
        FirewallRangeTooWide,
        firewall(("o", "10.0.0.0", "10.0.255.255")),
        "",
        [("fail", "firewall-rule/o")],
    ),
    # Not a CIDR: 257 addresses straddling two /24s is still wider than /24.
    (
        FirewallRangeTooWide,
        firewall(("odd", "10.0.0.200", "10.0.1.200")),
        "",
        [("fail", "firewall-rule/odd")],
    ),
    (FirewallRangeTooWide, firewall(("ok", "10.0.0.0", "10.0.0.255")), "", []),
    (
        FirewallRangeTooWide,
        firewall(("o", "10.0.0.0", "10.0.255.255")),
        "max_firewall_prefix = 16",
        [],
    ),
    (
        FirewallRangeTooWide,
        firewall(("all", ZERO, "255.255.255.255"), ("az", ZERO, ZERO)),
        "",
        [],
    ),
    (
        PublicNetworkAccess,
        server_change(public_network_access="Enabled"),
        "require_private_access = true",
        [("fail", "server/ctxeco-db")],
    ),
    (PublicNetworkAccess, server_change(public_network_access="Enabled"), "", []),
    (
        BackupRetentionBelowPolicy,
        server_change(backup_retention_days=7),
        "",
        [("fail", "server/ctxeco-db")],
    ),
    (
        BackupRetentionBelowPolicy,
        server_change(backup_retention_days=None),
        "",
        [("error", "server/ctxeco-db")],
    ),
    (
        BackupRetentionBelowAppNeed,
        server_change(backup_retention_days=14),
        "",
        [("fail", "database/secairadar")],
    ),
    (BackupRetentionBelowAppNeed, server_change(backup_retention_days=30), "", []),
    (
        GeoRedundantBackupOff,
        server_change(geo_redundant_backup="Disabled"),
        STRICT,
        [("fail", "server/ctxeco-db")],
    ),
    (GeoRedundantBackupOff, server_change(geo_redundant_backup="Disabled"), "", []),
    (
        HighAvailabilityOff,
        server_change(high_availability_mode="Disabled"),
        STRICT,
        [("fail", "server/ctxeco-db")],
    ),
    (
        EntraAuthentication,
        server_change(entra_auth="Disabled"),
        STRICT,
        [("fail", "server/ctxeco-db")],
    ),
    (EntraAuthentication, replace(administrators=()), STRICT, [("fail", "server/ctxeco-db")]),
    (EntraAuthentication, replace(administrators=()), "", []),
    (MissingMetricAlerts, replace(metric_alerts=()), "", [("fail", "server/ctxeco-db")]),
    (
        MissingMetricAlerts,
        replace(
            metric_alerts=(
                MetricAlert(
                    id="a",
                    name="all",
                    enabled=False,
                    scopes=(SERVER_ID,),
                    metrics=(
                        "cpu_percent",
                        "memory_percent",
                        "storage_percent",
                        "active_connections",
                    ),
                ),
            )
        ),
        "",
        [("fail", "server/ctxeco-db")],
    ),
    (
        InsecureTransport,
        parameter("require_secure_transport", "OFF"),
        "",
        [("fail", "setting/require_secure_transport")],
    ),
    (
        InsecureTransport,
        parameter("ssl_min_protocol_version", "TLSv1.1"),
        "",
        [("fail", "setting/ssl_min_protocol_version")],
    ),
    (InsecureTransport, parameter("ssl_min_protocol_version", "TLSv1.3"), "", []),
    (
        LoggingDisabled,
        parameter("log_checkpoints", "off"),
        "",
        [("fail", "setting/log_checkpoints")],
    ),
    (
        LoggingDisabled,
        parameter("connection_throttle.enable", "off"),
        "",
        [("fail", "setting/connection_throttle.enable")],
    ),
    # connection_throttle.enable does not exist on PostgreSQL 16+.
    (
        LoggingDisabled,
        lambda a: server_change(version="16")(parameter("connection_throttle.enable", "off")(a)),
        "",
        [],
    ),
    (
        LoggingDisabled,
        parameter("logfiles.retention_days", "3"),
        "",
        [("fail", "setting/logfiles.retention_days")],
    ),
    (LoggingDisabled, parameter("logfiles.retention_days", "4"), "", []),
    (
        AppSecretMissing,
        app_secret(0, found=False, secret=None),
        "",
        [("fail", "secret/secai-radar-kv/database-url")],
    ),
    (
        AppSecretMissing,
        app_secret(0, secret=None, gap=FORBIDDEN),
        "",
        [("error", "secret/secai-radar-kv/database-url")],
    ),
    (
        AppSecretUsesAdmin,
        endpoint(0, user="ctxecoadmin"),
        "",
        [("fail", "secret/secai-radar-kv/database-url")],
    ),
    (
        AppSecretUsesAdmin,
        endpoint(0, user="ctxecoadmin@ctxeco-db"),
        "",
        [("fail", "secret/secai-radar-kv/database-url")],
    ),
    (
        AppSecretUsesAdmin,
        app_secret(0, secret=None, gap=FORBIDDEN),
        "",
        [("error", "secret/secai-radar-kv/database-url")],
    ),
    (
        AppSecretUsesAdmin,
        secret_info(0, endpoint=None, dsn_error="not a DSN"),
        "",
        [("error", "secret/secai-radar-kv/database-url")],
    ),
    (
        VaultHoldsAdminSecret,
        vault(0, secrets=(ADMIN_DSN,)),
        "",
        [("fail", "secret/secai-radar-kv/migrations-dsn")],
    ),
    (
        VaultHoldsAdminSecret,
        vault(
            0,
            secrets=(ADMIN_DSN.model_copy(update={"connection_string": False, "endpoint": None}),),
        ),
        "",
        [],
    ),
    (
        VaultHoldsAdminSecret,
        vault(0, secrets=None, secrets_gap=FORBIDDEN),
        "",
        [("error", "vault/secai-radar-kv")],
    ),
    (
        AppSecretPointsElsewhere,
        endpoint(0, host="other-db.postgres.database.azure.com"),
        "",
        [("fail", "secret/secai-radar-kv/database-url")],
    ),
    (
        AppSecretPointsElsewhere,
        endpoint(0, database="zep"),
        "",
        [("fail", "secret/secai-radar-kv/database-url")],
    ),
    (
        AppSecretPointsElsewhere,
        endpoint(0, host="CTXECO-DB.private.postgres.database.azure.com"),
        "",
        [],
    ),
    (
        AppSecretWithoutTls,
        endpoint(0, sslmode=None),
        "",
        [("fail", "secret/secai-radar-kv/database-url")],
    ),
    (
        AppSecretWithoutTls,
        endpoint(0, sslmode="prefer"),
        "",
        [("fail", "secret/secai-radar-kv/database-url")],
    ),
    (AppSecretWithoutTls, endpoint(0, sslmode="require"), "", []),
    (
        DsnSecretLifecycle,
        secret_info(0, expires_on=None),
        "",
        [("fail", "secret/secai-radar-kv/database-url")],
    ),
    (
        DsnSecretLifecycle,
        secret_info(0, expires_on=datetime(2020, 1, 1, tzinfo=UTC)),
        "",
        [("fail", "secret/secai-radar-kv/database-url")],
    ),
    (
        DsnSecretLifecycle,
        secret_info(0, enabled=False),
        "",
        [("fail", "secret/secai-radar-kv/database-url")],
    ),
    (
        DsnSecretLifecycle,
        vault(0, secrets=(ADMIN_DSN.model_copy(update={"expires_on": None}),)),
        "",
        [("fail", "secret/secai-radar-kv/migrations-dsn")],
    ),
    # A vault that could not be listed: its other connection strings were not seen,
    # so KV-005 says so (the designated secret, read on its own, is still judged).
    (
        DsnSecretLifecycle,
        vault(0, secrets=None, secrets_gap=FORBIDDEN),
        "",
        [("error", "vault/secai-radar-kv")],
    ),
    (
        DsnSecretLifecycle,
        compose(
            secret_info(0, expires_on=None),
            replace(
                vaults=None,
                gaps=(Gap(section="azure.vaults", reason="Azure refused to list the vaults"),),
            ),
        ),
        "",
        [("fail", "secret/secai-radar-kv/database-url"), ("error", "server/ctxeco-db")],
    ),
    (VaultNotRecoverable, vault(1, purge_protection=False), "", [("fail", "vault/ctxeco-kv")]),
    (VaultNotRecoverable, vault(1, soft_delete=False), "", [("fail", "vault/ctxeco-kv")]),
    (
        VaultNotRecoverable,
        vault(1, properties_gap=Gap(section="azure.vaults", reason="403")),
        "",
        [("error", "vault/ctxeco-kv")],
    ),
]


def evaluate(
    rule: type[Rule],
    azure: AzureSnapshot,
    policy: str = "",
    postgres: PostgresSnapshot | None = None,
) -> list[Verdict]:
    config = parse_config(CONFIG.format(policy=policy), "pgwarden.toml")
    snapshot = ServerSnapshot(name="ctxeco-db", azure=azure, postgres=postgres)
    context: ServerContext = server_context(snapshot, config.server[0], config)
    return list(rule().check(snapshot, context))


RULES_TESTED: dict[str, type[Rule]] = {case[0].id: case[0] for case in CASES}


@pytest.mark.parametrize("rule", [RULES_TESTED[rule_id] for rule_id in sorted(RULES_TESTED)])
def test_every_rule_passes_a_well_configured_server(rule: type[Rule]) -> None:
    assert evaluate(rule, good_azure(), STRICT) == []


@pytest.mark.parametrize(
    ("rule", "change", "policy", "expected"),
    CASES,
    ids=[f"{c[0].id}-{i}" for i, c in enumerate(CASES)],
)
def test_rule_verdicts(
    rule: type[Rule], change: Change, policy: str, expected: list[tuple[str, str]]
) -> None:
    verdicts = evaluate(rule, change(good_azure()), policy)
    assert [(v.status, v.resource) for v in verdicts] == expected
    for verdict in verdicts:
        assert verdict.message
        if verdict.status == "fail":
            assert verdict.remediation


def test_firewall_ranges_are_measured_not_assumed_cidrs() -> None:
    span = parse_range(FirewallRule(name="x", start_ip="10.0.0.200", end_ip="10.0.1.200"))
    assert span is not None
    assert span.addresses == 257 and span.prefix == 23
    assert span.cidrs()[:2] == ["10.0.0.200/29", "10.0.0.208/28"]
    assert parse_range(FirewallRule(name="x", start_ip="10.0.0.9", end_ip="10.0.0.1")) is None


def test_forbidden_sections_become_errors_naming_the_role() -> None:
    from pgwarden.engine import missing_section, skipped_section

    gap = Gap(
        section="azure.firewall",
        reason="Azure refused to list the firewall rules",
        fix="assign Reader on the server ctxeco-db",
    )
    azure = good_azure().model_copy(update={"firewall_rules": None, "gaps": (gap,)})
    snapshot = ServerSnapshot(name="ctxeco-db", azure=azure)
    assert skipped_section(snapshot, "azure.firewall") is None
    reason = missing_section(snapshot, "azure.firewall")
    assert reason is not None and "Reader on the server ctxeco-db" in reason
    # Asked for nothing (no app secrets, no azure reference): the rule does not apply.
    bare = ServerSnapshot(name="ctxeco-db")
    assert skipped_section(bare, "azure.server") is not None
    no_vaults = good_azure().model_copy(update={"app_secrets": None, "vaults": None})
    assert skipped_section(ServerSnapshot(name="x", azure=no_vaults), "azure.keyvault")


def _postgres(**settings: str) -> PostgresSnapshot:
    return PostgresSnapshot(
        version="16.4",
        version_num=160004,
        connected_as="pgwarden_auditor",
        endpoint=Endpoint(host="db.example.com"),
        settings={k: Setting(name=k, value=v) for k, v in settings.items()},
        databases=(),
        roles=(),
        memberships=(),
        sessions=None,
        database_details=(),
    )


def test_tls_and_logging_read_pg_settings_without_azure() -> None:
    pg = _postgres(
        ssl="off",
        ssl_min_protocol_version="TLSv1",
        log_connections="on",
        log_disconnections="off",
        log_checkpoints="on",
    )
    tls = evaluate(InsecureTransport, AzureSnapshot(cloud="AzureCloud"), postgres=pg)
    assert [(v.status, v.resource) for v in tls] == [
        ("fail", "setting/ssl"),
        ("fail", "setting/ssl_min_protocol_version"),
    ]
    assert "ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1.2'" in (tls[1].remediation or "")
    logging = evaluate(LoggingDisabled, AzureSnapshot(cloud="AzureCloud"), postgres=pg)
    # No Azure: connection_throttle.enable and logfiles.retention_days do not apply.
    assert [(v.status, v.resource) for v in logging] == [("fail", "setting/log_disconnections")]


def test_tls_without_any_source_is_an_error() -> None:
    gap = Gap(section="azure.configurations", reason="Azure refused", fix="assign Reader")
    verdicts = evaluate(InsecureTransport, AzureSnapshot(cloud="AzureCloud", gaps=(gap,)))
    assert [v.status for v in verdicts] == ["error"]
    assert "assign Reader" in verdicts[0].message


def test_admin_role_from_config_wins_over_arm() -> None:
    text = CONFIG.format(policy="").replace(
        'name = "ctxeco-db"\n', 'name = "ctxeco-db"\nadmin_role = "boss"\n', 1
    )
    config = parse_config(text, "p.toml")
    snapshot = ServerSnapshot(name="ctxeco-db", azure=good_azure())
    assert server_context(snapshot, config.server[0], config).admin_role == "boss"
    config = parse_config(CONFIG.format(policy=""), "p.toml")
    assert server_context(snapshot, config.server[0], config).admin_role == "ctxecoadmin"
