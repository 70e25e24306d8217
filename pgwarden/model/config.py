"""The tenancy map and policy (``pgwarden.toml``), validated into typed models.

Every problem becomes one ``ConfigError`` line naming the file, the key and what is
wrong; no traceback reaches the user.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pgwarden.model.errors import TOML_LIMIT_BYTES, ConfigError, read_input

Severity = Literal["critical", "high", "medium", "low"]
FailOn = Literal["critical", "high", "medium", "low", "none"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_secret_ref(value: str | None) -> str | None:
    if value is None:
        return value
    if not value.startswith("keyvault:") or len(value) <= len("keyvault:"):
        raise ValueError("must be 'keyvault:VAULT/SECRET' or 'keyvault:https://HOST/secrets/NAME'")
    return value


class Policy(_Strict):
    """What the owners require of every server."""

    fail_on: FailOn = "high"
    min_backup_retention_days: int = Field(default=14, ge=1, le=35)
    require_geo_redundant_backup: bool = False
    max_firewall_prefix: int = Field(default=24, ge=0, le=32)
    allow_azure_services: bool = False
    require_private_access: bool = False
    require_high_availability: bool = False
    require_entra_auth: bool = False
    admin_application_names: tuple[str, ...] = ("psql", "pgAdmin*", "azdata*")
    severity: dict[str, Severity] = Field(default_factory=dict)
    session_samples: int = Field(default=4, ge=1, le=100)
    session_window_seconds: float = Field(default=2.0, ge=0, le=60)
    # Log in to each database with SCRAM keys derived once per server (collect's scram.py).
    scram_key_reuse: bool = True

    @field_validator("severity")
    @classmethod
    def _rule_ids(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        for rule_id in value:
            if not RULE_ID.match(rule_id):
                raise ValueError(f"{rule_id!r} is not a rule id (like PGW-ISO-001)")
        return value


class AzureRef(_Strict):
    """Where a server lives in Azure Resource Manager."""

    subscription_id: str
    resource_group: str | None = None
    server_name: str | None = None


class AppConfig(_Strict):
    """One application: the databases it owns and the roles it logs in as."""

    name: str = Field(min_length=1)
    databases: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    secret: str | None = None
    backup_retention_days: int | None = Field(default=None, ge=1, le=35)
    connection_budget: int | None = Field(default=None, ge=0)

    @field_validator("secret")
    @classmethod
    def _secret_ref(cls, value: str | None) -> str | None:
        return _check_secret_ref(value)


class ServerConfig(_Strict):
    """One server of the tenancy map."""

    name: str = Field(min_length=1)
    dsn: str | None = None
    admin_role: str | None = None
    platform_roles: tuple[str, ...] = ()
    azure: AzureRef | None = None
    app: tuple[AppConfig, ...] = ()

    @field_validator("app")
    @classmethod
    def _unique_apps(cls, apps: tuple[AppConfig, ...]) -> tuple[AppConfig, ...]:
        seen: dict[str, str] = {}
        for app in apps:
            if app.name in seen:
                raise ValueError(f"app {app.name!r} is named twice")
            seen[app.name] = app.name
        owners: dict[str, str] = {}
        for app in apps:
            for database in app.databases:
                if database in owners:
                    raise ValueError(
                        f"database {database!r} belongs to both "
                        f"{owners[database]!r} and {app.name!r}"
                    )
                owners[database] = app.name
        return apps

    def wants_azure(self) -> bool:
        """Whether the server has anything to read in Azure: an ARM reference or app secrets."""
        return self.azure is not None or any(app.secret for app in self.app)

    def app_of_database(self, database: str) -> AppConfig | None:
        for app in self.app:
            if database in app.databases:
                return app
        return None

    def app_of_role(self, role: str) -> AppConfig | None:
        for app in self.app:
            if role in app.roles:
                return app
        return None


# Secret names or content types that mark a Key Vault secret as a connection string:
# only such secrets' values are ever read (and dropped at once after parsing).
CONNECTION_STRING_NAMES = (
    r"(?i)dsn|database[-_.]?ur[li]|db[-_.]?ur[li]|conn(ection)?[-_. ]?str(ing)?"
    r"|postgres|(^|[-_.])pg([-_.]|$)"
)


class AzureScope(_Strict):
    """A subscription, or one resource group of it, to search for Flexible Servers."""

    subscription_id: str = Field(min_length=1)
    resource_group: str | None = None


class AzureSettings(_Strict):
    """Which Azure cloud to talk to, and what to look for there."""

    cloud: Literal["AzureCloud", "AzureChinaCloud", "AzureUSGovernment"] = "AzureCloud"
    arm_endpoint: str | None = None
    discover: tuple[AzureScope, ...] = ()
    dsn_secret_pattern: str = CONNECTION_STRING_NAMES

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


RULE_ID_FIELD = "{rule_id}"


class ReportSettings(_Strict):
    """How reports present the results."""

    # Where the built-in rules' documentation pages live; without it reports carry no
    # link (rather than one to a place nobody vouches for). The rule text is in every
    # report either way.
    rule_docs_url: str | None = None

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
        """The documentation page of a built-in rule, or None when none is configured."""
        if self.rule_docs_url is None:
            return None
        return self.rule_docs_url.replace(RULE_ID_FIELD, rule_id)


class Config(_Strict):
    """A whole ``pgwarden.toml``."""

    policy: Policy = Field(default_factory=Policy)
    server: tuple[ServerConfig, ...] = ()
    azure: AzureSettings = Field(default_factory=AzureSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    path: str | None = None
    locations: dict[str, int] = Field(default_factory=dict)

    @field_validator("server")
    @classmethod
    def _unique_servers(cls, servers: tuple[ServerConfig, ...]) -> tuple[ServerConfig, ...]:
        names = [s.name for s in servers]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"server {name!r} is named twice")
        return servers

    def server_named(self, name: str) -> ServerConfig | None:
        for server in self.server:
            if server.name == name:
                return server
        return None


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


def parse_config(text: str, path: str) -> Config:
    """Validate TOML text into a Config; every problem is one ConfigError line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _location(tuple(first["loc"]), data)
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}: {where}: {_describe(first)}{more}") from None
    return config.model_copy(update={"path": path, "locations": block_locations(text)})


def load_config(path: Path) -> Config:
    """Read and validate a config file."""
    return parse_config(read_input(path, TOML_LIMIT_BYTES), str(path))
