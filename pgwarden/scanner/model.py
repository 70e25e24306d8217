"""Plain data at the pipeline's boundaries: the Snapshot collectors produce.

Every model here is immutable and round-trips through JSON. A Snapshot never holds a
secret value: DSNs are reduced to user, host, port, database and sslmode before they
reach it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SNAPSHOT_SCHEMA_VERSION = "1.0"

SYSTEM_DATABASES = frozenset(
    {"postgres", "template0", "template1", "azure_maintenance", "azure_sys"}
)
AZURE_ROLES = frozenset({"azuresu", "azure_pg_admin", "replication"})


class Frozen(BaseModel):
    """Base of every boundary model: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


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
    """Privileges a grantee holds on a relation, other than as its owner."""

    schema_name: str
    name: str
    kind: str
    owner: str
    grantee: str | None
    privileges: tuple[str, ...]


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


class ServerSnapshot(Frozen):
    """One server: what PostgreSQL showed (None when it could not be reached)."""

    name: str
    postgres: PostgresSnapshot | None = None
    azure: dict[str, object] | None = None
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
