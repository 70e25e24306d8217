"""Whatever Azure answers, the collectors lose at most the section they were reading,
and every message built from an exception is its status, error code and request id."""

from __future__ import annotations

from azure.core.exceptions import DeserializationError

from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.collect.azure.monitor import collect_metric_alerts
from pgwarden.collect.azure.server import collect_azure
from pgwarden.collect.failure import describe_failure
from pgwarden.model.config import parse_config
from tests.azure.fakes import SUBSCRIPTION, FakeAzure, SeedAzure, metric_alert

BODY = '{"value": [{"properties": {"description": "another team\'s secret plan"}}]}'


def test_describe_failure_of_an_unreadable_response_never_quotes_it() -> None:
    error = DeserializationError(f"Cannot deserialize: {BODY}")
    assert describe_failure(error) == "the response could not be read (DeserializationError)"
    assert describe_failure(KeyError("another team's secret plan")) == "KeyError"


def test_a_refusal_names_status_code_and_request_id(
    fake: FakeAzure, seed: SeedAzure, session: AzureSession
) -> None:
    fake.fail(r"/firewallRules$", 403, "AuthorizationFailed", headers={"x-ms-request-id": "req-42"})
    config = parse_config(seed.config(), "pgwarden.toml")
    azure = collect_azure(config, config.server[0], session)
    gap = azure.gap("azure.firewall")
    assert gap is not None
    assert gap.reason == (
        "Azure refused to list the firewall rules of server ctxeco-db "
        "(HTTP 403 AuthorizationFailed, request id req-42)"
    )
    assert "injected" not in azure.model_dump_json()
    # Only the firewall was lost.
    assert [g.section for g in azure.gaps] == ["azure.firewall"]
    assert azure.configurations is not None and azure.server is not None


def test_an_unexpected_value_costs_its_section_only(
    fake: FakeAzure, seed: SeedAzure, session: AzureSession
) -> None:
    # A firewall rule without addresses: the snapshot cannot hold it.
    odd = {
        "responses": {
            "200": {"body": {"value": [{"name": "odd", "properties": {"startIpAddress": 7}}]}}
        }
    }
    fake.serve_example(r"/firewallRules$", odd)
    config = parse_config(seed.config(), "pgwarden.toml")
    azure = collect_azure(config, config.server[0], session)
    assert [g.section for g in azure.gaps] == ["azure.firewall"]
    assert "ValidationError (an unexpected answer from Azure)" in azure.gaps[0].reason
    assert azure.server is not None and azure.app_secrets is not None


def test_an_answer_of_the_wrong_shape_costs_its_section_only(
    fake: FakeAzure, seed: SeedAzure, session: AzureSession
) -> None:
    # A 200 without the "value" list, and a threat protection state that is a number.
    fake.fail(r"/diagnosticSettings$", 200, "NotAList")
    fake.serve_example(
        r"/advancedThreatProtectionSettings/Default$",
        {"responses": {"200": {"body": {"properties": {"state": 42}}}}},
    )
    config = parse_config(seed.config(), "pgwarden.toml")
    azure = collect_azure(config, config.server[0], session)
    assert [g.section for g in azure.gaps] == ["azure.diagnostic_settings"]
    assert "UnexpectedAnswer" in azure.gaps[0].reason and "NotAList" not in azure.gaps[0].reason
    assert azure.server is not None and azure.firewall_rules is not None
    assert azure.threat_protection is not None and azure.threat_protection.state == "42"


def test_alerts_without_a_name_take_the_last_segment_of_their_id(
    fake: FakeAzure, session: AzureSession
) -> None:
    server = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/x/flexibleServers/db"
    unnamed = metric_alert("pg-cpu", server, ["cpu_percent"])
    del unnamed["name"]
    fake.metric_alerts.append(unnamed)
    alerts, gap = collect_metric_alerts(session, SUBSCRIPTION, server)
    assert gap is None and alerts is not None
    assert [a.name for a in alerts] == ["pg-cpu"]


def test_the_alert_list_is_read_once_per_subscription(
    fake: FakeAzure, session: AzureSession
) -> None:
    fake.metric_alerts.append(metric_alert("a", "/subscriptions/x/y", ["cpu_percent"]))
    for server in ("db1", "db2", "db3"):
        collect_metric_alerts(session, SUBSCRIPTION, f"/subscriptions/{SUBSCRIPTION}/{server}")
    calls = [p for _h, p, _a in fake.requests if p.endswith("/metricAlerts")]
    assert len(calls) == 1


def test_calls_are_counted_per_thread(
    fake: FakeAzure, seed: SeedAzure, session: AzureSession
) -> None:
    config = parse_config(seed.config(), "pgwarden.toml")
    before = session.calls_in_thread()
    collect_azure(config, config.server[0], session)
    sent = [r for r in fake.requests if r[1] != "/msi/token"]
    # Key Vault's challenge round trip (a request without a token) is not a call.
    challenges = [r for r in sent if not r[2]]
    assert session.calls_in_thread() - before == len(sent) - len(challenges)
