"""The snapshot sections: what a rule may require, and what a collector may fail to read.

One typed set shared by the snapshot (which field holds each Azure section), the rule
metadata (``Rule.requires``) and the engine (a missing section becomes an ``error``
finding that says what is missing, so a blind rule never passes).
"""

from __future__ import annotations

from enum import StrEnum


class Section(StrEnum):
    """A part of a server's snapshot that a rule can require.

    A ``StrEnum``: plug-in rules may keep naming sections by their strings
    (``requires = ("postgres",)``).
    """

    POSTGRES = "postgres"
    POSTGRES_SESSIONS = "postgres.sessions"
    POSTGRES_DATABASE_DETAILS = "postgres.database_details"
    POSTGRES_CRON = "postgres.cron"
    AZURE = "azure"
    AZURE_SERVER = "azure.server"
    AZURE_FIREWALL = "azure.firewall"
    AZURE_CONFIGURATIONS = "azure.configurations"
    AZURE_ADMINISTRATORS = "azure.administrators"
    AZURE_KEYVAULT = "azure.keyvault"
    AZURE_ALERTS = "azure.alerts"
    AZURE_VAULTS = "azure.vaults"
    AZURE_THREAT_PROTECTION = "azure.threat_protection"
    AZURE_DEFENDER_PLAN = "azure.defender_plan"
    AZURE_DIAGNOSTIC_SETTINGS = "azure.diagnostic_settings"
    AZURE_VAULT_ACCESS = "azure.vault_access"
    # Not collected: what the owners wrote down about the server's tenants. A rule that
    # judges the tenancy map requires it, and is skipped on a server that has none.
    TENANCY_MAP = "tenancy-map"

    @property
    def is_azure(self) -> bool:
        return self.value.startswith("azure")


SECTIONS = frozenset(Section)

# Which AzureSnapshot field holds each ``azure.*`` section.
AZURE_SECTIONS: dict[Section, str] = {
    Section.AZURE_SERVER: "server",
    Section.AZURE_FIREWALL: "firewall_rules",
    Section.AZURE_CONFIGURATIONS: "configurations",
    Section.AZURE_ADMINISTRATORS: "administrators",
    Section.AZURE_KEYVAULT: "app_secrets",
    Section.AZURE_VAULTS: "vaults",
    Section.AZURE_ALERTS: "metric_alerts",
    Section.AZURE_THREAT_PROTECTION: "threat_protection",
    Section.AZURE_DEFENDER_PLAN: "defender_plan",
    Section.AZURE_DIAGNOSTIC_SETTINGS: "diagnostic_settings",
    Section.AZURE_VAULT_ACCESS: "vault_access",
}
