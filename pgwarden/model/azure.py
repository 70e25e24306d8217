"""What the Azure collectors see of one Flexible Server: ARM, Key Vault, Monitor, Defender.

Plain, immutable data like the rest of the snapshot (``AzureSnapshot`` is its Azure side).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from pgwarden.model.endpoint import Endpoint
from pgwarden.model.frozen import Frozen
from pgwarden.model.gap import Gap
from pgwarden.model.sections import AZURE_SECTIONS, Section


class PrivateEndpoint(Frozen):
    """A private endpoint connection of a server and the state of its approval."""

    name: str
    status: str | None = None
    provisioning_state: str | None = None


class AzureServer(Frozen):
    """A Flexible Server as Azure Resource Manager describes it (no password field).

    ``data_encryption`` is ``SystemManaged`` or ``AzureKeyVault`` (customer-managed
    key, whose URI and status follow); ``private_endpoints`` lists the server's private
    endpoint connections (``private_endpoint_connections`` is their number).
    """

    id: str
    name: str
    subscription_id: str
    resource_group: str
    location: str | None = None
    administrator_login: str | None = None
    version: str | None = None
    state: str | None = None
    fqdn: str | None = None
    backup_retention_days: int | None = None
    geo_redundant_backup: str | None = None
    high_availability_mode: str | None = None
    public_network_access: str | None = None
    delegated_subnet_id: str | None = None
    private_endpoint_connections: int = 0
    entra_auth: str | None = None
    password_auth: str | None = None
    data_encryption: str | None = None
    customer_key_uri: str | None = None
    customer_key_status: str | None = None
    private_endpoints: tuple[PrivateEndpoint, ...] = ()
    # The resource's Azure tags ([fleet] map_tag may name its tenancy map).
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def major_version(self) -> int | None:
        """The PostgreSQL major version ("16" -> 16), None when ARM did not say."""
        head = (self.version or "").split(".")[0]
        return int(head) if head.isdigit() else None


class FirewallRule(Frozen):
    """A server firewall rule: an arbitrary inclusive IPv4 range, not a CIDR."""

    name: str
    start_ip: str
    end_ip: str


class ServerParameter(Frozen):
    """A server parameter (ARM ``configurations``)."""

    name: str
    value: str | None = None
    default_value: str | None = None
    source: str | None = None
    read_only: bool | None = None


class EntraAdministrator(Frozen):
    """A Microsoft Entra principal that administers the server."""

    principal_name: str | None = None
    principal_type: str | None = None
    object_id: str | None = None


class SecretInfo(Frozen):
    """A Key Vault secret's metadata and, for connection strings, where the DSN points.

    ``connection_string`` marks a secret pgwarden read as a DSN (an app's designated
    secret, or one whose name or content type matches ``dsn_secret_pattern``).
    ``endpoint`` is the secret's DSN reduced to user, host, port, database and sslmode;
    the value itself is dropped as soon as it is parsed. ``dsn_error`` says why a value
    that was read is not a usable DSN (never quoting it); ``read_error`` why it could
    not be read.
    """

    vault: str
    name: str
    connection_string: bool = False
    content_type: str | None = None
    enabled: bool | None = None
    expires_on: datetime | None = None
    not_before: datetime | None = None
    updated_on: datetime | None = None
    endpoint: Endpoint | None = None
    dsn_error: str | None = None
    read_error: Gap | None = None


class KeyVault(Frozen):
    """A vault that holds an app's DSN secret: ARM properties and its secret listing.

    ``properties`` fields are None when the vault's ARM resource could not be read
    (``properties_gap`` says why); ``secrets`` is None when the vault could not be
    listed (``secrets_gap`` says why).
    """

    name: str
    url: str
    id: str | None = None
    soft_delete: bool | None = None
    purge_protection: bool | None = None
    rbac_authorization: bool | None = None
    public_network_access: str | None = None
    network_default_action: str | None = None
    properties_gap: Gap | None = None
    secrets: tuple[SecretInfo, ...] | None = None
    secrets_gap: Gap | None = None


class AppSecret(Frozen):
    """An app's designated DSN secret (``[[server.app]] secret``) and what it holds.

    ``found`` is False when the vault answered that the secret does not exist;
    ``secret`` is None when it could not be read (``gap`` says why).
    """

    app: str
    reference: str
    vault: str
    name: str
    found: bool = True
    secret: SecretInfo | None = None
    gap: Gap | None = None


class MetricAlert(Frozen):
    """An Azure Monitor metric alert rule and the metrics its criteria watch."""

    id: str
    name: str
    enabled: bool
    scopes: tuple[str, ...] = ()
    target_resource_type: str | None = None
    metrics: tuple[str, ...] = ()


class ThreatProtection(Frozen):
    """The server's Microsoft Defender advanced threat protection setting.

    ``state`` is ``Enabled`` or ``Disabled``; None when Azure has no setting at all.
    """

    state: str | None = None


class DefenderPlan(Frozen):
    """A subscription's Microsoft Defender for Cloud plan (``Microsoft.Security/pricings``).

    ``pricing_tier`` is ``Standard`` (on) or ``Free`` (off); None when the
    subscription lists no such plan.
    """

    name: str
    pricing_tier: str | None = None
    sub_plan: str | None = None


class DiagnosticSetting(Frozen):
    """A diagnostic setting of the server: where its resource logs go.

    ``logs`` names the enabled log categories and category groups (``allLogs``,
    ``audit``, ``PostgreSQLLogs``, …); a destination is None when not set.
    """

    name: str
    workspace_id: str | None = None
    storage_account_id: str | None = None
    event_hub: str | None = None
    logs: tuple[str, ...] = ()

    @property
    def destinations(self) -> tuple[str, ...]:
        """The kinds of destination the setting sends to."""
        found = (
            ("Log Analytics", self.workspace_id),
            ("storage account", self.storage_account_id),
            ("event hub", self.event_hub),
        )
        return tuple(kind for kind, target in found if target)


class SecretReader(Frozen):
    """A principal that may read an app vault's secrets, and the grant that lets it.

    ``via`` ``role`` is an Azure RBAC role assignment (``role`` its role's name,
    ``scope`` where it is assigned: the secret, the vault, its resource group,
    subscription or a management group, as ``scope_kind`` says); ``access-policy`` is
    one of the vault's access policies (``scope`` the vault). ``actions`` are the
    secret-reading data actions the role grants (RBAC) or the secret permissions of
    the policy; ``granted_by`` the role's data action patterns that grant them
    (wildcards included). ``reads_values`` is False when only metadata can be read
    (names, content types, dates). ``conditional``: the assignment has an ABAC
    condition that may narrow it (pgwarden does not evaluate conditions).
    """

    principal_id: str
    principal_type: str | None = None
    via: Literal["role", "access-policy"]
    role: str | None = None
    role_definition_id: str | None = None
    role_type: str | None = None
    scope: str
    scope_kind: str
    actions: tuple[str, ...]
    granted_by: tuple[str, ...] = ()
    reads_values: bool = True
    conditional: bool = False
    application_id: str | None = None

    def covers(self, secret: str) -> bool:
        """Whether the grant reaches secret ``secret`` of the vault (not only another one)."""
        if self.scope_kind != "secret":
            return True
        return self.scope.rstrip("/").lower().endswith("/secrets/" + secret.lower())


class VaultAccess(Frozen):
    """Who can read the secrets of one app vault, and how (section ``azure.vault_access``).

    ``mode`` is ``rbac`` when the vault authorizes data access with Azure RBAC,
    ``access-policy`` when with access policies. ``readers`` is None when the vault's
    access could not be read; ``gap`` says why (with ``readers`` present, what part
    could not be resolved, such as a role definition).
    """

    vault: str
    id: str | None = None
    mode: Literal["rbac", "access-policy"] | None = None
    readers: tuple[SecretReader, ...] | None = None
    gap: Gap | None = None


class AzureIdentity(Frozen):
    """Who pgwarden signed in to Azure as: claims of its ARM access token, never the token."""

    tenant_id: str | None = None
    object_id: str | None = None
    app_id: str | None = None
    name: str | None = Field(default=None, description="user principal or display name")
    kind: str | None = Field(default=None, description="the token's idtyp: user or app")


class AzureSnapshot(Frozen):
    """What the Azure collectors saw for one server.

    A field is None when its part was not collected: with a Gap of the same section
    when Azure refused or failed (rules then report ``error`` naming the missing role
    assignment), without one when the config never asked for it (no ``azure``
    reference, no app secrets): rules that need it then do not apply.
    """

    cloud: str
    server: AzureServer | None = None
    firewall_rules: tuple[FirewallRule, ...] | None = None
    configurations: dict[str, ServerParameter] | None = None
    administrators: tuple[EntraAdministrator, ...] | None = None
    app_secrets: tuple[AppSecret, ...] | None = None
    vaults: tuple[KeyVault, ...] | None = None
    metric_alerts: tuple[MetricAlert, ...] | None = None
    threat_protection: ThreatProtection | None = None
    defender_plan: DefenderPlan | None = None
    diagnostic_settings: tuple[DiagnosticSetting, ...] | None = None
    vault_access: tuple[VaultAccess, ...] | None = None
    gaps: tuple[Gap, ...] = ()
    identity: AzureIdentity | None = None

    def gap(self, section: str) -> Gap | None:
        """Why a section is missing: its own gap, else one for all of Azure (``azure``)."""
        return next((gap for gap in self.gaps if gap.section == section), None) or next(
            (gap for gap in self.gaps if gap.section == "azure"), None
        )

    def collected(self, section: str) -> bool:
        """Whether the data of an ``azure.*`` section (``azure``: any of them) is present."""
        if section == "azure":
            return True
        return getattr(self, AZURE_SECTIONS[Section(section)]) is not None

    def parameter(self, name: str) -> ServerParameter | None:
        return (self.configurations or {}).get(name)

    def vault(self, name: str) -> KeyVault | None:
        for vault in self.vaults or ():
            if vault.name.lower() == name.lower():
                return vault
        return None
