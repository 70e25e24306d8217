"""The Azure collectors, through the real SDK clients, against the HTTPS fakes."""

from __future__ import annotations

import time

import pytest

from pgwarden.collect.azure.arm import ArmCollector
from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.collect.azure.server import collect_azure, discover_servers
from pgwarden.model.config import Config, parse_config
from pgwarden.model.errors import ConfigError
from pgwarden.model.snapshot import AzureSnapshot
from tests.azure.conftest import make_session
from tests.azure.fakes import (
    ADMIN,
    FQDN,
    SECRET_CANARY,
    SUBSCRIPTION,
    TOKEN_CANARY,
    FakeAzure,
    FakeFlexibleServer,
    FakeVault,
    SeedAzure,
    StaticCredential,
    TlsFixture,
    metric_alert,
)


def _config(seed: SeedAzure) -> Config:
    return parse_config(seed.config(), "pgwarden.toml")


def test_seed_server_is_read_in_full(seed: SeedAzure, session: AzureSession) -> None:
    config = _config(seed)
    snapshot = collect_azure(config, config.server[0], session)
    assert snapshot.gaps == ()
    server = snapshot.server
    assert server is not None
    assert server.administrator_login == ADMIN
    assert server.fqdn == FQDN
    assert server.resource_group == "ctxeco-rg"
    assert server.backup_retention_days == 7
    assert server.geo_redundant_backup == "Disabled"
    assert server.public_network_access == "Enabled"
    assert server.major_version == 15
    # Four firewall rules over two pages: nextLink was followed.
    assert snapshot.firewall_rules is not None
    assert {r.name for r in snapshot.firewall_rules} >= {"AllowAll", "office", "ci-runner"}
    assert len(snapshot.firewall_rules) == 4
    assert snapshot.configurations is not None
    assert snapshot.configurations["require_secure_transport"].value == "off"
    assert snapshot.administrators == ()
    assert snapshot.metric_alerts == ()


def test_next_link_pages_keep_the_client_api_version(
    seed: SeedAzure, session: AzureSession
) -> None:
    config = _config(seed)
    collect_azure(config, config.server[0], session)
    pages = [path for _host, path, _auth in seed.fake.requests if path.endswith("/firewallRules")]
    assert len(pages) == 2


def test_arm_tokens_use_the_cloud_scope_even_on_a_custom_endpoint(
    seed: SeedAzure, session: AzureSession, credential: StaticCredential
) -> None:
    config = _config(seed)
    collect_azure(config, config.server[0], session)
    assert "https://management.azure.com/.default" in credential.scopes
    assert all(len(scope) > 1 for scope in credential.scopes)  # a list, not a split string


def test_key_vault_answers_the_challenge_and_keeps_no_value(
    seed: SeedAzure, session: AzureSession
) -> None:
    fresh = seed.fake.add_vault(FakeVault(name="fresh-kv", resource_group="rg"), fresh_host=True)
    fresh.secrets["database-url"] = seed.radar_vault.secrets["database-url"]
    text = seed.config().replace(seed.radar_vault.url, fresh.url)
    config = parse_config(text, "pgwarden.toml")
    snapshot = collect_azure(config, config.server[0], session)
    assert fresh.server is not None
    first, second = [r for r in seed.fake.requests if r[0] == f"localhost:{fresh.server.port}"][:2]
    assert first[2] == ""  # the challenge round: no token on the first request
    assert second[2].startswith("Bearer ")
    assert snapshot.app_secrets is not None
    radar = next(s for s in snapshot.app_secrets if s.app == "secai-radar")
    assert radar.vault == "fresh-kv"  # named from ARM's vaultUri, not the host
    assert radar.secret is not None and radar.secret.endpoint is not None
    endpoint = radar.secret.endpoint
    assert (endpoint.user, endpoint.host, endpoint.port, endpoint.database, endpoint.sslmode) == (
        "secairadar_app",
        FQDN,
        5432,
        "secairadar",
        "require",
    )
    text = snapshot.model_dump_json()
    assert SECRET_CANARY not in text and TOKEN_CANARY not in text
    assert AzureSnapshot.model_validate_json(text) == snapshot


def test_only_connection_string_secrets_are_read(seed: SeedAzure, session: AzureSession) -> None:
    config = _config(seed)
    snapshot = collect_azure(config, config.server[0], session)
    reads = [path for _h, path, _a in seed.fake.requests if path.startswith("/secrets/")]
    assert not any("openai-api-key" in path for path in reads)
    vault = next(v for v in snapshot.vaults or () if v.name == "secai-radar-kv")
    listed = {s.name: s for s in vault.secrets or ()}
    assert listed["openai-api-key"].connection_string is False
    assert listed["openai-api-key"].endpoint is None
    assert listed["database-url"].connection_string is True


def test_vault_properties_come_from_arm(seed: SeedAzure, session: AzureSession) -> None:
    config = _config(seed)
    snapshot = collect_azure(config, config.server[0], session)
    ctxeco = snapshot.vault("ctxeco-kv")
    assert ctxeco is not None
    assert ctxeco.purge_protection is False and ctxeco.soft_delete is True
    assert ctxeco.rbac_authorization is True and ctxeco.properties_gap is None


def test_forbidden_arm_calls_name_the_missing_role(seed: SeedAzure, session: AzureSession) -> None:
    seed.fake.fail(r"/flexibleServers/ctxeco-db", 403, "AuthorizationFailed")
    config = _config(seed)
    snapshot = collect_azure(config, config.server[0], session)
    assert snapshot.server is None and snapshot.firewall_rules is None
    gap = snapshot.gap("azure.server")
    assert gap is not None
    assert "AuthorizationFailed" in gap.reason
    assert gap.fix == "assign Reader on the server ctxeco-db (or on its resource group ctxeco-rg)"
    assert snapshot.gap("azure.firewall") is not None


def test_forbidden_vault_names_key_vault_secrets_user(
    seed: SeedAzure, session: AzureSession
) -> None:
    seed.radar_vault.forbidden = True
    config = _config(seed)
    snapshot = collect_azure(config, config.server[0], session)
    radar = next(s for s in snapshot.app_secrets or () if s.app == "secai-radar")
    assert (
        radar.gap is not None and radar.gap.fix == "assign Key Vault Secrets User on secai-radar-kv"
    )
    vault = snapshot.vault("secai-radar-kv")
    assert vault is not None and vault.secrets is None and vault.secrets_gap is not None


def test_missing_secret_is_recorded_as_not_found(seed: SeedAzure, session: AzureSession) -> None:
    del seed.radar_vault.secrets["database-url"]
    config = _config(seed)
    snapshot = collect_azure(config, config.server[0], session)
    radar = next(s for s in snapshot.app_secrets or () if s.app == "secai-radar")
    assert radar.found is False and radar.gap is None


def test_a_configured_server_arm_does_not_know_is_a_config_error(
    seed: SeedAzure, session: AzureSession
) -> None:
    config = parse_config(seed.config().replace('name = "ctxeco-db"', 'name = "nope-db"'), "p.toml")
    with pytest.raises(ConfigError, match="no Flexible Server 'nope-db' in resource group"):
        collect_azure(config, config.server[0], session)


def test_throttling_within_the_budget_is_waited_out(
    seed: SeedAzure, fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    fake.fail(r"/firewallRules$", 429, "TooManyRequests", times=1, headers={"Retry-After": "1"})
    session = make_session(fake, tls, credential, retry_total=2, retry_after_budget_s=5)
    config = _config(seed)
    started = time.monotonic()
    snapshot = collect_azure(config, config.server[0], session)
    assert snapshot.firewall_rules is not None and len(snapshot.firewall_rules) == 4
    assert 1.0 <= time.monotonic() - started < 10


def test_throttling_beyond_the_budget_fails_fast(
    seed: SeedAzure, fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    fake.fail(r"/firewallRules$", 429, "TooManyRequests", headers={"Retry-After": "3600"})
    session = make_session(fake, tls, credential, retry_total=3, retry_after_budget_s=5)
    config = _config(seed)
    started = time.monotonic()
    snapshot = collect_azure(config, config.server[0], session)
    assert time.monotonic() - started < 10
    gap = snapshot.gap("azure.firewall")
    assert gap is not None and "throttled" in gap.reason and "429" in gap.reason


def test_unreachable_arm_is_one_clear_line(seed: SeedAzure, tls: TlsFixture) -> None:
    config = _config(seed)
    session = AzureSession(
        cloud=make_session(seed.fake, tls, StaticCredential()).cloud,
        credential=StaticCredential(),
        arm_endpoint="https://127.0.0.1:1",
        options=make_session(seed.fake, tls, StaticCredential()).options,
    )
    snapshot = collect_azure(config, config.server[0], session)
    gap = snapshot.gap("azure.server")
    assert gap is not None
    assert gap.reason == "cannot read server ctxeco-db: 127.0.0.1:1: the connection was refused"
    assert snapshot.gap("azure.firewall") == gap.model_copy(update={"section": "azure.firewall"})


def test_server_without_resource_group_is_located(seed: SeedAzure, session: AzureSession) -> None:
    text = seed.config().replace(', resource_group = "ctxeco-rg"', "")
    config = parse_config(text, "p.toml")
    snapshot = collect_azure(config, config.server[0], session)
    assert snapshot.server is not None and snapshot.server.resource_group == "ctxeco-rg"


def test_discovery_finds_unconfigured_servers(seed: SeedAzure, session: AzureSession) -> None:
    seed.fake.add_server(
        FakeFlexibleServer(name="zep-db", resource_group="zep-rg", properties={"version": "16"})
    )
    text = seed.config().replace(
        "[azure]\n", f'[azure]\ndiscover = [{{ subscription_id = "{SUBSCRIPTION}" }}]\n'
    )
    config = parse_config(text, "p.toml")
    found = discover_servers(config, session)
    assert [d.config.name for d in found] == ["zep-db"]
    ref = found[0].config.azure
    assert ref is not None and ref.resource_group == "zep-rg" and ref.server_name == "zep-db"


def test_metric_alerts_are_matched_to_the_server(seed: SeedAzure, session: AzureSession) -> None:
    server_id = seed.server.id
    seed.fake.metric_alerts += [
        metric_alert("cpu", server_id.upper(), ["cpu_percent"]),
        metric_alert("other", server_id.replace("ctxeco-db", "other-db"), ["cpu_percent"]),
        metric_alert("off", server_id, ["memory_percent"], enabled=False),
    ]
    config = _config(seed)
    snapshot = collect_azure(config, config.server[0], session)
    alerts = {a.name: a for a in snapshot.metric_alerts or ()}
    assert set(alerts) == {"cpu", "off"}
    assert alerts["cpu"].metrics == ("cpu_percent",) and alerts["off"].enabled is False


def test_lists_documented_as_one_page_are_read_to_their_last_page(
    seed: SeedAzure, session: AzureSession
) -> None:
    # ARM documents metric alerts, diagnostic settings and Defender pricings as one
    # page each; answered in pages of two, every page is still read (what covers the
    # server is on the last one), so no list is cut short silently.
    fake = seed.fake
    fake.page_single_page_lists = True
    server_id = seed.server.id
    fake.metric_alerts += [
        metric_alert(f"elsewhere-{n}", server_id.replace("ctxeco-db", f"db{n}"), ["cpu_percent"])
        for n in range(4)
    ]
    fake.metric_alerts.append(metric_alert("ours", server_id, ["cpu_percent"]))
    seed.server.diagnostic_settings = [
        {"name": f"metrics-{n}", "properties": {"logs": []}} for n in range(4)
    ] + [
        {
            "name": "logs",
            "properties": {
                "workspaceId": "/subscriptions/x/workspaces/w",
                "logs": [{"category": "PostgreSQLLogs", "enabled": True}],
            },
        }
    ]
    fake.defender_plans.update({f"Plan{n}": "Free" for n in range(4)})
    fake.defender_plans["OpenSourceRelationalDatabases"] = "Standard"
    config = _config(seed)
    snapshot = collect_azure(config, config.server[0], session)
    assert snapshot.gaps == ()
    assert [a.name for a in snapshot.metric_alerts or ()] == ["ours"]
    assert [d.name for d in snapshot.diagnostic_settings or ()][-1] == "logs"
    assert len(snapshot.diagnostic_settings or ()) == 5
    assert snapshot.defender_plan is not None
    assert snapshot.defender_plan.pricing_tier == "Standard"
    alert_pages = [p for _h, p, _a in fake.requests if p.endswith("/metricAlerts")]
    assert len(alert_pages) == 3


def test_a_list_whose_pages_never_end_is_a_gap(seed: SeedAzure, session: AzureSession) -> None:
    fake = seed.fake
    # Every page links to the same next page.
    link = (
        f"{fake.arm_url}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Insights/"
        "metricAlerts?api-version=2018-03-01&page=again"
    )
    body = {"value": [], "nextLink": link}
    fake.serve_example(
        "/providers/Microsoft.Insights/metricAlerts$", {"responses": {"200": {"body": body}}}
    )
    config = _config(seed)
    snapshot = collect_azure(config, config.server[0], session)
    assert snapshot.metric_alerts is None
    gap = snapshot.gap("azure.alerts")
    assert gap is not None and "an unexpected answer from Azure" in gap.reason


def test_arm_collector_discovers_by_resource_group(seed: SeedAzure, session: AzureSession) -> None:
    collector = ArmCollector(session, SUBSCRIPTION)
    try:
        assert [s.name for s, _full in collector.discover("ctxeco-rg")] == ["ctxeco-db"]
        assert collector.discover("empty-rg") == []
    finally:
        collector.close()
