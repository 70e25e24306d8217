"""PGW-AZ: Microsoft's built-in Azure Policy audits for PostgreSQL flexible servers."""

from __future__ import annotations

from pgwarden.rules.azure_policy.defender import DefenderPlanOff, ThreatProtectionOff
from pgwarden.rules.azure_policy.diagnostics import NoDiagnosticLogs
from pgwarden.rules.azure_policy.encryption import NoCustomerManagedKey
from pgwarden.rules.azure_policy.entra_only import PasswordAuthenticationOn
from pgwarden.rules.azure_policy.private_endpoint import NoPrivateEndpoint

__all__ = [
    "RULES",
    "DefenderPlanOff",
    "NoCustomerManagedKey",
    "NoDiagnosticLogs",
    "NoPrivateEndpoint",
    "PasswordAuthenticationOn",
    "ThreatProtectionOff",
]

RULES = [
    PasswordAuthenticationOn,
    NoCustomerManagedKey,
    NoPrivateEndpoint,
    ThreatProtectionOff,
    DefenderPlanOff,
    NoDiagnosticLogs,
]
