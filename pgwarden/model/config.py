"""The tenancy map and policy (``pgwarden.toml``), validated into typed models.

Every problem becomes one ``ConfigError`` line naming the file, the key and what is
wrong; no traceback reaches the user.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema

from pgwarden.model.attribute_docs import describe_properties
from pgwarden.model.errors import TOML_LIMIT_BYTES, ConfigError, read_input
from pgwarden.model.shards import arm_server_id

Severity = Literal["critical", "high", "medium", "low"]
FailOn = Literal["critical", "high", "medium", "low", "none"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
# pgaudit.log's classes ("all" is every one of them).
PGAUDIT_CLASSES = ("read", "write", "function", "role", "ddl", "misc", "misc_set", "all")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=describe_properties)


# A Microsoft Entra object id: a GUID, compared in lower case.
_OBJECT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def _check_object_ids(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not _OBJECT_ID.match(value):
            raise ValueError(
                f"{value!r} is not a Microsoft Entra object id "
                "(a GUID like 00000000-0000-0000-0000-000000000000)"
            )
    return tuple(value.lower() for value in values)


def _check_secret_ref(value: str | None) -> str | None:
    if value is None:
        return value
    if not value.startswith("keyvault:") or len(value) <= len("keyvault:"):
        raise ValueError("must be 'keyvault:VAULT/SECRET' or 'keyvault:https://HOST/secrets/NAME'")
    return value


class Policy(_Strict):
    """What the owners require of every server."""

    fail_on: FailOn = "high"
    """The lowest severity that fails the scan (exit 1); none never fails."""
    min_backup_retention_days: int = Field(default=14, ge=1, le=35)
    """Backup retention below this many days is PGW-BAK-001."""
    require_geo_redundant_backup: bool = False
    """Geo-redundant backup off is PGW-BAK-003."""
    max_firewall_prefix: int = Field(default=24, ge=0, le=32)
    """IPv4 firewall ranges wider than this prefix length are PGW-NET-003."""
    allow_azure_services: bool = False
    """Whether the 0.0.0.0-0.0.0.0 "allow all Azure services" rule is allowed (PGW-NET-002)."""
    require_private_access: bool = False
    """Public network access enabled is PGW-NET-004."""
    require_high_availability: bool = False
    """High availability off is PGW-BAK-004."""
    require_entra_auth: bool = False
    """Entra ID authentication off, or without an administrator, is PGW-AUTH-002."""
    require_entra_only_auth: bool = False
    """Password authentication must be off (Azure Policy's Entra-only audit, PGW-AZ-001)."""
    require_customer_managed_key: bool = False
    """Data must be encrypted with a customer-managed key (PGW-AZ-002)."""
    require_private_endpoint: bool = False
    """An approved private endpoint connection is required (PGW-AZ-003)."""
    require_threat_protection: bool = True
    """Microsoft Defender threat protection must be on (CIS Azure; PGW-AZ-004, -005)."""
    require_diagnostic_logs: bool = True
    """A diagnostic setting must send the PostgreSQL logs somewhere (CIS Azure; PGW-AZ-006)."""
    admin_application_names: tuple[str, ...] = ("psql", "pgAdmin*", "azdata*")
    """Globs of application_name allowed to log in as the admin role (PGW-ADM-001)."""
    severity: dict[str, Severity] = Field(default_factory=dict)
    """Rule id to severity: overrides a rule's default severity."""
    session_samples: int = Field(default=4, ge=1, le=100)
    """How many times pg_stat_activity is sampled."""
    session_window_seconds: float = Field(default=2.0, ge=0, le=60)
    """The window the samples of pg_stat_activity are spread over, in seconds."""
    scram_key_reuse: bool = True
    """Log in to each database with SCRAM keys derived once per server (collect's scram.py)."""
    secret_readers: tuple[str, ...] = ()
    """Entra object ids of platform principals (a deployment pipeline, pgwarden itself) that
    may read every app's DSN secret."""
    require_vault_rbac: bool = True
    """Vaults holding DSN secrets authorize with Azure RBAC, not access policies (PGW-KV-009)."""
    require_vault_firewall: bool = True
    """Vaults holding DSN secrets do not accept traffic from all networks (PGW-KV-010)."""
    require_entra_app_logins: bool = True
    """An app the map gives Entra identities logs in with them only (PGW-ENTRA-001)."""
    pgaudit_log: tuple[str, ...] = ("ddl", "role")
    """pgaudit classes the server must log (PGW-AUD-001); empty: pgaudit is not required."""
    allowed_extensions: tuple[str, ...] | None = None
    """Extensions any database may have (PGW-EXT-*); None: no allow-list is checked."""

    @field_validator("pgaudit_log")
    @classmethod
    def _pgaudit_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        classes = tuple(name.strip().lower() for name in value)
        for name in classes:
            if name not in PGAUDIT_CLASSES:
                raise ValueError(
                    f"{name!r} is not a pgaudit class (one of {', '.join(PGAUDIT_CLASSES)})"
                )
        return classes

    @field_validator("severity")
    @classmethod
    def _rule_ids(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        for rule_id in value:
            if not RULE_ID.match(rule_id):
                raise ValueError(f"{rule_id!r} is not a rule id (like PGW-ISO-001)")
        return value

    @field_validator("secret_readers")
    @classmethod
    def _reader_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_object_ids(value)


class AzureRef(_Strict):
    """Where a server lives in Azure Resource Manager."""

    subscription_id: str
    """The subscription holding the server."""
    resource_group: str | None = None
    """The server's resource group."""
    server_name: str | None = None
    """The server's name in Azure, when it differs from the [[server]] name."""


class AppConfig(_Strict):
    """One application: the databases it owns and the roles it logs in as."""

    name: str = Field(min_length=1)
    """The app's name (unique on its server)."""
    databases: tuple[str, ...] = ()
    """The databases the app owns (names are case-sensitive)."""
    roles: tuple[str, ...] = ()
    """The roles the app logs in as."""
    secret: str | None = None
    """Where the app's DSN must live: keyvault:VAULT/SECRET or keyvault:https://HOST/secrets/NAME."""
    backup_retention_days: int | None = Field(default=None, ge=1, le=35)
    """The app's own backup retention requirement, in days (PGW-BAK-002)."""
    connection_budget: int | None = Field(default=None, ge=0)
    """The most connections the app may hold (PGW-ROLE-003)."""
    identities: tuple[str, ...] = ()
    """Entra object ids of the app's managed identities or service principals."""

    @field_validator("secret")
    @classmethod
    def _secret_ref(cls, value: str | None) -> str | None:
        return _check_secret_ref(value)

    @field_validator("identities")
    @classmethod
    def _identity_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_object_ids(value)


def _raise_all(problems: list[str]) -> None:
    """One error naming every problem a check found (the first three, and how many more):
    a map of 1,000 databases claimed twice is not one problem."""
    if problems:
        more = f"; and {len(problems) - 3} more like these" if len(problems) > 3 else ""
        raise ValueError("; ".join(problems[:3]) + more)


class ServerConfig(_Strict):
    """One server of the tenancy map."""

    name: str = Field(min_length=1)
    """The server's name in reports (unique in the map)."""
    dsn: str | None = None
    """How pgwarden connects: a literal DSN or URI, env:NAME, or keyvault:VAULT/SECRET."""
    admin_role: str | None = None
    """The server admin role (with Azure: ARM's administratorLogin by default)."""
    platform_roles: tuple[str, ...] = ()
    """Roles that legitimately span databases (not tenants), such as the auditor."""
    azure: AzureRef | None = None
    """Where the server lives in Azure; its Azure side is audited only with this."""
    app: tuple[AppConfig, ...] = ()
    """The applications on this server ([[server.app]])."""
    tenancy_map: bool = True
    """false: nobody wrote down what this server's tenants are (a fleet server without a map
    file); rules that judge the tenancy map are skipped on it, the others run."""

    @field_validator("app")
    @classmethod
    def _unique_apps(cls, apps: tuple[AppConfig, ...]) -> tuple[AppConfig, ...]:
        names: set[str] = set()
        twice: list[str] = []
        for app in apps:
            if app.name in names:
                twice.append(f"app {app.name!r} is named twice")
            names.add(app.name)
        owners: dict[str, str] = {}
        for app in apps:
            for database in app.databases:
                if database in owners:
                    twice.append(
                        f"database {database!r} belongs to both "
                        f"{owners[database]!r} and {app.name!r}"
                    )
                owners.setdefault(database, app.name)
        _raise_all(twice)
        return apps

    @field_validator("app")
    @classmethod
    def _unique_identities(cls, apps: tuple[AppConfig, ...]) -> tuple[AppConfig, ...]:
        owners: dict[str, str] = {}
        twice: list[str] = []
        for app in apps:
            for identity in app.identities:
                if identity in owners and owners[identity] != app.name:
                    twice.append(
                        f"identity {identity!r} belongs to both {owners[identity]!r} and "
                        f"{app.name!r}"
                    )
                owners.setdefault(identity, app.name)
        _raise_all(twice)
        return apps

    def wants_azure(self) -> bool:
        """Whether the server has anything to read in Azure: an ARM reference or app secrets."""
        return self.azure is not None or any(app.secret for app in self.app)

    def shard_key(self) -> str:
        """What ``--shard`` hashes: the ARM id when the config gives it in full, else the name."""
        ref = self.azure
        if ref is not None and ref.resource_group:
            return arm_server_id(
                ref.subscription_id, ref.resource_group, ref.server_name or self.name
            )
        return self.name

    # One lookup each: an evaluation asks many, through the index its context keeps
    # (``ServerContext``; a frozen model holds no cache that a copy would not carry stale).

    def app_of_database(self, database: str) -> AppConfig | None:
        return AppIndex(self).by_database.get(database)

    def app_of_role(self, role: str) -> AppConfig | None:
        return AppIndex(self).by_role.get(role)

    def app_of_identity(self, object_id: str) -> AppConfig | None:
        """The app whose ``identities`` list the Entra object id (compared in lower case)."""
        return AppIndex(self).by_identity.get(object_id.lower())


class AppIndex:
    """A server's apps by name, database, role and Entra object id (lower case); where
    the map lists a role or database under several apps, the first."""

    def __init__(self, server: ServerConfig) -> None:
        self.server = server
        self.by_name: dict[str, AppConfig] = {}
        self.by_database: dict[str, AppConfig] = {}
        self.by_role: dict[str, AppConfig] = {}
        self.by_identity: dict[str, AppConfig] = {}
        for app in server.app:
            self.by_name.setdefault(app.name, app)
            for database in app.databases:
                self.by_database.setdefault(database, app)
            for role in app.roles:
                self.by_role.setdefault(role, app)
            for identity in app.identities:
                self.by_identity.setdefault(identity, app)


# Secret names or content types that mark a Key Vault secret as a connection string:
# only such secrets' values are ever read (and dropped at once after parsing).
CONNECTION_STRING_NAMES = (
    r"(?i)dsn|database[-_.]?ur[li]|db[-_.]?ur[li]|conn(ection)?[-_. ]?str(ing)?"
    r"|postgres|(^|[-_.])pg([-_.]|$)"
)


class AzureScope(_Strict):
    """A subscription, or one resource group of it, to search for Flexible Servers."""

    subscription_id: str = Field(min_length=1)
    """The subscription to search."""
    resource_group: str | None = None
    """Only this resource group of it."""


class AzureSettings(_Strict):
    """Which Azure cloud to talk to, and what to look for there."""

    cloud: Literal["AzureCloud", "AzureChinaCloud", "AzureUSGovernment"] = "AzureCloud"
    """The Azure cloud."""
    arm_endpoint: str | None = None
    """An https:// Resource Manager endpoint for private or test endpoints."""
    discover: tuple[AzureScope, ...] = ()
    """Subscriptions or resource groups whose every Flexible Server is audited in Azure."""
    dsn_secret_pattern: str = CONNECTION_STRING_NAMES
    """A regular expression: secrets whose name or content type matches hold DSNs."""

    @field_validator("arm_endpoint")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https://[^/\s]+", value):
            raise ValueError("must be an https:// URL, like https://management.azure.com")
        return value

    @field_validator("dsn_secret_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


FLEET_PLACEHOLDERS = ("fqdn", "name", "resource_group", "subscription_id", "location")
DEFAULT_SERVER_TIMEOUT_S = 600.0


class FleetSettings(_Strict):
    """``[fleet]``: every Flexible Server the identity can read, found through Resource Graph.

    ``dsn_template`` logs in to each server found (placeholders ``{fqdn}``, ``{name}``,
    ``{resource_group}``, ``{subscription_id}``, ``{location}``); ``maps`` is a folder of
    per-server tenancy maps (relative to the config file); ``map_tag`` names the Azure
    tag whose value names a server's map file.
    """

    discover: Literal["resource-graph"]
    subscriptions: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    name: str | None = Field(default=None, min_length=1)
    dsn_template: str | None = None
    maps: str | None = Field(default=None, min_length=1)
    map_tag: str = Field(default="pgwarden-map", min_length=1)
    server_timeout_seconds: float = Field(default=DEFAULT_SERVER_TIMEOUT_S, gt=0, le=86_400)

    @field_validator("subscriptions")
    @classmethod
    def _subscription_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for subscription in value:
            if not re.fullmatch(r"[0-9A-Fa-f-]{36}", subscription):
                raise ValueError(f"{subscription!r} is not a subscription id (a GUID)")
        return value

    @field_validator("dsn_template")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        if value is None:
            return value
        for name in re.findall(r"\{([^{}]*)\}", value):
            if name not in FLEET_PLACEHOLDERS:
                known = ", ".join("{" + p + "}" for p in FLEET_PLACEHOLDERS)
                raise ValueError(f"unknown placeholder {{{name}}} (known: {known})")
        if "{" in re.sub(r"\{[a-z_]+\}", "", value) or "}" in re.sub(r"\{[a-z_]+\}", "", value):
            raise ValueError("a lone '{' or '}' (placeholders are like {fqdn})")
        return value


RULE_ID_FIELD = "{rule_id}"


class ReportSettings(_Strict):
    """How reports present the results."""

    # Without it reports carry no link (rather than one to a place nobody vouches for);
    # the rule text is in every report either way.
    rule_docs_url: str | None = None
    """Where the built-in rules' pages are: https://HOST/PATH/{rule_id}.md; unset, no links."""

    @field_validator("rule_docs_url")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
            raise ValueError("must be an http(s):// URL, like https://host/docs/rules/{rule_id}.md")
        if RULE_ID_FIELD not in value:
            raise ValueError("must contain {rule_id}, where the rule's id goes")
        return value

    def rule_docs_link(self, rule_id: str) -> str | None:
        """The page of a built-in rule, or None when no base URL is configured."""
        if self.rule_docs_url is None:
            return None
        return self.rule_docs_url.replace(RULE_ID_FIELD, rule_id)


class Config(_Strict):
    """A whole ``pgwarden.toml``."""

    policy: Policy = Field(default_factory=Policy)
    """What the owners require of every server."""
    server: tuple[ServerConfig, ...] = ()
    """The servers of the tenancy map ([[server]])."""
    azure: AzureSettings = Field(default_factory=AzureSettings)
    """Which Azure cloud to talk to, and what to look for there."""
    fleet: FleetSettings | None = None
    report: ReportSettings = Field(default_factory=ReportSettings)
    """How reports present the results."""
    path: SkipJsonSchema[str | None] = None
    locations: SkipJsonSchema[dict[str, int]] = Field(default_factory=dict)

    @field_validator("server")
    @classmethod
    def _unique_servers(cls, servers: tuple[ServerConfig, ...]) -> tuple[ServerConfig, ...]:
        named = Counter(server.name for server in servers)
        _raise_all([f"server {name!r} is named twice" for name, n in named.items() if n > 1])
        return servers

    def server_named(self, name: str) -> ServerConfig | None:
        for server in self.server:
            if server.name == name:
                return server
        return None

    def servers_by_name(self) -> dict[str, ServerConfig]:
        """Each server by its name, the first of a name winning as in ``server_named``:
        made per call, for a caller that looks up many (a fleet names thousands)."""
        return {server.name: server for server in reversed(self.server)}


def _location(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """Turn a pydantic error location into the TOML key a user would look for."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            name = None
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict):
                name = node[item].get("name")
            parts[-1] = f"{parts[-1]}[{item}]" if name is None else f"{parts[-1]}[name={name!r}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(item)
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def _describe(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


_TABLE_HEADER = re.compile(r"^\s*\[\[\s*(server(?:\.app)?)\s*\]\]")
_NAME_LINE = re.compile(r"^\s*name\s*=\s*(\"([^\"\\]|\\.)*\"|'[^']*')")


def block_locations(text: str) -> dict[str, int]:
    """Map ``server/NAME`` and ``app/SERVER/APP`` to the line of their TOML block.

    SARIF results point at these lines; a block whose name cannot be read stays
    unmapped (the renderer then falls back to line 1).
    """
    locations: dict[str, int] = {}
    current: tuple[str, int] | None = None
    server_name: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_HEADER.match(line)
        if header:
            current = (header.group(1), number)
            continue
        if line.lstrip().startswith("["):
            current = None
            continue
        named = _NAME_LINE.match(line)
        if named and current is not None:
            try:
                name = tomllib.loads(f"v = {named.group(1)}")["v"]
            except tomllib.TOMLDecodeError:
                continue
            kind, start = current
            if kind == "server":
                server_name = name
                locations.setdefault(f"server/{name}", start)
            elif server_name is not None:
                locations.setdefault(f"app/{server_name}/{name}", start)
            current = None
    return locations


class ConfigProblems(ConfigError):
    """Every problem of one config file, each a line naming the file, the key and what is wrong.

    As an error it reads as the first problem and how many more there are; ``pgwarden
    config check`` lists them all.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")


# Fields parse_config fills in; a file that sets them names keys pgwarden.toml has not.
_NOT_KEYS = ("path", "locations")


def parse_toml(text: str, path: str) -> dict[str, Any]:
    """TOML text as a table; malformed TOML is one ConfigProblems line naming ``path``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigProblems([f"{path}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigProblems([f"{path}: not valid TOML: nested too deeply"]) from None


def parse_config(text: str, path: str) -> Config:
    """Validate TOML text into a Config; every problem is one line of ConfigProblems."""
    data = parse_toml(text, path)
    problems = [f"{path}: {key}: unknown key" for key in _NOT_KEYS if key in data]
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems += [
            f"{path}: {_location(tuple(error['loc']), data)}: {_describe(error)}"
            for error in exc.errors()
        ]
    if problems:
        raise ConfigProblems(problems)
    return config.model_copy(update={"path": path, "locations": block_locations(text)})


def load_config(path: Path) -> Config:
    """Read and validate a config file."""
    return parse_config(read_input(path, TOML_LIMIT_BYTES), str(path))
