"""PGW-AZ-004 and PGW-AZ-005: Microsoft Defender for Cloud on the server and its subscription."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import AZURE_POLICY, CIS_AZURE, NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import server_args
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict

# Threat protection on the server, and the plan that turns it on for the subscription,
# are what CIS Azure 3.1.7.2 (Defender for open-source relational databases) and NIST
# SI-4 (system monitoring) ask for.
DEFENDER_CONTROLS = (Control(CIS_AZURE, "3.1.7.2"), Control(NIST_800_53, "SI-4"))


class ThreatProtectionOff(Rule):
    """Microsoft Defender advanced threat protection is off on the server.

    Threat protection watches the server's logins and queries for brute force,
    logins from unusual places and suspicious access patterns, and alerts the
    security team. On a server shared by several apps, one app's leaked credentials
    put every tenant at risk; nobody hears of it without detection. CIS asks for it;
    ``require_threat_protection = false`` turns the check off.

    Violation: the server's ``advancedThreatProtectionSettings/Default`` state is not
    Enabled (or the server has no such setting).

    Fix: az postgres flexible-server advanced-threat-protection-setting update
    --resource-group RG --server-name SERVER --state Enabled (or turn on the
    subscription's Defender plan for open-source relational databases, PGW-AZ-005).
    """

    id = "PGW-AZ-004"
    severity = "medium"
    controls = (Control(AZURE_POLICY, "d38668f5-d155-42c7-ab3d-9b57b50f8fbf"), *DEFENDER_CONTROLS)
    requires = (Section.AZURE_THREAT_PROTECTION,)
    policy_switch = "require_threat_protection"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        azure = snapshot.azure
        assert azure is not None and azure.threat_protection is not None
        state = azure.threat_protection.state
        if (state or "").lower() == "enabled":
            return
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"server {context.name!r}: Microsoft Defender threat protection is "
            + (state.lower() if state else "not configured"),
            evidence={"advanced_threat_protection": state or "not configured"},
            remediation="az postgres flexible-server advanced-threat-protection-setting update "
            f"{server_args(snapshot, context, name_flag='--server-name')} --state Enabled",
        )


class DefenderPlanOff(Rule):
    """The subscription's Defender plan for open-source relational databases is off.

    The plan (Microsoft.Security/pricings/OpenSourceRelationalDatabases, tier
    Standard) turns on threat protection for every PostgreSQL and MySQL server of the
    subscription, including servers created later; without it each server must be
    switched on by hand and new ones start unprotected. CIS asks for it;
    ``require_threat_protection = false`` turns the check off.

    Violation: the subscription's OpenSourceRelationalDatabases plan is not on the
    Standard tier (Free, or absent).

    Fix: az security pricing create --name OpenSourceRelationalDatabases --tier
    standard --subscription SUBSCRIPTION_ID.
    """

    id = "PGW-AZ-005"
    severity = "medium"
    controls = (Control(AZURE_POLICY, "0a9fbe0d-c5c4-4da8-87d8-f4fd77338835"), *DEFENDER_CONTROLS)
    requires = (Section.AZURE_DEFENDER_PLAN,)
    policy_switch = "require_threat_protection"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        azure = snapshot.azure
        assert azure is not None and azure.defender_plan is not None
        plan = azure.defender_plan
        if (plan.pricing_tier or "").lower() == "standard":
            return
        ref = context.server.azure
        subscription = ref.subscription_id if ref else "SUBSCRIPTION_ID"
        yield Verdict(
            resource=f"subscription/{subscription}",
            message=f"subscription {subscription}: the Microsoft Defender plan {plan.name} is "
            + (f"on the {plan.pricing_tier} tier" if plan.pricing_tier else "not set")
            + f"; server {context.name!r} is not covered",
            evidence={"plan": plan.name, "pricing_tier": plan.pricing_tier or "not set"},
            remediation=f"az security pricing create --name {plan.name} --tier standard "
            f"--subscription {subscription}",
        )
