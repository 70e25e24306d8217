"""The per-server context every rule receives: what the owners meant for one server."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from pgwarden.model.config import AppConfig, AppIndex, Policy, ServerConfig
from pgwarden.model.snapshot import AZURE_ROLES, SYSTEM_DATABASES, ServerSnapshot

T = TypeVar("T")


def admin_role_of(server: ServerSnapshot, config: ServerConfig | None) -> str | None:
    """The server's admin role: the map's ``admin_role``, else ARM's
    ``administratorLogin`` when Azure was read."""
    admin = config.admin_role if config is not None else None
    if admin is None and server.azure is not None and server.azure.server is not None:
        admin = server.azure.server.administrator_login
    return admin


@dataclass(frozen=True, slots=True)
class BuiltInKey:
    """The key of an analysis pgwarden's own rules share (``ServerContext.analysis``).

    Never equal to a plug-in's key, which is text: a plug-in that happens to name its
    analysis "tenancy" keeps its own, and cannot hand the built-in rules its value.
    """

    name: str


_APP_INDEX = BuiltInKey("app_index")


@dataclass(frozen=True)
class ServerContext:
    """What the owners meant for one server: its tenancy map and the policy."""

    server: ServerConfig
    policy: Policy
    admin_role: str | None
    auditor_role: str | None = None
    # ``--include-passed``: rules also report each resource they found compliant.
    include_passed: bool = False
    # Analyses every rule of this server shares (e.g. the role graph), built once and
    # dropped with the context when the server's evaluation ends.
    shared: dict[str | BuiltInKey, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.server.name

    def analysis(self, key: str | BuiltInKey, source: object, make: Callable[[], T]) -> T:
        """An analysis the rules of this server share (``shared``): made once by
        ``make`` and kept under ``key`` for as long as it is asked for with the same
        ``source``, what it was made from (a part of the snapshot, or the analysis it
        builds on); made again from another.

        A plug-in's ``key`` is text (prefixed with its own name, so that two plug-ins
        do not meet); the built-in rules' are ``BuiltInKey``s, which no text equals.
        """
        kept = self.shared.get(key)
        if kept is None or kept[0] is not source:
            kept = self.shared[key] = (source, make())
        return cast(T, kept[1])

    def app_of_database(self, database: str) -> str | None:
        app = self._apps.by_database.get(database)
        return app.name if app else None

    def app_of_role(self, role: str) -> str | None:
        app = self._apps.by_role.get(role)
        return app.name if app else None

    def app_named(self, name: str) -> AppConfig | None:
        """The ``[[server.app]]`` called ``name``."""
        return self._apps.by_name.get(name)

    def app_of_identity(self, object_id: str) -> AppConfig | None:
        """The app whose ``identities`` list the Entra object id (in any case)."""
        return self._apps.by_identity.get(object_id.lower())

    def app_databases(self) -> dict[str, str]:
        """Every database named in the map, with its app (a new dict: callers may keep it)."""
        return {db: app.name for db, app in self._apps.by_database.items()}

    @property
    def _apps(self) -> AppIndex:
        # Rules ask per secret, session or grant: a map of 5,000 apps is indexed once
        # per server's evaluation, not searched each time.
        return self.analysis(_APP_INDEX, self.server, lambda: AppIndex(self.server))

    def is_system_database(self, database: str) -> bool:
        return database in SYSTEM_DATABASES

    def is_non_tenant_role(self, role: str) -> bool:
        """Admin, platform, the auditor itself, Azure's roles and predefined ``pg_*`` roles."""
        return (
            role == self.admin_role
            or role == self.auditor_role
            or role in self.server.platform_roles
            or role in AZURE_ROLES
            or role.startswith("pg_")
        )

    def admin_tool_allowed(self, application_name: str) -> bool:
        return any(
            fnmatch.fnmatchcase(application_name, pattern)
            for pattern in self.policy.admin_application_names
        )
