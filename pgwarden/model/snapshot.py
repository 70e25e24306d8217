"""Plain data at the pipeline's boundaries: the Snapshot collectors produce.

Every model here is immutable and round-trips through JSON. A Snapshot never holds a
secret value: DSNs are reduced to user, host, port, database and sslmode before they
reach it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from pgwarden.model.acl import AclItem as AclItem  # re-exported: its home before model.acl
from pgwarden.model.channels import ForeignServer, PgCron
from pgwarden.model.extensions import Extension, ProceduralLanguage
from pgwarden.model.frozen import Frozen
from pgwarden.model.routines import DefinerFunction
from pgwarden.model.sections import AZURE_SECTIONS, Section

SYSTEM_DATABASES = frozenset(
    {"postgres", "template0", "template1", "azure_maintenance", "azure_sys"}
)
AZURE_ROLES = frozenset({"azuresu", "azure_pg_admin", "replication"})


class Role(Frozen):
    """A role from ``pg_roles`` (never ``pg_authid``: no password verifiers)."""

    name: str
    login: bool
    superuser: bool = False
    createrole: bool = False
    createdb: bool = False
    replication: bool = False
    bypassrls: bool = False
    inherit: bool = True
    connection_limit: int = -1
    valid_until: str | None = None
    # The role initdb created (OID 10; ``azuresu`` on Azure): it cannot be dropped and
    # owns the cluster, so it is nobody's tenant.
    bootstrap_superuser: bool = False
    # A Microsoft Entra principal (its ``pgaadauth`` security label): ``user`` (a
    # person), ``group`` or ``service`` (a managed identity or service principal),
    # and its object id in lower case. None for a role that logs in with a password.
    entra_kind: str | None = None
    entra_object_id: str | None = None


class Membership(Frozen):
    """A direct ``pg_auth_members`` edge: ``member`` belongs to ``role``.

    Before PostgreSQL 16 ``inherit_option`` is the member's ``rolinherit`` and
    ``set_option`` is always true.
    """

    role: str
    member: str
    grantor: str | None = None
    admin_option: bool = False
    inherit_option: bool = True
    set_option: bool = True


class Database(Frozen):
    """A database and its effective ACL (``acl_is_default`` when ``datacl`` is NULL)."""

    name: str
    owner: str
    allow_connections: bool = True
    is_template: bool = False
    connection_limit: int = -1
    acl: tuple[AclItem, ...]
    acl_is_default: bool = False

    @property
    def public_connect(self) -> bool:
        """Whether PUBLIC holds CONNECT on it: every role may log in, whatever its grants."""
        return any(item.is_public and "CONNECT" in item.privileges for item in self.acl)


class Setting(Frozen):
    """A server setting as ``pg_settings`` shows it."""

    name: str
    value: str
    unit: str | None = None
    source: str | None = None


class Session(Frozen):
    """A client backend seen in ``pg_stat_activity`` during the sampling window."""

    pid: int
    database: str | None
    user: str | None
    application_name: str
    client_addr: str | None = None
    backend_start: datetime | None = None
    state: str | None = None
    client_visible: bool = True
    samples: int = 1


class SchemaInfo(Frozen):
    """A schema and its effective ACL."""

    name: str
    owner: str
    acl: tuple[AclItem, ...]


class DefaultPrivilege(Frozen):
    """An ``ALTER DEFAULT PRIVILEGES`` entry (``schema`` None: for the whole database)."""

    role: str
    schema_name: str | None
    object_type: Literal["table", "sequence", "function", "type", "schema"]
    acl: tuple[AclItem, ...]


class ObjectGrant(Frozen):
    """Privileges a grantee holds on a relation or routine, other than as its owner.

    ``grantor`` is who granted them (a REVOKE must be issued as that role);
    ``arguments`` is a routine's identity argument list (None for relations).
    """

    schema_name: str
    name: str
    kind: str
    owner: str
    grantee: str | None
    privileges: tuple[str, ...]
    grantor: str | None = None
    arguments: str | None = None


class Ownership(Frozen):
    """How many relations of one kind a role owns in a database."""

    role: str
    kind: str
    count: int


class DatabaseDetail(Frozen):
    """What one connection to a database showed, or why it could not be made."""

    name: str
    collected: bool
    error: str | None = None
    schemas: tuple[SchemaInfo, ...] = ()
    default_privileges: tuple[DefaultPrivilege, ...] = ()
    object_grants: tuple[ObjectGrant, ...] = ()
    ownership: tuple[Ownership, ...] = ()
    # What runs or leads out of the database; None: not read (a snapshot made before
    # pgwarden read them), never "none there".
    definer_functions: tuple[DefinerFunction, ...] | None = None
    foreign_servers: tuple[ForeignServer, ...] | None = None
    extensions: tuple[Extension, ...] | None = None
    untrusted_languages: tuple[ProceduralLanguage, ...] | None = None


class Gap(Frozen):
    """Something the collector could not see, and what would let it."""

    section: str
    reason: str
    fix: str | None = None


class Endpoint(Frozen):
    """Where a DSN points, with every secret dropped."""

    user: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    sslmode: str | None = None


class CollectionMetrics(Frozen):
    """What collecting one server cost: SQL statements, connections, seconds per phase.

    Phases: ``connect`` (the first session), ``server`` (server-wide catalogs),
    ``databases`` (one session and one round trip per database) and ``sessions``
    (waiting, after the last database, for the session sampler's window to end). The
    databases are read as soon as the role names are known, while the rest of the
    server-wide work goes on, so ``server`` and ``databases`` may overlap.
    ``derived_keys``: the logins after the main session's used SCRAM keys derived once
    (``collectors.scram``) rather than running PBKDF2 each. For benchmarks and for
    operators watching scans of big servers grow.
    """

    statements: int
    connections: int
    phase_seconds: dict[str, float] = Field(default_factory=dict)
    derived_keys: bool = False


class PostgresSnapshot(Frozen):
    """Everything the PostgreSQL collector saw on one server."""

    version: str
    version_num: int
    connected_as: str
    endpoint: Endpoint
    settings: dict[str, Setting]
    databases: tuple[Database, ...]
    roles: tuple[Role, ...]
    memberships: tuple[Membership, ...]
    sessions: tuple[Session, ...] | None
    session_samples: int = 0
    database_details: tuple[DatabaseDetail, ...]
    gaps: tuple[Gap, ...] = ()
    stats: CollectionMetrics | None = None
    # Where the main session landed: its database, and the server's address and port
    # on that connection (None over a Unix socket): what "this server" is when a
    # foreign server or a pg_cron job names a host.
    connected_database: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    # None: not read (a snapshot made before pgwarden read it, or a gap "cron" says why).
    pg_cron: PgCron | None = None

    def setting(self, name: str) -> Setting | None:
        return self.settings.get(name)

    def detail(self, database: str) -> DatabaseDetail | None:
        for detail in self.database_details:
            if detail.name == database:
                return detail
        return None

    def gap(self, section: str) -> Gap | None:
        for gap in self.gaps:
            if gap.section == section:
                return gap
        return None


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


class ServerSnapshot(Frozen):
    """One server: what PostgreSQL and Azure showed (None when not collected)."""

    name: str
    postgres: PostgresSnapshot | None = None
    azure: AzureSnapshot | None = None
    errors: tuple[Gap, ...] = ()


class Snapshot(Frozen):
    """Everything collected in one run, ready for the rules."""

    schema_version: Literal["1.0"] = "1.0"
    tool_version: str
    collected_at: datetime
    config_path: str | None = None
    servers: tuple[ServerSnapshot, ...] = Field(default_factory=tuple)

    def to_json(self) -> str:
        """The snapshot file's text (``None`` kept: a null grantee is PUBLIC)."""
        return self.model_dump_json(indent=1) + "\n"
