"""Plain data at the pipeline's boundaries: the Snapshot collectors produce.

Every model here is immutable and round-trips through JSON. A Snapshot never holds a
secret value: DSNs are reduced to user, host, port, database and sslmode before they
reach it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pgwarden.model.sections import AZURE_SECTIONS, Section

SYSTEM_DATABASES = frozenset(
    {"postgres", "template0", "template1", "azure_maintenance", "azure_sys"}
)
AZURE_ROLES = frozenset({"azuresu", "azure_pg_admin", "replication"})


# One shared set per combination of explicitly set fields (see Frozen.model_post_init).
_FIELDS_SET: dict[frozenset[str], set[str]] = {}


class Frozen(BaseModel):
    """Base of every boundary model: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_post_init(self, context: Any, /) -> None:
        # Pydantic gives every instance its own set of the fields that were set (about
        # 700 bytes, more than the rest of a grant): a 1,000-database snapshot holds
        # some 100,000 instances. A frozen instance never changes that set (model_copy
        # copies it), so instances with the same fields set share one.
        fields_set = self.__pydantic_fields_set__
        shared = _FIELDS_SET.setdefault(frozenset(fields_set), fields_set)
        object.__setattr__(self, "__pydantic_fields_set__", shared)


class AclItem(Frozen):
    """One grantee's privileges from an ACL; ``grantee`` None means PUBLIC."""

    grantee: str | None
    grantor: str
    privileges: tuple[str, ...]
    grantable: tuple[str, ...] = ()

    @property
    def is_public(self) -> bool:
        return self.grantee is None


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


class AzureServer(Frozen):
    """A Flexible Server as Azure Resource Manager describes it (no password field)."""

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
    gaps: tuple[Gap, ...] = ()

    def gap(self, section: str) -> Gap | None:
        return next((gap for gap in self.gaps if gap.section == section), None)

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
