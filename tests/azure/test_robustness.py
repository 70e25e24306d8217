"""Whatever Azure answers, the collectors lose at most the section they were reading,
and every message built from an exception is its status, error code and request id."""

from __future__ import annotations

import re

import pytest
from azure.core.exceptions import DeserializationError
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest
from pytest_httpserver import HTTPServer

from pgwarden.collect.azure.cloud import (
    AzureSession,
    OffEndpointRequest,
    PinnedEndpointPolicy,
    origin,
)
from pgwarden.collect.azure.monitor import collect_metric_alerts
from pgwarden.collect.azure.server import collect_azure
from pgwarden.collect.failure import describe_failure
from pgwarden.model.config import parse_config
from tests.azure.fakes import (
    FUTURE,
    SUBSCRIPTION,
    FakeAzure,
    FakeSecret,
    SeedAzure,
    TlsFixture,
    metric_alert,
)

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


def test_a_next_link_to_another_host_is_not_followed(
    fake: FakeAzure, seed: SeedAzure, session: AzureSession, tls: TlsFixture
) -> None:
    # Every list page links to another host (a misrouted or hostile answer): the
    # SDK's pipeline would send the scan's bearer token there. Nothing is sent; each
    # list that had a second page is a gap for its section, and nothing else is lost.
    elsewhere = HTTPServer(ssl_context=tls.server_context())
    elsewhere.expect_request(re.compile(".*")).respond_with_json({"value": []})
    elsewhere.start()
    try:
        fake.link_base = f"https://localhost:{elsewhere.port}"
        fake.page_single_page_lists = True
        seed.radar_vault.secrets = {
            **seed.radar_vault.secrets,
            "z-other": FakeSecret("not a dsn", expires=FUTURE),
        }
        config = parse_config(seed.config(), "pgwarden.toml")
        azure = collect_azure(config, config.server[0], session)
        assert elsewhere.log == []
    finally:
        elsewhere.stop()
    refused = (
        f"a link in Azure's answer led away from {fake.arm_url}: not followed, and no "
        "credential sent there"
    )
    gaps = {g.section: g.reason for g in azure.gaps}
    # The firewall rules (four, two a page) and server parameters, listed by the SDK's
    # pagers; diagnostic settings, listed by pgwarden's own pager (paged here).
    assert "azure.firewall" in gaps and "azure.configurations" in gaps
    assert all(refused in reason for reason in gaps.values()), gaps
    assert str(elsewhere.port) not in azure.model_dump_json()
    assert azure.server is not None  # one GET, no page to follow
    # The vault's secret list (three secrets, two a page) is read from the vault's host.
    vault = azure.vault("secai-radar-kv")
    assert vault is not None and vault.secrets is None and vault.secrets_gap is not None
    assert f"led away from {seed.radar_vault.url}" in vault.secrets_gap.reason


def test_an_origin_is_scheme_host_and_port_with_the_default_filled_in() -> None:
    assert origin("https://Management.Azure.com/x") == origin(
        "https://management.azure.com:443/subscriptions?$skiptoken=2"
    )
    assert origin("https://management.azure.com/") != origin("https://management.azure.com:8443/")
    assert origin("https://management.azure.com/") != origin("http://management.azure.com/")
    assert origin("https://management.azure.com.evil.example/") != origin(
        "https://management.azure.com/"
    )
    assert origin("https://host:99999/") is None


def test_an_arm_client_given_another_endpoint_may_still_follow_links_to_its_clouds() -> None:
    # An arm_endpoint for a proxy or a private route: ARM's own links name the cloud's
    # endpoint, which the token is meant for; any other host stays refused.
    policy = PinnedEndpointPolicy(
        "https://arm.proxy.example:8443/", ("https://management.azure.com/",)
    )

    def send(url: str) -> None:
        policy.on_request(PipelineRequest(HttpRequest("GET", url), PipelineContext(None)))

    send("https://arm.proxy.example:8443/subscriptions?$skiptoken=1")
    send("https://management.azure.com:443/subscriptions?$skiptoken=2")
    for elsewhere in (
        "https://management.azure.com.evil.example/x",
        "http://arm.proxy.example:8443/",
    ):
        with pytest.raises(OffEndpointRequest) as refused:
            send(elsewhere)
        assert describe_failure(refused.value) == (
            "a link in Azure's answer led away from https://arm.proxy.example:8443: not "
            "followed, and no credential sent there"
        )
