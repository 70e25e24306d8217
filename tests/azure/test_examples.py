"""Azure's own example responses, verbatim, served to the real SDK clients.

The files under ``examples/`` are copied from the REST API specifications (see
``examples/PROVENANCE.md``). Every operation pgwarden calls is answered with one; the
scan must read each field it uses, lose at most the section whose example the SDK
cannot read (``listMetricAlert.json``'s ``"evaluationFrequency": "Pt1m"``), and never
let a response body reach any output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pgwarden.collect.azure.arm import ArmCollector
from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.collect.azure.keyvault import KeyVaultCollector
from pgwarden.collect.azure.server import collect_azure
from pgwarden.model.config import AppConfig, Config, parse_config
from pgwarden.model.snapshot import AzureSnapshot
from pgwarden.reports.registry import RENDERERS
from tests.azure.fakes import FakeAzure, FakeVault, TlsFixture
from tests.azure.test_cli_e2e import pgwarden

EXAMPLES = Path(__file__).parent / "examples"
FLEX = "flexible-servers-2026-10-01"
SUBSCRIPTION = "ffffffff-ffff-ffff-ffff-ffffffffffff"
GROUP = "exampleresourcegroup"
SERVER = "exampleserver"
# Text of response bodies that must never reach an output: what a DeserializationError
# or an HTTP error's message would quote.
BODY_TEXT = (
    "This is the description of the rule1",
    "Pt15m",
    "gigwadme",
    "hidden-link",
    "webHookProperties",
    "mysecretvalue",
)

_SUB = r"^/subscriptions/[^/]+"
_SERVERS = rf"{_SUB}(/resourceGroups/[^/]+)?/providers/Microsoft.DBforPostgreSQL/flexibleServers"


def example(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / path).read_text(encoding="utf-8"))
    return loaded


def serve_examples(fake: FakeAzure, *, server: str = "ServersGet.json") -> FakeVault:
    """Answer every call pgwarden makes with Azure's example for it; one vault."""
    fake.serve_example(
        rf"{_SUB}/providers/Microsoft.DBforPostgreSQL/flexibleServers$",
        example(f"{FLEX}/ServersListBySubscription.json"),
    )
    fake.serve_example(
        rf"{_SUB}/resourceGroups/[^/]+/providers/Microsoft.DBforPostgreSQL/flexibleServers$",
        example(f"{FLEX}/ServersListByResourceGroup.json"),
    )
    fake.serve_example(rf"{_SERVERS}/[^/]+$", example(f"{FLEX}/{server}"))
    fake.serve_example(
        rf"{_SERVERS}/[^/]+/firewallRules$", example(f"{FLEX}/FirewallRulesListByServer.json")
    )
    # The specs' configuration list examples are some 390 KB (every parameter of a
    # server); the list is served as one page holding the 2026-01-01-preview
    # ConfigurationsGet example's resource, verbatim.
    fake.serve_example(
        rf"{_SERVERS}/[^/]+/configurations$",
        example("flexible-servers-2026-01-01-preview/ConfigurationsGet.json"),
        as_list=True,
    )
    fake.serve_example(
        rf"{_SERVERS}/[^/]+/administrators$",
        example(f"{FLEX}/AdministratorsMicrosoftEntraListByServer.json"),
    )
    fake.serve_example(
        rf"{_SERVERS}/[^/]+/advancedThreatProtectionSettings/Default$",
        example(f"{FLEX}/AdvancedThreatProtectionSettingsGet.json"),
    )
    fake.serve_example(
        rf"{_SERVERS}/[^/]+/providers/Microsoft.Insights/diagnosticSettings$",
        example("monitor-2021-05-01-preview/listDiagnosticSettings.json"),
    )
    fake.serve_example(
        rf"{_SUB}/providers/Microsoft.Security/pricings$",
        example("security-2024-01-01/ListPricings_example.json"),
    )
    fake.serve_example(
        rf"{_SUB}/providers/Microsoft.Insights/metricAlerts$",
        example("monitor-2018-03-01/listMetricAlert.json"),
    )
    # The vault list's nextLink names /subscriptions/…/resources: its page is empty.
    fake.serve_example(
        rf"{_SUB}/(providers/Microsoft.KeyVault/vaults|resources)$",
        example("keyvault-2026-05-15/listVaultBySubscription.json"),
    )
    fake.serve_example(r"^/secrets/?$", example("keyvault-secrets-7.6/GetSecrets-example.json"))
    fake.serve_example(
        r"^/secrets/[^/]+(/[^/]*)?/?$", example("keyvault-secrets-7.6/GetSecret-example.json")
    )
    return fake.add_vault(FakeVault(name="myvault", resource_group=GROUP), fresh_host=True)


def config_text(fake: FakeAzure, vault: FakeVault, *, servers: int = 1) -> str:
    text = f"""
[policy]
session_samples = 1
session_window_seconds = 0

[azure]
arm_endpoint = "{fake.arm_url}"
"""
    for index in range(servers):
        text += f"""
[[server]]
name = "{SERVER}-{index}"
dsn = "host=127.0.0.1 port=1 user=pgwarden_auditor dbname=postgres connect_timeout=2"
azure = {{ subscription_id = "{SUBSCRIPTION}", resource_group = "{GROUP}", \
server_name = "{SERVER}" }}

[[server.app]]
name = "example-app-{index}"
databases = ["exampledb{index}"]
secret = "keyvault:{vault.url}/secrets/mysecretname"
"""
    return text


def collect_examples(fake: FakeAzure, session: AzureSession, **serve: str) -> AzureSnapshot:
    vault = serve_examples(fake, **serve)
    config: Config = parse_config(config_text(fake, vault), "pgwarden.toml")
    return collect_azure(config, config.server[0], session)


def test_every_field_pgwarden_reads_comes_from_the_examples(
    fake: FakeAzure, session: AzureSession
) -> None:
    azure = collect_examples(fake, session)
    server = azure.server
    assert server is not None
    assert (server.name, server.version, server.administrator_login) == (
        SERVER,
        "17",
        "exampleadministratorlogin",
    )
    assert (server.backup_retention_days, server.geo_redundant_backup) == (7, "Enabled")
    assert (server.public_network_access, server.high_availability_mode) == ("Enabled", "Disabled")
    assert (server.entra_auth, server.password_auth) == ("Disabled", "Enabled")
    assert (server.data_encryption, server.private_endpoints) == ("SystemManaged", ())
    assert [(r.name, r.start_ip, r.end_ip) for r in azure.firewall_rules or ()] == [
        ("examplefirewallrule1", "0.0.0.0", "255.255.255.255"),  # noqa: S104 - a rule's bound
        ("examplefirewallrule2", "1.0.0.0", "255.0.0.0"),
    ]
    parameter = azure.parameter("array_nulls")
    assert parameter is not None
    assert (parameter.value, parameter.source, parameter.read_only) == (
        "on",
        "system-default",
        False,
    )
    assert [(a.principal_name, a.principal_type) for a in azure.administrators or ()] == [
        ("exampleuser@contoso.com", "User"),
        ("examplegroup@contoso.com", "Group"),
    ]
    assert azure.threat_protection is not None
    assert azure.threat_protection.state == "Enabled"
    assert azure.defender_plan is not None
    assert (azure.defender_plan.name, azure.defender_plan.pricing_tier) == (
        "OpenSourceRelationalDatabases",
        "Free",
    )
    [setting] = azure.diagnostic_settings or ()
    # "workspaceId": "" in the example: no Log Analytics destination.
    assert (setting.name, setting.logs) == ("mysetting", ("allLogs",))
    assert setting.destinations == ("storage account", "event hub")
    [listed] = (azure.vaults or ())[0].secrets or ()
    assert (listed.name, listed.content_type, listed.enabled) == (
        "listsecrettest0",
        "plainText",
        True,
    )
    [app_secret] = azure.app_secrets or ()
    assert app_secret.secret is not None
    # The example's value is no connection string; it is never kept.
    assert app_secret.secret.dsn_error is not None
    assert "mysecretvalue" not in azure.model_dump_json()


def test_an_alert_the_sdk_cannot_read_costs_the_alerts_section_only(
    fake: FakeAzure, session: AzureSession
) -> None:
    azure = collect_examples(fake, session)
    assert azure.metric_alerts is None
    gaps = {gap.section: gap.reason for gap in azure.gaps}
    assert list(gaps) == ["azure.alerts"]
    assert "could not be read (DeserializationError)" in gaps["azure.alerts"]
    # The example's vault is sample-vault; the fake serves this one on localhost, so
    # which listed vault it is cannot be told. Not a failure of any example.
    [vault] = azure.vaults or ()
    assert vault.properties_gap is not None
    assert "is not in subscription" in vault.properties_gap.reason
    assert not any(text in azure.model_dump_json() for text in BODY_TEXT)


def test_private_endpoints_come_from_the_server_example(
    fake: FakeAzure, session: AzureSession
) -> None:
    azure = collect_examples(fake, session, server="ServersGetWithPrivateEndpoints.json")
    assert azure.server is not None
    [endpoint] = azure.server.private_endpoints
    assert endpoint.name == "exampleprivateendpoint.40c899c7-5847-493e-9c9e-d0a0c90aaf92"
    assert (endpoint.status, endpoint.provisioning_state) == ("Approved", "Succeeded")


def test_discovery_and_customer_managed_keys_from_the_list_examples(
    fake: FakeAzure, session: AzureSession
) -> None:
    serve_examples(fake)
    collector = ArmCollector(session, SUBSCRIPTION)
    try:
        everywhere = {s.name: s for s, _full in collector.discover(None)}
        in_group = [s.name for s, _full in collector.discover(GROUP)]
    finally:
        collector.close()
    assert sorted(everywhere) == [f"exampleserver{n}" for n in range(1, 5)]
    assert in_group == ["exampleserver1", "exampleserver2"]
    cmk = everywhere["exampleserver3"]
    assert (cmk.data_encryption, cmk.customer_key_status) == ("AzureKeyVault", "Valid")
    assert (cmk.customer_key_uri or "").startswith("https://examplekeyvault3.vault.azure.net/keys/")
    assert everywhere["exampleserver1"].delegated_subnet_id is not None


def test_vault_properties_come_from_the_vault_list_example(
    fake: FakeAzure, session: AzureSession
) -> None:
    serve_examples(fake)
    collector = KeyVaultCollector(session, subscription_id=SUBSCRIPTION, dsn_secret_pattern="x")
    [vault], gap = collector.vault_properties()
    assert gap is None
    assert (vault.name, vault.uri_host, vault.soft_delete) == (
        "sample-vault",
        "sample-vault.vault.azure.net",
        True,
    )
    # enablePurgeProtection and enableRbacAuthorization are absent from the example.
    assert (vault.purge_protection, vault.rbac) == (False, None)


def test_secret_listing_follows_the_example_next_link(
    fake: FakeAzure, session: AzureSession
) -> None:
    vault = serve_examples(fake)
    collector = KeyVaultCollector(
        session, subscription_id=SUBSCRIPTION, dsn_secret_pattern="(?i)database"
    )
    app = AppConfig(name="a", secret=f"keyvault:{vault.url}/secrets/mysecretname")
    data = collector.collect([app], "test")
    listed = [path for _host, path, _auth in fake.requests if path.rstrip("/") == "/secrets"]
    # The first page, its challenge round trip, then the page the nextLink names.
    assert len(listed) == 3
    assert [s.name for s in data.vaults[0].secrets or ()] == ["listsecrettest0"]


@pytest.fixture(scope="module")
def example_scan(
    fake_servers: FakeAzure, tls: TlsFixture, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """``pgwarden scan`` of two servers answered by the examples, every format written."""
    fake_servers.reset()
    vault = serve_examples(fake_servers)
    tmp_path = tmp_path_factory.mktemp("examples")
    config = tmp_path / "pgwarden.toml"
    config.write_text(config_text(fake_servers, vault, servers=2), encoding="utf-8")
    outputs = [arg for name in RENDERERS for arg in (f"--{name}", str(tmp_path / f"out.{name}"))]
    run = pgwarden(fake_servers, tls, "scan", "--config", str(config), *outputs, cwd=tmp_path)
    results = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    alert_calls = [p for _h, p, _a in fake_servers.requests if p.endswith("/metricAlerts")]
    return {"run": run, "results": results, "dir": tmp_path, "alert_calls": alert_calls}


def test_the_scan_survives_the_examples(example_scan: dict[str, Any]) -> None:
    run, results = example_scan["run"], example_scan["results"]
    # PostgreSQL is unreachable on purpose (incomplete), and the examples fail rules.
    assert run.returncode == 1, run.stderr
    findings = results["findings"]
    alerts = {(f["server"], f["status"]) for f in findings if f["rule_id"] == "PGW-MON-001"}
    assert alerts == {("exampleserver-0", "error"), ("exampleserver-1", "error")}
    failing = {(f["rule_id"], f["server"]) for f in findings if f["status"] == "fail"}
    # The rest of each server's Azure side was read and judged.
    for server in ("exampleserver-0", "exampleserver-1"):
        assert {("PGW-NET-001", server), ("PGW-AZ-005", server)} <= failing


def test_the_subscription_alert_list_is_read_once(example_scan: dict[str, Any]) -> None:
    assert len(example_scan["alert_calls"]) == 1


def test_no_response_body_reaches_any_output(example_scan: dict[str, Any]) -> None:
    outputs = {
        path.name: path.read_text(encoding="utf-8") for path in example_scan["dir"].glob("out.*")
    }
    outputs["stderr"] = example_scan["run"].stderr
    outputs["stdout"] = example_scan["run"].stdout
    assert {"out.json", "out.sarif", "out.html"} <= set(outputs)
    leaks = {(name, text) for name, body in outputs.items() for text in BODY_TEXT if text in body}
    assert leaks == set()


def test_progress_counts_each_servers_azure_calls(example_scan: dict[str, Any]) -> None:
    lines = [line for line in example_scan["run"].stderr.splitlines() if "collected (" in line]
    assert len(lines) == 2
    # Server, rules, parameters, admins, threat protection, diagnostics: 6 calls at least.
    counts = sorted(int(line.split("read, ")[1].split(" Azure")[0]) for line in lines)
    assert counts[0] >= 6, lines
