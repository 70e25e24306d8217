"""Plain data at the pipeline's boundaries: the Snapshot collectors produce.

Every model here is immutable and round-trips through JSON. A Snapshot never holds a
secret value: DSNs are reduced to user, host, port, database and sslmode before they
reach it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from pgwarden.model.acl import AclItem as AclItem  # re-exported: its home before model.acl
from pgwarden.model.azure import AppSecret as AppSecret
from pgwarden.model.azure import AzureIdentity as AzureIdentity
from pgwarden.model.azure import AzureServer as AzureServer
from pgwarden.model.azure import AzureSnapshot as AzureSnapshot
from pgwarden.model.azure import DefenderPlan as DefenderPlan
from pgwarden.model.azure import DiagnosticSetting as DiagnosticSetting
from pgwarden.model.azure import EntraAdministrator as EntraAdministrator
from pgwarden.model.azure import FirewallRule as FirewallRule
from pgwarden.model.azure import KeyVault as KeyVault
from pgwarden.model.azure import MetricAlert as MetricAlert

# The Azure side and the small shared types have modules of their own; re-exported here,
# where collectors, rules and plug-ins have always imported them.
from pgwarden.model.azure import PrivateEndpoint as PrivateEndpoint
from pgwarden.model.azure import SecretInfo as SecretInfo
from pgwarden.model.azure import SecretReader as SecretReader
from pgwarden.model.azure import ServerParameter as ServerParameter
from pgwarden.model.azure import ThreatProtection as ThreatProtection
from pgwarden.model.azure import VaultAccess as VaultAccess
from pgwarden.model.channels import ForeignServer, PgCron
from pgwarden.model.endpoint import Endpoint as Endpoint
from pgwarden.model.extensions import Extension, ProceduralLanguage
from pgwarden.model.frozen import Frozen
from pgwarden.model.gap import Gap as Gap
from pgwarden.model.json_pieces import spliced, whole
from pgwarden.model.routines import DefinerFunction

SYSTEM_DATABASES = frozenset(
    {"postgres", "template0", "template1", "azure_maintenance", "azure_sys"}
)
# Flexible Server's group of its admin and of the roles the admin makes admins.
AZURE_ADMIN_GROUP = "azure_pg_admin"
AZURE_ROLES = frozenset({"azuresu", AZURE_ADMIN_GROUP, "replication"})


@dataclass(frozen=True, slots=True)
class Role:
    """A role from ``pg_roles`` (never ``pg_authid``: no password verifiers).

    A frozen slotted dataclass, as ``Membership`` and ``ObjectGrant``: a server may
    have tens of thousands of roles, and a model of these fields costs four times the
    memory. Read from JSON, the snapshot's model validates it as strictly as a model.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

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


@dataclass(frozen=True, slots=True)
class Membership:
    """A direct ``pg_auth_members`` edge: ``member`` belongs to ``role``.

    Before PostgreSQL 16 ``inherit_option`` is the member's ``rolinherit`` and
    ``set_option`` is always true. A frozen slotted dataclass, as ``Role``.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    role: str
    member: str
    grantor: str | None = None
    admin_option: bool = False
    inherit_option: bool = True
    set_option: bool = True


# The connection limit PostgreSQL gives a database a DROP DATABASE left half dropped.
INVALID_DATABASE_LIMIT = -2


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

    @property
    def invalid(self) -> bool:
        """Whether a DROP DATABASE was interrupted while dropping it (``datconnlimit`` -2,
        from PostgreSQL 14.9, 15.4 and 16): nobody can connect to it, only drop it."""
        return self.connection_limit == INVALID_DATABASE_LIMIT


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
    object_type: Literal["table", "sequence", "function", "type", "schema", "large object"]
    acl: tuple[AclItem, ...]


@dataclass(frozen=True, slots=True)
class ObjectGrant:
    """Privileges a grantee holds on a relation or routine, other than as its owner.

    ``grantor`` is who granted them (a REVOKE must be issued as that role);
    ``arguments`` is a routine's identity argument list (None for relations);
    ``column`` names the column of a column privilege (``GRANT SELECT (c) ON t``),
    None for a privilege on the whole object.

    The one record a snapshot holds per table, sequence and routine grant (hundreds of
    thousands on a server of big databases), so it is a slotted dataclass, not a model:
    about a quarter of a model's memory, and made in half the time by the collector,
    whose values are already typed. Read from JSON, the snapshot's model validates it
    as strictly as any model (every type checked, no unknown field).
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    schema_name: str
    name: str
    kind: str
    owner: str
    grantee: str | None
    privileges: tuple[str, ...]
    grantor: str | None = None
    arguments: str | None = None
    # Left out of the JSON when None: most grants are on whole objects, and a snapshot
    # without column privileges stays what pgwarden wrote before it read them.
    column: Annotated[str | None, Field(exclude_if=lambda column: column is None)] = None


class LargeObjects(Frozen):
    """Large objects of one owner that share one ACL: how many, and the first OIDs.

    ``acl`` holds the items other than the owner's own (empty: only the owner may
    read or write them, the default); ``oids`` the first ``MAX_LISTED`` OIDs in
    ascending order. One row per owner and ACL, not per object: a database may hold
    millions of large objects made alike.
    """

    owner: str
    acl: tuple[AclItem, ...] = ()
    count: int = Field(ge=1)
    oids: tuple[Annotated[int, Field(ge=0)], ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _counted(self) -> LargeObjects:
        if len(self.oids) > self.count:
            raise ValueError(f"lists {len(self.oids)} OIDs of {self.count} large objects")
        return self


class Ownership(Frozen):
    """How many relations (or large objects) of one kind a role owns in a database."""

    role: str
    kind: str
    count: int


# What each section of a database that can be lost on its own holds, as messages say
# (the names DatabaseDetail.unread gives them).
SECTION_NAMES = {
    "relations": "tables, views and sequences",
    "routines": "routines",
    "default_privileges": "default privileges",
    "foreign_servers": "foreign servers",
    "extensions": "extensions",
    "untrusted_languages": "untrusted languages",
    "column_grants": "column privileges",
    "large_objects": "large objects",
}


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
    # pgwarden read them, or its catalog refused: ``unread``), never "none there".
    definer_functions: tuple[DefinerFunction, ...] | None = None
    foreign_servers: tuple[ForeignServer, ...] | None = None
    extensions: tuple[Extension, ...] | None = None
    untrusted_languages: tuple[ProceduralLanguage, ...] | None = None
    # Left out of the JSON when empty: nearly every database holds no large object, and
    # a snapshot without them stays what pgwarden wrote before it read them.
    large_objects: tuple[LargeObjects, ...] = Field(
        default=(), exclude_if=lambda objects: not objects
    )
    # Sections of a collected database that could not be read (SECTION_NAMES), each
    # with the one-line reason: "relations" are their grants and owners, "routines"
    # their grants and definer_functions, "foreign_servers" the servers or their user
    # mappings. The rest was read, and the rules judge it, reporting these as errors.
    # Left out of the JSON when empty.
    unread: dict[str, str] = Field(default_factory=dict, exclude_if=lambda unread: not unread)


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
        """What was read inside ``database`` (a search: for many, ``details_by_name``)."""
        for detail in self.database_details:
            if detail.name == database:
                return detail
        return None

    def details_by_name(self) -> dict[str, DatabaseDetail]:
        """Every database's detail by name, as ``detail`` finds it (the first of a name)."""
        found: dict[str, DatabaseDetail] = {}
        for detail in self.database_details:
            found.setdefault(detail.name, detail)
        return found

    def gap(self, section: str) -> Gap | None:
        for gap in self.gaps:
            if gap.section == section:
                return gap
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
        return self.to_json_bytes().decode("utf-8")

    def to_json_bytes(self) -> bytes:
        """``to_json`` in UTF-8, made without ever holding it as text as well."""
        return b"".join(self.json_pieces())

    def json_pieces(self) -> Iterator[bytes]:
        """``to_json`` in UTF-8 a piece at a time: a database's details at most, for a
        file written without the whole snapshot's JSON in memory."""

        def server(value: ServerSnapshot) -> Iterator[bytes]:
            return spliced(value, "postgres.database_details", 1, lambda d: whole(d, 1))

        yield from spliced(self, "servers", 1, server)
        yield b"\n"
