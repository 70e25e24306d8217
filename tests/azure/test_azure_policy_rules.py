"""PGW-AZ: the built-in Azure Policy audits, on snapshot fragments (table-driven)."""

from __future__ import annotations

import pytest

from pgwarden.engine import missing_section, skipped_section
from pgwarden.model.frameworks.catalogue import AZURE_POLICY
from pgwarden.model.snapshot import (
    AzureSnapshot,
    DefenderPlan,
    DiagnosticSetting,
    Gap,
    PrivateEndpoint,
    ServerSnapshot,
    ThreatProtection,
)
from pgwarden.rules.azure_policy import (
    RULES,
    DefenderPlanOff,
    NoCustomerManagedKey,
    NoDiagnosticLogs,
    NoPrivateEndpoint,
    PasswordAuthenticationOn,
    ThreatProtectionOff,
)
from pgwarden.rules.base import Rule
from tests.azure.test_rules import Change, evaluate, good_azure, replace, server_change

OPT_IN = (
    "require_entra_only_auth = true\nrequire_customer_managed_key = true\n"
    "require_private_endpoint = true"
)
OPT_OUT = "require_threat_protection = false\nrequire_diagnostic_logs = false"
LOGS = DiagnosticSetting(
    name="to-workspace", workspace_id="/subscriptions/sub/workspaces/w", logs=("allLogs",)
)
SERVER = "server/ctxeco-db"


def compliant() -> AzureSnapshot:
    """A server every PGW-AZ rule passes, even with every opt-in switch on."""
    azure = server_change(
        password_auth="Disabled",
        data_encryption="AzureKeyVault",
        customer_key_uri="https://keys.vault.azure.net/keys/pg/1",
        private_endpoints=(PrivateEndpoint(name="pe", status="Approved"),),
    )(good_azure())
    return azure.model_copy(
        update={
            "threat_protection": ThreatProtection(state="Enabled"),
            "defender_plan": DefenderPlan(
                name="OpenSourceRelationalDatabases", pricing_tier="Standard"
            ),
            "diagnostic_settings": (LOGS,),
        }
    )


# (rule, change to the compliant snapshot, policy TOML, expected (status, resource))
CASES: list[tuple[type[Rule], Change, str, list[tuple[str, str]]]] = [
    (PasswordAuthenticationOn, server_change(password_auth="Enabled"), OPT_IN, [("fail", SERVER)]),
    (PasswordAuthenticationOn, server_change(entra_auth="Disabled"), OPT_IN, [("fail", SERVER)]),
    (PasswordAuthenticationOn, server_change(password_auth="Enabled"), "", []),
    (
        NoCustomerManagedKey,
        server_change(data_encryption="SystemManaged", customer_key_uri=None),
        OPT_IN,
        [("fail", SERVER)],
    ),
    (NoCustomerManagedKey, server_change(customer_key_uri=""), OPT_IN, [("fail", SERVER)]),
    (NoCustomerManagedKey, server_change(data_encryption="SystemManaged"), "", []),
    (NoPrivateEndpoint, server_change(private_endpoints=()), OPT_IN, [("fail", SERVER)]),
    (
        NoPrivateEndpoint,
        server_change(private_endpoints=(PrivateEndpoint(name="pe", status="Pending"),)),
        OPT_IN,
        [("fail", SERVER)],
    ),
    # A server in a delegated subnet has no public endpoint and no private endpoints.
    (
        NoPrivateEndpoint,
        server_change(private_endpoints=(), delegated_subnet_id="/subscriptions/s/subnets/pg"),
        OPT_IN,
        [],
    ),
    (NoPrivateEndpoint, server_change(private_endpoints=()), "", []),
    (
        ThreatProtectionOff,
        replace(threat_protection=ThreatProtection(state="Disabled")),
        "",
        [("fail", SERVER)],
    ),
    (ThreatProtectionOff, replace(threat_protection=ThreatProtection()), "", [("fail", SERVER)]),
    (ThreatProtectionOff, replace(threat_protection=ThreatProtection()), OPT_OUT, []),
    (
        DefenderPlanOff,
        replace(
            defender_plan=DefenderPlan(name="OpenSourceRelationalDatabases", pricing_tier="Free")
        ),
        "",
        [("fail", "subscription/sub")],
    ),
    (
        DefenderPlanOff,
        replace(defender_plan=DefenderPlan(name="OpenSourceRelationalDatabases")),
        "",
        [("fail", "subscription/sub")],
    ),
    (DefenderPlanOff, replace(defender_plan=DefenderPlan(name="x")), OPT_OUT, []),
    (NoDiagnosticLogs, replace(diagnostic_settings=()), "", [("fail", SERVER)]),
    # Logs enabled but sent nowhere, or only metrics sent: not kept.
    (
        NoDiagnosticLogs,
        replace(diagnostic_settings=(LOGS.model_copy(update={"workspace_id": None}),)),
        "",
        [("fail", SERVER)],
    ),
    (
        NoDiagnosticLogs,
        replace(diagnostic_settings=(LOGS.model_copy(update={"logs": ()}),)),
        "",
        [("fail", SERVER)],
    ),
    (
        NoDiagnosticLogs,
        replace(
            diagnostic_settings=(
                DiagnosticSetting(name="hub", event_hub="rule", logs=("PostgreSQLLogs",)),
            )
        ),
        "",
        [],
    ),
    (NoDiagnosticLogs, replace(diagnostic_settings=()), OPT_OUT, []),
]


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_passes_a_compliant_server(rule: type[Rule]) -> None:
    assert evaluate(rule, compliant(), OPT_IN) == []


@pytest.mark.parametrize(
    ("rule", "change", "policy", "expected"),
    CASES,
    ids=[f"{c[0].id}-{i}" for i, c in enumerate(CASES)],
)
def test_rule_verdicts(
    rule: type[Rule], change: Change, policy: str, expected: list[tuple[str, str]]
) -> None:
    verdicts = evaluate(rule, change(compliant()), policy)
    assert [(v.status, v.resource) for v in verdicts] == expected
    for verdict in verdicts:
        assert verdict.message and verdict.remediation


def test_every_rule_names_its_azure_policy_definition() -> None:
    for rule in RULES:
        assert any(c.framework == AZURE_POLICY for c in rule.controls), rule.id


def test_new_sections_missing_with_a_gap_are_errors_without_one_skipped() -> None:
    gap = Gap(section="azure.defender_plan", reason="Azure refused to read the plans")
    refused = ServerSnapshot(
        name="s", azure=compliant().model_copy(update={"defender_plan": None, "gaps": (gap,)})
    )
    assert missing_section(refused, "azure.defender_plan") == gap.reason
    assert skipped_section(refused, "azure.defender_plan") is None
    never = ServerSnapshot(name="s", azure=AzureSnapshot(cloud="AzureCloud"))
    assert skipped_section(never, "azure.diagnostic_settings") is not None


def test_a_whole_azure_failure_is_an_error_for_every_azure_section() -> None:
    gap = Gap(section="azure", reason="reading Azure failed: KeyError")
    failed = ServerSnapshot(name="s", azure=AzureSnapshot(cloud="AzureCloud", gaps=(gap,)))
    assert missing_section(failed, "azure.threat_protection") == gap.reason
    assert skipped_section(failed, "azure.threat_protection") is None
