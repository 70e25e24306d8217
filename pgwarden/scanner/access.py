"""Effective access: who holds a privilege, directly, through PUBLIC or through membership.

PostgreSQL semantics, versions 11-17:

* A member uses a group role's privileges without ``SET ROLE`` when every grant on
  the path has INHERIT (PG16+: per grant ``inherit_option``; before 16: the member's
  ``rolinherit``).
* A member may ``SET ROLE`` to a group when every grant on the path has SET (PG16+:
  ``set_option``; before 16 always). After ``SET ROLE`` it holds that role's own
  inherited privileges too. NOINHERIT membership is still access: it is reported,
  and the evidence says ``SET ROLE`` is needed.
* A grant with ADMIN only (PG16's ``createrole_self_grant``: no INHERIT, no SET) gives
  no access to the group's privileges: it is administrative.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from pgwarden.scanner.model import AclItem, Membership, PostgresSnapshot

if TYPE_CHECKING:
    from pgwarden.rules.base import ServerContext
    from pgwarden.scanner.results import AccessCell

Mode = Literal["direct", "inherit", "set role"]


@dataclass(frozen=True)
class RolePath:
    """How ``path[0]`` comes to act with the privileges of ``path[-1]``."""

    path: tuple[str, ...]
    mode: Mode

    @property
    def holder(self) -> str:
        return self.path[-1]

    def describe(self) -> str:
        return " → ".join(self.path)


class RoleGraph:
    """Direct membership edges of one server, with closure queries."""

    def __init__(self, memberships: Iterable[Membership]) -> None:
        self._inherit: dict[str, list[str]] = {}
        self._set: dict[str, list[str]] = {}
        self._edges: dict[tuple[str, str], Membership] = {}
        for edge in memberships:
            self._edges[(edge.member, edge.role)] = edge
            if edge.inherit_option:
                self._inherit.setdefault(edge.member, []).append(edge.role)
            if edge.set_option:
                self._set.setdefault(edge.member, []).append(edge.role)
        self._cache: dict[str, dict[str, RolePath]] = {}

    def edge(self, member: str, role: str) -> Membership | None:
        return self._edges.get((member, role))

    @staticmethod
    def _bfs(start: str, edges: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
        paths: dict[str, tuple[str, ...]] = {start: (start,)}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in sorted(edges.get(node, ())):
                if nxt not in paths:
                    paths[nxt] = (*paths[node], nxt)
                    queue.append(nxt)
        return paths

    def holders(self, role: str) -> dict[str, RolePath]:
        """Every role whose privileges ``role`` can use, with the shortest way there.

        ``role`` itself is included with mode ``direct``.
        """
        cached = self._cache.get(role)
        if cached is not None:
            return cached
        inherited = self._bfs(role, self._inherit)
        result: dict[str, RolePath] = {
            name: RolePath(path, "direct" if name == role else "inherit")
            for name, path in inherited.items()
        }
        for target, set_path in self._bfs(role, self._set).items():
            if target == role:
                continue
            for name, tail in self._bfs(target, self._inherit).items():
                if name not in result:
                    result[name] = RolePath((*set_path, *tail[1:]), "set role")
        self._cache[role] = result
        return result

    def member_of(self, role: str, group: str) -> RolePath | None:
        """Whether ``role`` can use ``group``'s privileges (inherit or SET ROLE)."""
        return self.holders(role).get(group) if role != group else None

    def any_path(self, role: str, group: str) -> tuple[str, ...] | None:
        """Any membership path, including ADMIN-only grants (for reporting, not access)."""
        edges: dict[str, list[str]] = {}
        for member, target in self._edges:
            edges.setdefault(member, []).append(target)
        return self._bfs(role, edges).get(group)


@dataclass(frozen=True)
class Access:
    """One way a role holds a privilege on an object."""

    role: str
    privilege: str
    via: Literal["public", "grant", "membership", "owner"]
    path: RolePath | None
    acl_item: AclItem | None

    def evidence(self) -> dict[str, object]:
        evidence: dict[str, object] = {"via": self.via}
        if self.path is not None and len(self.path.path) > 1:
            evidence["path"] = list(self.path.path)
            evidence["chain"] = f"{self.path.describe()} → {self.privilege}"
            if self.path.mode == "set role":
                evidence["needs_set_role"] = True
                evidence["note"] = "membership without INHERIT: the privilege is one SET ROLE away"
        if self.acl_item is not None:
            evidence["acl_item"] = {
                "grantee": self.acl_item.grantee or "PUBLIC",
                "grantor": self.acl_item.grantor,
                "privileges": list(self.acl_item.privileges),
            }
        return evidence


def acl_access(
    acl: Iterable[AclItem], role: str, privilege: str, graph: RoleGraph, owner: str | None = None
) -> list[Access]:
    """Every way ``role`` holds ``privilege`` in ``acl`` (PUBLIC last)."""
    holders = graph.holders(role)
    found: list[Access] = []
    public: Access | None = None
    for item in acl:
        if privilege not in item.privileges:
            continue
        if item.grantee is None:
            public = Access(role, privilege, "public", None, item)
            continue
        path = holders.get(item.grantee)
        if path is None:
            continue
        via: Literal["grant", "membership"] = "grant" if item.grantee == role else "membership"
        found.append(Access(role, privilege, via, path, item))
    if owner is not None and owner != role and owner in holders and not found:
        found.append(Access(role, privilege, "owner", holders[owner], None))
    found.sort(key=lambda a: (len(a.path.path) if a.path else 0, a.via))
    if public is not None:
        found.append(public)
    return found


class ServerAccess:
    """Effective-access questions about one server's snapshot, answered once."""

    def __init__(self, pg: PostgresSnapshot) -> None:
        self.pg = pg

    @cached_property
    def graph(self) -> RoleGraph:
        return RoleGraph(self.pg.memberships)

    @cached_property
    def roles(self) -> dict[str, object]:
        return {role.name: role for role in self.pg.roles}

    def connect(self, role: str, database: str) -> list[Access]:
        """Every way ``role`` can CONNECT to ``database``."""
        for db in self.pg.databases:
            if db.name == database:
                return acl_access(db.acl, role, "CONNECT", self.graph, owner=db.owner)
        return []


def access_matrix(pg: PostgresSnapshot, context: ServerContext) -> tuple[AccessCell, ...]:
    """Apps (and PUBLIC) by app databases: who reaches which database, and how."""
    from pgwarden.scanner.results import AccessCell

    access = ServerAccess(pg)
    existing = {db.name: db for db in pg.databases}
    existing_roles = {role.name for role in pg.roles}
    cells: list[AccessCell] = []
    app_dbs = context.app_databases()
    for database, owner_app in app_dbs.items():
        db = existing.get(database)
        if db is None:
            continue
        if any(item.is_public and "CONNECT" in item.privileges for item in db.acl):
            cells.append(
                AccessCell(
                    database=database,
                    app=owner_app,
                    principal="PUBLIC",
                    via="public",
                    violation=True,
                )
            )
        for app in context.server.app:
            vias: list[str] = []
            for role in app.roles:
                if role not in existing_roles:
                    continue
                vias.extend(a.via for a in access.connect(role, database) if a.via != "public")
            if app.name == owner_app:
                cells.append(
                    AccessCell(database=database, app=owner_app, principal=app.name, via="own")
                )
            elif vias:
                via = "grant" if "grant" in vias else "membership"
                cells.append(
                    AccessCell(
                        database=database,
                        app=owner_app,
                        principal=app.name,
                        via=via,
                        violation=True,
                    )
                )
    return tuple(cells)
