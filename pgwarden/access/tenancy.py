"""One server's snapshot read against its tenancy map: which roles are foreign where."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from pgwarden.access.cached import cached_property
from pgwarden.access.grants import Access, held_at_login, login_holders
from pgwarden.access.graph import RoleGraph, RolePath, own_grant
from pgwarden.access.reach import DatabaseReach
from pgwarden.access.remediation import revoke_membership
from pgwarden.model.context import BuiltInKey, ServerContext
from pgwarden.model.snapshot import (
    AZURE_ROLES,
    Database,
    DatabaseDetail,
    PostgresSnapshot,
    Role,
    ServerSnapshot,
)

_TENANCY = BuiltInKey("tenancy")


@dataclass(frozen=True)
class RoleSet:
    """Some roles: in the order given (the tenancy map's), sorted, and as a set."""

    ordered: tuple[str, ...]
    sorted: tuple[str, ...]
    members: frozenset[str]

    @classmethod
    def of(cls, roles: tuple[str, ...]) -> RoleSet:
        return cls(roles, tuple(sorted(roles)), frozenset(roles))


_NO_ROLES = RoleSet((), (), frozenset())


@dataclass
class Tenancy:
    """One server's snapshot read against its tenancy map.

    For an app database, every role is one of: *legitimate* (the app's own roles,
    the database owner, and non-tenants: admin, platform roles, the auditor, Azure's
    roles, predefined ``pg_*`` roles and the bootstrap superuser), *foreign* (a role of
    another app, or a login role of no app) or *neutral* (a NOLOGIN group of no app:
    it is judged by who belongs to it).
    """

    pg: PostgresSnapshot
    context: ServerContext
    graph: RoleGraph = field(init=False)
    _connecting: dict[str, list[str]] = field(init=False, default_factory=dict)
    _app_users: dict[str, dict[str, list[str]]] = field(init=False, default_factory=dict)
    _users: dict[tuple[str, str | None], list[str]] = field(init=False, default_factory=dict)
    _revokes: dict[tuple[str, str], list[str]] = field(init=False, default_factory=dict)
    _membership_sql: set[str] = field(init=False, default_factory=set)
    _cuts: dict[tuple[RolePath, str | None], tuple[str, str] | None] = field(
        init=False, default_factory=dict
    )
    # ``holds_at_login``'s indexes: each database's holders of a privilege, whether PUBLIC
    # may connect to it, and the groups each role asked about inherits.
    _login_holders: dict[tuple[str, str], frozenset[str]] = field(init=False, default_factory=dict)
    _public_connect: dict[str, bool] = field(init=False, default_factory=dict)
    _inherited: dict[str, frozenset[str]] = field(init=False, default_factory=dict)
    _parted: dict[tuple[tuple[str, ...], frozenset[str] | None], tuple[RoleSet, list[str]]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.graph = RoleGraph(self.pg.memberships)

    @classmethod
    def of(cls, snapshot: ServerSnapshot, context: ServerContext) -> Tenancy:
        """The tenancy of a server whose PostgreSQL was collected (rules require it).

        Every rule of one server asks for the same one: it is built once (the role
        graph and its caches are the expensive part on big servers).
        """
        pg = snapshot.postgres
        assert pg is not None
        return context.analysis(_TENANCY, pg, lambda: cls(pg, context))

    @property
    def version_num(self) -> int:
        return self.pg.version_num

    @cached_property
    def roles(self) -> dict[str, Role]:
        return {role.name: role for role in self.pg.roles}

    @cached_property
    def databases(self) -> dict[str, Database]:
        return {db.name: db for db in self.pg.databases}

    def detail(self, database: str) -> DatabaseDetail | None:
        """What the collector saw inside ``database`` (``PostgresSnapshot.detail``, by name)."""
        return self._details.get(database)

    @cached_property
    def _details(self) -> dict[str, DatabaseDetail]:
        return self.pg.details_by_name()

    def owned_databases(self, role: str) -> list[str]:
        """The databases ``role`` owns, sorted."""
        return list(self._owned.get(role, ()))

    @cached_property
    def _owned(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, db in sorted(self.databases.items()):
            found.setdefault(db.owner, []).append(name)
        return found

    @cached_property
    def reach(self) -> DatabaseReach:
        """Which databases each role can log in to (asked per source of CONNECT, not per role)."""
        return DatabaseReach(self.graph, self.databases)

    @cached_property
    def app_databases(self) -> dict[str, str]:
        """Every app database present on the server, with its app.

        System databases are never tenants (PRODUCT.md), even when a map names one.
        """
        return {
            db: app
            for db, app in self.context.app_databases().items()
            if db in self.databases and not self.context.is_system_database(db)
        }

    @cached_property
    def role_apps(self) -> dict[str, str]:
        """Every app role present on the server, with its (first) app.

        An app's roles are the ones the map lists, and the Microsoft Entra roles whose
        object id is one of the app's ``identities`` (its managed identity logs in as
        such a role).
        """
        found: dict[str, str] = {}
        for app in self.context.server.app:
            for role in app.roles:
                if role in self.roles:
                    found.setdefault(role, app.name)
        identities = {i: app.name for app in self.context.server.app for i in app.identities}
        if identities:
            for name, found_role in self.roles.items():
                app_name = identities.get(found_role.entra_object_id or "")
                if app_name is not None:
                    found.setdefault(name, app_name)
        return found

    @cached_property
    def _roles_by_app(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for role, app in self.role_apps.items():
            found.setdefault(app, []).append(role)
        return {app: tuple(roles) for app, roles in found.items()}

    def app_roles(self, app: str) -> tuple[str, ...]:
        """The roles of ``app`` that exist on the server, in map order."""
        return self._roles_by_app.get(app, ())

    def reaching(
        self, db: Database, privileges: Collection[str], *, owner: bool = True
    ) -> list[str]:
        """The foreign principals of ``db`` that may hold one of ``privileges`` on it.

        Only a role that is (or can use) the grantee of a non-PUBLIC ACL item with one
        of them, or the owner, can: asking the role graph backwards from those few
        grantees replaces asking every role on the server about every database.
        """
        wanted = frozenset(privileges)
        grantees = {
            item.grantee
            for item in db.acl
            if item.grantee is not None and not wanted.isdisjoint(item.privileges)
        }
        if owner:
            grantees.add(db.owner)
        found: set[str] = set()
        for grantee in grantees:
            found.update(self.foreign_users(grantee, db.name))
        return sorted(found)

    def is_non_tenant(self, role: str) -> bool:
        found = self.roles.get(role)
        return (
            self.context.is_non_tenant_role(role)
            or role in AZURE_ROLES
            or (found is not None and found.bootstrap_superuser)
        )

    def is_principal(self, role: str) -> bool:
        """A role whose access is judged by itself: an app role, or a login of no app."""
        # A set lookup: asked for every role of every path of every finding.
        return role in self.role_apps or role in self._principal_names

    def _judged_by_itself(self, role: str) -> bool:
        found = self.roles.get(role)
        return found is not None and found.login and not self.is_non_tenant(role)

    def foreign(self, role: str, database: str) -> bool:
        """Whether ``role`` is a principal that must not reach ``database``."""
        owner_app = self.app_databases.get(database)
        if not self.is_principal(role):
            return False
        return self.role_apps.get(role) != owner_app

    @cached_property
    def principals(self) -> tuple[str, ...]:
        """Every role judged by itself (app roles, logins of no app), sorted."""
        return tuple(
            sorted(r for r in self.roles if r in self.role_apps or self._judged_by_itself(r))
        )

    @cached_property
    def _principal_names(self) -> frozenset[str]:
        # ``principals`` to test membership in: asked for every user of every grantee.
        return frozenset(self.principals)

    def foreign_principals(self, database: str) -> Iterator[str]:
        """Every existing role that must not reach ``database``, sorted, one at a time.

        Lazily, like ``foreign_logins``: a list per app of nearly every role on the
        server was apps by roles of work where callers show a few.
        """
        # Whether a role is foreign depends only on the database's app.
        return self._principals_by_app.others(self.app_databases.get(database))

    def count_foreign_principals(self, database: str) -> int:
        """How many ``foreign_principals`` there are."""
        owner_app = self.app_databases.get(database)
        return len(self.principals) - self._principals_per_app.get(owner_app, 0)

    @cached_property
    def _principals_per_app(self) -> Counter[str | None]:
        return Counter(self.role_apps.get(r) for r in self.principals)

    def foreign_logins(self, database: str) -> Iterator[str]:
        """The foreign principals of ``database`` with LOGIN, sorted, one at a time.

        Lazily: on a big server they are nearly every role, and callers list a few.
        """
        return self._logins_by_app.others(self.app_databases.get(database))

    def count_foreign_logins(self, database: str) -> int:
        """How many ``foreign_logins`` there are."""
        owner_app = self.app_databases.get(database)
        return len(self._logins) - self._logins_per_app.get(owner_app, 0)

    @cached_property
    def _logins(self) -> tuple[str, ...]:
        return tuple(r for r in self.principals if self.roles[r].login)

    @cached_property
    def _logins_per_app(self) -> Counter[str | None]:
        return Counter(self.role_apps.get(r) for r in self._logins)

    @cached_property
    def _principals_by_app(self) -> _ByApp:
        return _ByApp(self.principals, self.role_apps)

    @cached_property
    def _logins_by_app(self) -> _ByApp:
        return _ByApp(self._logins, self.role_apps)

    def can_connect(self, db: Database, role: str) -> bool:
        """Whether ``role`` can log in to ``db`` now: ``grants.can_connect``, asked of
        many roles (``holds_at_login``)."""
        if not db.allow_connections:
            return False
        return self.public_connect(db) or self.holds_at_login(db, role, "CONNECT")

    def public_connect(self, db: Database) -> bool:
        """``db.public_connect``, read once per database: its ACL may be thousands long."""
        public = self._public_connect.get(db.name)
        if public is None:
            public = self._public_connect[db.name] = db.public_connect
        return public

    def holds_at_login(self, db: Database, role: str, privilege: str) -> bool:
        """``grants.holds_at_login`` for ``db``'s ACL, asked of many roles.

        A database may grant CONNECT to each of thousands of logins one by one: asking
        each of them by walking that ACL cost the logins times the ACL. The ACL's holders
        of a privilege are gathered once per database, each role's inherited groups
        once, and each question is whether the two meet.
        """
        return held_at_login(self._holders(db, privilege), role, self._inherited_groups(role))

    def lacking_at_login(self, roles: tuple[str, ...], db: Database, privilege: str) -> list[str]:
        """Those of ``roles`` that do not hold ``privilege`` on ``db`` at login
        (``holds_at_login``), in order (``_at_login``)."""
        return self._at_login(roles, self._holders(db, privilege))[1]

    def able_to_connect(self, roles: tuple[str, ...], db: Database) -> RoleSet:
        """Those of ``roles`` that can log in to ``db`` (``can_connect``)."""
        if not roles or not db.allow_connections:
            return _NO_ROLES
        holders = None if self.public_connect(db) else self._holders(db, "CONNECT")
        return self._at_login(roles, holders)[0]

    def _at_login(
        self, roles: tuple[str, ...], holders: frozenset[str] | None
    ) -> tuple[RoleSet, list[str]]:
        """``roles`` parted into those that hold what ``holders`` hold at login (all of
        them when None: PUBLIC holds it) and those that lack it, each in order.
        Databases whose ACLs give a privilege to the same roles share the answer: an
        app of a thousand databases and a thousand roles asks it, and sorts it, once."""
        key = (roles, holders)
        found = self._parted.get(key)
        if found is None:
            held: list[str] = []
            lacking: list[str] = []
            for role in roles:
                holds = holders is None or held_at_login(
                    holders, role, self._inherited_groups(role)
                )
                (held if holds else lacking).append(role)
            found = self._parted[key] = (RoleSet.of(tuple(held)), lacking)
        return found

    def _holders(self, db: Database, privilege: str) -> frozenset[str]:
        key = (db.name, privilege)
        holders = self._login_holders.get(key)
        if holders is None:
            holders = self._login_holders[key] = login_holders(db.acl, db.owner, privilege)
        return holders

    def _inherited_groups(self, role: str) -> frozenset[str]:
        inherited = self._inherited.get(role)
        if inherited is None:
            inherited = self._inherited[role] = self.graph.usable_groups(role)[0]
        return inherited

    def foreign_connecting(self, db: Database) -> tuple[Iterable[str], int]:
        """The foreign principals of ``db`` that can log in to it now, sorted, and how many.

        With PUBLIC CONNECT that is every one of them (listed lazily); otherwise only the
        users of its CONNECT grantees and of its owner can (asked once per database).
        """
        if not db.allow_connections:
            return (), 0
        if self.public_connect(db):
            return self.foreign_principals(db.name), self.count_foreign_principals(db.name)
        if db.name not in self._connecting:
            self._connecting[db.name] = [
                r for r in self.reaching(db, ("CONNECT",)) if self.can_connect(db, r)
            ]
        found = self._connecting[db.name]
        return found, len(found)

    def app_users(self, grantee: str) -> dict[str, list[str]]:
        """The app roles that are, or can use, ``grantee``, by app."""
        if grantee not in self._app_users:
            found: dict[str, list[str]] = {}
            for user in sorted(self.graph.user_names(grantee) | {grantee}):
                if user in self.role_apps:
                    found.setdefault(self.role_apps[user], []).append(user)
            self._app_users[grantee] = found
        return self._app_users[grantee]

    def foreign_users(self, grantee: str, database: str) -> list[str]:
        """The foreign principals of ``database`` that can use ``grantee``'s privileges."""
        owner_app = self.app_databases.get(database)
        key = (grantee, owner_app)
        if key not in self._users:
            principals, role_apps = self._principal_names, self.role_apps
            self._users[key] = sorted(
                u
                for u in self.graph.user_names(grantee) | {grantee}
                if u in principals and role_apps.get(u) != owner_app
            )
        return self._users[key]

    def legitimate(self, role: str, database: str) -> bool:
        """Whether ``role`` is meant to reach ``database`` (not foreign, not neutral)."""
        if self.is_non_tenant(role):
            return True
        if role in self.role_apps:
            return self.role_apps[role] == self.app_databases.get(database)
        db = self.databases.get(database)
        return db is not None and db.owner == role and not self.is_principal(role)

    def cut_point(self, path: RolePath, database: str) -> tuple[str, str] | None:
        """The membership grant where ``path`` leaves the foreign roles, or None.

        Foreign roles joining a legitimate role or a neutral group is where the
        leak is made; cutting it there leaves every other member's access intact.
        None means the path never leaves foreign roles: the grant at its end is
        itself the leak. Worked out once per path and app (ISO-002, -004 and -006
        each cut the same memberships).
        """
        key = (path, self.app_databases.get(database))
        if key not in self._cuts:
            self._cuts[key] = next(
                ((member, role) for member, role in path.edges if not self.foreign(role, database)),
                None,
            )
        return self._cuts[key]

    def revoke(self, member: str, role: str) -> list[str]:
        """The REVOKEs that end ``member``'s use of ``role`` (``revoke_membership``),
        made once per membership. The list is shared: callers copy from it."""
        key = (member, role)
        if key not in self._revokes:
            self._revokes[key] = revoke_membership(self.graph, member, role, self.version_num)
            self._membership_sql.update(self._revokes[key])
        return self._revokes[key]

    def is_membership_revoke(self, statement: str) -> bool:
        """Whether ``statement`` is one ``revoke`` made: it ends a membership, which is
        the server's, not a database's (it runs in any database)."""
        return statement in self._membership_sql

    def cut_membership(self, access: Access, database: str) -> tuple[list[str], str]:
        """REVOKEs that end ``access.role``'s use of ``access.grantee``, and why there.

        Every path is cut where it leaves the foreign roles, or at its first grant
        when it never does (the grantee's own grants are then reported on their own).
        """
        holder = access.grantee
        if own_grant(access.paths):
            # One path of one grant: cut there, wherever it leads.
            cuts = [(access.role, access.paths[0].path[1])]
        else:
            cuts = list(
                dict.fromkeys(self.cut_point(p, database) or p.edges[0] for p in access.paths)
            )
        statements = [stmt for m, r in cuts for stmt in self.revoke(m, r)]
        where = _memberships(cuts)
        if holder is not None and self.foreign(holder, database):
            verb = "is" if len(cuts) == 1 else "are"
            why = (
                f"{holder!r} is reported for its own grants; what hands them to "
                f"{access.role!r} {verb} {where}"
            )
        else:
            leak = "the leak is" if len(cuts) == 1 else "the leaks are"
            why = f"{holder!r} may keep them; {leak} {where}"
        return statements, why

    def source_fix(
        self,
        access: Access,
        database: str,
        revoke_grant: list[str],
    ) -> tuple[list[str], str, list[str]]:
        """How to remove ``access`` at its source: (statements, why, alternatives).

        ``revoke_grant`` are the statements that would revoke the ACL item (or end
        the ownership) held by ``access.grantee``.
        """
        if access.via == "public" or access.grantee is None:
            return revoke_grant, "granted to PUBLIC itself", []
        if access.via == "grant":
            return revoke_grant, "granted to the role itself", []
        if access.via == "owner" and access.grantee == access.role:
            return revoke_grant, "the role owns the object", []
        holder = access.grantee
        foreign = self.foreign(holder, database)
        if not foreign and own_grant(access.paths):
            # The role's one way to the holder is its own membership (most members of
            # most groups): the cut is that membership, as below.
            return self._kept_by(holder, database, [(access.role, holder)], revoke_grant)
        cuts = [self.cut_point(path, database) for path in access.paths]
        if foreign or not cuts or None in cuts:
            why = (
                f"{holder!r} must not hold this itself; revoking its grant removes the "
                f"access for {access.role!r} and every other member at once"
            )
            first_edges = [
                stmt
                for member, role in dict.fromkeys(p.edges[0] for p in access.paths if p.edges)
                for stmt in self.revoke(member, role)
            ]
            return revoke_grant, why, first_edges
        edges = [cut for cut in dict.fromkeys(cuts) if cut is not None]
        return self._kept_by(holder, database, edges, revoke_grant)

    def _kept_by(
        self, holder: str, database: str, edges: list[tuple[str, str]], revoke_grant: list[str]
    ) -> tuple[list[str], str, list[str]]:
        """``source_fix`` for a holder that may keep its grant: the REVOKEs of the
        memberships ``edges`` that lead to it, and its grant's as the alternative when it
        is a group of no app."""
        statements = [stmt for member, role in edges for stmt in self.revoke(member, role)]
        neutral = not self.legitimate(holder, database)
        where = _memberships(edges)
        why = (
            f"{holder!r} is a group of no app: revoke {where} (or its grant)"
            if neutral
            else f"{holder!r} is meant to hold it: revoke {where}, not the grant"
        )
        return statements, why, revoke_grant if neutral else []


class _ByApp:
    """Sorted roles, and where each app's own sit among them: runs of consecutive
    positions. Every other app's roles are read lazily, a run skipped at a time: the
    first few foreign roles of a database whose app owns thousands of the server's
    roles cost a few steps, not a pass over that app's roles for each of its
    databases. (``None``: the roles of no app.)"""

    def __init__(self, ordered: tuple[str, ...], role_apps: dict[str, str]) -> None:
        self.ordered = ordered
        self.runs: dict[str | None, list[tuple[int, int]]] = {}
        start = 0
        for at in range(1, len(ordered) + 1):
            app = role_apps.get(ordered[start])
            if at == len(ordered) or role_apps.get(ordered[at]) != app:
                self.runs.setdefault(app, []).append((start, at))
                start = at

    def others(self, app: str | None) -> Iterator[str]:
        """The roles not of ``app``, in order, one at a time."""
        ordered, at = self.ordered, 0
        for start, end in self.runs.get(app, ()):
            for n in range(at, start):
                yield ordered[n]
            at = end
        for n in range(at, len(ordered)):
            yield ordered[n]


def _memberships(edges: list[tuple[str, str]]) -> str:
    """The memberships a remediation revokes, as its comment names them: one is the
    membership its REVOKE below names; more are each named."""
    if len(edges) == 1:
        return "this membership"
    return "the memberships " + ", ".join(f"of {m!r} in {r!r}" for m, r in edges)
