"""Effective access: who holds a privilege, directly, through PUBLIC or through membership.

PostgreSQL semantics, versions 11-17:

* A member uses a group role's privileges without ``SET ROLE`` when every grant on
  the path has INHERIT (PG16+: per grant ``inherit_option``; before 16: the member's
  ``rolinherit``).
* A member may ``SET ROLE`` to a group when every grant on the path has SET (PG16+:
  ``set_option``; before 16 always). After ``SET ROLE`` it holds that role's own
  inherited privileges too, so a usable path is some SET grants followed by some
  INHERIT grants. NOINHERIT membership is still access: it is reported, and the
  evidence says ``SET ROLE`` is needed.
* A grant with ADMIN only (PG16's ``createrole_self_grant``: no INHERIT, no SET) gives
  no access to the group's privileges: it is administrative.
* On PG16+ one member may hold the same role through several grants (one per
  grantor); the options of all of them add up, and each must be revoked.
* Role attributes (SUPERUSER, CREATEDB, ...) are never inherited: only ``SET ROLE``
  confers them.
* CONNECT is checked at login against the session user's *inherited* privileges, and
  ``SET ROLE`` needs a session: a path without INHERIT never opens a connection
  (``Access.usable_at_login``, ``can_connect``), though it is still reported.

The remediation helpers here turn an access into the statement that removes it at
its source: the ACL item (revoked as its grantor) or the membership grant (revoked
``GRANTED BY`` its grantor on PG16+, where grants are tracked per grantor).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

from pgwarden.model.identifiers import quote_ident, quote_literal
from pgwarden.model.snapshot import (
    AZURE_ROLES,
    AclItem,
    Database,
    DatabaseDetail,
    Membership,
    PostgresSnapshot,
    Role,
    ServerSnapshot,
)

if TYPE_CHECKING:
    from pgwarden.model.context import ServerContext
    from pgwarden.model.results import AccessCell

Mode = Literal["direct", "inherit", "set role"]
Via = Literal["public", "grant", "membership", "owner"]

PG16 = 160000
# Enough to show an auditor every way in on real role graphs, bounded so a
# pathological graph cannot make a rule explode.
MAX_PATHS = 16
_MAX_STEPS = 20_000

# aclitem's one-letter privilege codes, in the order aclitemout prints them.
_ACL_LETTERS = {
    "INSERT": "a",
    "SELECT": "r",
    "UPDATE": "w",
    "DELETE": "d",
    "TRUNCATE": "D",
    "REFERENCES": "x",
    "TRIGGER": "t",
    "EXECUTE": "X",
    "USAGE": "U",
    "CREATE": "C",
    "TEMPORARY": "T",
    "CONNECT": "c",
    "SET": "s",
    "ALTER SYSTEM": "A",
    "MAINTAIN": "m",
}
_ACL_ORDER = {name: index for index, name in enumerate(_ACL_LETTERS)}


def sort_privileges(privileges: Iterable[str]) -> tuple[str, ...]:
    """Privilege names in PostgreSQL's own order (as ``\\dp`` shows them)."""
    return _sorted_privileges(privileges if isinstance(privileges, tuple) else tuple(privileges))


@lru_cache(maxsize=4096)
def _sorted_privileges(privileges: tuple[str, ...]) -> tuple[str, ...]:
    # Called for every ACL item a rule looks at: the few distinct lists are cached.
    return tuple(sorted(set(privileges), key=lambda p: (_ACL_ORDER.get(p, 99), p)))


@lru_cache(maxsize=16384)
def _acl_name(name: str) -> str:
    # aclitemout's putid(): names with anything but letters, digits and _ are quoted.
    if name and all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name):
        return name
    return '"' + name.replace('"', '""') + '"'


def acl_text(item: AclItem) -> str:
    """An ACL item as PostgreSQL prints it (``grantee=privileges/grantor``)."""
    grantee = "" if item.grantee is None else _acl_name(item.grantee)
    return f"{grantee}={_acl_letters(item.privileges, item.grantable)}/{_acl_name(item.grantor)}"


@lru_cache(maxsize=4096)
def _acl_letters(privileges: tuple[str, ...], grantable: tuple[str, ...]) -> str:
    # Every ACL shown is printed whole, item by item: the few distinct lists are cached.
    return "".join(
        _ACL_LETTERS.get(p, "?") + ("*" if p in grantable else "")
        for p in sort_privileges(privileges)
    )


@dataclass(frozen=True)
class RolePath:
    """How ``path[0]`` comes to act with the privileges of ``path[-1]``.

    ``set_role`` is the role to ``SET ROLE`` to when the path needs it (mode
    ``set role``): the grants up to it lack INHERIT, the rest have it.
    """

    path: tuple[str, ...]
    mode: Mode
    set_role: str | None = None

    @property
    def holder(self) -> str:
        return self.path[-1]

    @property
    def member(self) -> str:
        return self.path[0]

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """The membership grants of the path as (member, role) pairs."""
        return tuple(pairwise(self.path))

    def describe(self) -> str:
        return " → ".join(self.path)

    def evidence(self) -> dict[str, object]:
        """The path as findings show it."""
        shown: dict[str, object] = {"path": list(self.path), "mode": self.mode}
        if self.set_role:
            shown["set_role"] = self.set_role
        return shown


class RoleGraph:
    """Direct membership grants of one server, with closure queries."""

    def __init__(self, memberships: Iterable[Membership]) -> None:
        self._grants: dict[tuple[str, str], list[Membership]] = {}
        # The options of one pair's grants add up. They are read here, in the
        # snapshot's order: visited in sorted order, the grants (tens of thousands of
        # objects) are read all over memory.
        self._inherit_edges: set[tuple[str, str]] = set()
        self._set_edges: set[tuple[str, str]] = set()
        for grant in memberships:
            pair = (grant.member, grant.role)
            self._grants.setdefault(pair, []).append(grant)
            if grant.inherit_option:
                self._inherit_edges.add(pair)
            if grant.set_option:
                self._set_edges.add(pair)
        self._any: dict[str, list[str]] = {}
        self._any_from: dict[str, list[str]] = {}
        # Members with a grant lacking INHERIT or SET: only their lists differ by mode.
        partial: set[str] = set()
        for pair in sorted(self._grants):
            member, role = pair
            self._any.setdefault(member, []).append(role)
            self._any_from.setdefault(role, []).append(member)
            if pair not in self._inherit_edges or pair not in self._set_edges:
                partial.add(member)
        # The lists are shared between modes wherever they are the same: on a big
        # server there are tens of thousands, and a copy per mode was most of the cost
        # of building the graph (fresh memory). Nothing changes them once built.
        self._inherit: dict[str, list[str]]
        self._set: dict[str, list[str]]
        self._usable: dict[str, list[str]]
        self._reverse_inherit: dict[str, list[str]]
        self._reverse_set: dict[str, list[str]]
        if partial:
            self._inherit = self._by_mode(self._any, partial, self._inherit_edges)
            self._set = self._by_mode(self._any, partial, self._set_edges)
            self._usable = self._by_mode(self._any, partial, self._inherit_edges | self._set_edges)
            self._reverse_inherit = self._reversed(self._inherit)
            self._reverse_set = self._reversed(self._set)
        else:
            # Every grant has INHERIT and SET (PostgreSQL's default): one map for all.
            self._inherit = self._set = self._usable = self._any
            self._reverse_inherit = self._reverse_set = self._any_from
        self.names: frozenset[str] = frozenset(self._any.keys() | self._any_from.keys())
        # Members with a grant that has SET but not INHERIT: only through them can
        # SET ROLE reach further than inheritance does.
        self._set_only: frozenset[str] = frozenset(
            member for member, _role in self._set_edges - self._inherit_edges
        )
        # Every grant that gives access inherits (PostgreSQL's default): no privilege
        # held through membership is ever one SET ROLE away.
        self.always_inherits: bool = not self._set_only
        self._holders: dict[str, dict[str, RolePath]] = {}
        self._settable: dict[str, dict[str, RolePath]] = {}
        self._paths: dict[tuple[str, str, int], tuple[RolePath, ...]] = {}
        self._user_names: dict[str, frozenset[str]] = {}

    @staticmethod
    def _by_mode(
        any_to: dict[str, list[str]], partial: set[str], edges: set[tuple[str, str]]
    ) -> dict[str, list[str]]:
        """``any_to`` cut to ``edges``; the list of a member not ``partial`` is kept whole."""
        found: dict[str, list[str]] = {}
        for member, roles in any_to.items():
            if member not in partial:
                found[member] = roles
                continue
            kept = [role for role in roles if (member, role) in edges]
            if kept:
                found[member] = kept
        return found

    @staticmethod
    def _reversed(edges: dict[str, list[str]]) -> dict[str, list[str]]:
        reverse: dict[str, list[str]] = {}
        for member, roles in edges.items():
            for role in roles:
                reverse.setdefault(role, []).append(member)
        return reverse

    def grants(self, member: str, role: str) -> tuple[Membership, ...]:
        """Every grant of ``role`` to ``member`` (several on PG16+: one per grantor)."""
        return tuple(self._grants.get((member, role), ()))

    def access_grants(self, member: str, role: str) -> tuple[Membership, ...]:
        """The grants that give access (INHERIT or SET), not the ADMIN-only ones."""
        return tuple(g for g in self.grants(member, role) if g.inherit_option or g.set_option)

    def edge(self, member: str, role: str) -> Membership | None:
        grants = self.grants(member, role)
        return grants[0] if grants else None

    @staticmethod
    def _bfs(start: str, edges: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
        paths: dict[str, tuple[str, ...]] = {start: (start,)}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in edges.get(node, ()):
                if nxt not in paths:
                    paths[nxt] = (*paths[node], nxt)
                    queue.append(nxt)
        return paths

    def holders(self, role: str) -> dict[str, RolePath]:
        """Every role whose privileges ``role`` can use, with the shortest way there.

        ``role`` itself is included with mode ``direct``. Roles reachable by
        inheritance come first; the rest need ``SET ROLE`` to the path's ``set_role``.
        """
        cached = self._holders.get(role)
        if cached is not None:
            return cached
        result: dict[str, RolePath] = {
            name: RolePath(path, "direct" if name == role else "inherit")
            for name, path in self._bfs(role, self._inherit).items()
        }
        if self._set_only.isdisjoint(result):
            # Every SET grant from these roles also inherits: SET ROLE adds nothing.
            self._holders[role] = result
            return result
        for target, set_path in self._bfs(role, self._set).items():
            if target in result:
                # ``role`` itself, or a role it already reaches (by inheritance or an
                # earlier SET ROLE): everything that role inherits is in already.
                continue
            for name, tail in self._bfs(target, self._inherit).items():
                if name not in result:
                    result[name] = RolePath((*set_path, *tail[1:]), "set role", target)
        self._holders[role] = result
        return result

    def settable(self, role: str) -> dict[str, RolePath]:
        """Every role ``role`` may ``SET ROLE`` to (and so take its attributes from)."""
        cached = self._settable.get(role)
        if cached is None:
            cached = {
                name: RolePath(path, "set role", name)
                for name, path in self._bfs(role, self._set).items()
                if name != role
            }
            self._settable[role] = cached
        return cached

    def member_of(self, role: str, group: str) -> RolePath | None:
        """Whether ``role`` can use ``group``'s privileges (inherit or SET ROLE)."""
        return self.holders(role).get(group) if role != group else None

    def classify(self, path: tuple[str, ...]) -> RolePath | None:
        """The mode of a membership path, or None when it gives no access."""
        edges = list(pairwise(path))
        if not edges:
            return RolePath(path, "direct")
        if any(e not in self._grants for e in edges):
            return None
        split = len(edges)
        while split > 0 and edges[split - 1] in self._inherit_edges:
            split -= 1
        if split == 0:
            return RolePath(path, "inherit")
        if all(e in self._set_edges for e in edges[:split]):
            return RolePath(path, "set role", path[split])
        return None

    def paths(self, role: str, holder: str, limit: int = MAX_PATHS) -> tuple[RolePath, ...]:
        """Every usable membership path from ``role`` to ``holder``, shortest first.

        Removing access means cutting all of them, not only the shortest.
        """
        if role == holder:
            return (RolePath((role,), "direct"),)
        if not self.can_use(role, holder):
            return ()
        key = (role, holder, limit)
        if key not in self._paths:
            self._paths[key] = self._search(role, holder, limit)
        return self._paths[key]

    def _search(self, role: str, holder: str, limit: int) -> tuple[RolePath, ...]:
        found: list[RolePath] = []
        steps = 0
        stack: list[tuple[str, ...]] = [(role,)]
        while stack and len(found) < limit and steps < _MAX_STEPS:
            path = stack.pop()
            steps += 1
            for nxt in reversed(self._usable.get(path[-1], ())):
                if nxt in path:
                    continue
                extended = (*path, nxt)
                if nxt == holder:
                    classified = self.classify(extended)
                    if classified is not None:
                        found.append(classified)
                else:
                    stack.append(extended)
        return tuple(sorted(found, key=lambda p: (len(p.path), p.mode != "inherit", p.path)))

    def set_paths(self, role: str, target: str) -> tuple[RolePath, ...]:
        """The paths along which ``role`` may ``SET ROLE`` to ``target`` (SET all the way).

        Only these confer ``target``'s attributes: inheritance never does.
        """
        return tuple(
            RolePath(p.path, "set role", target)
            for p in self.paths(role, target)
            if all(edge in self._set_edges for edge in p.edges)
        )

    def user_names(self, group: str) -> frozenset[str]:
        """Every role that can use ``group``'s privileges (``group`` excluded).

        The reverse of ``holders``: the roles that inherit ``group``, and every role
        that can SET ROLE to one of them. One walk per group, cached.
        """
        cached = self._user_names.get(group)
        if cached is None:
            found = self._reach({group}, self._reverse_inherit)
            if not self.always_inherits:
                # Only a SET grant without INHERIT can let a role in that the walk
                # along inheritance missed: without one, a second walk finds nothing.
                found = self._reach(found, self._reverse_set)
            found.discard(group)
            cached = self._user_names[group] = frozenset(found)
        return cached

    @cached_property
    def groups(self) -> frozenset[str]:
        """Every role some other role can use (by INHERIT or SET): the groups with members."""
        return frozenset(self._reverse_inherit.keys() | self._reverse_set.keys())

    def set_role_users(self, group: str) -> frozenset[str]:
        """Every role that may ``SET ROLE`` to ``group`` (``group`` excluded).

        The reverse of ``settable``: one walk backwards along SET grants.
        """
        return frozenset(self._reach({group}, self._reverse_set) - {group})

    @staticmethod
    def _reach(starts: Iterable[str], edges: dict[str, list[str]]) -> set[str]:
        """Every role reachable from any of ``starts`` along ``edges`` (starts included)."""
        found = set(starts)
        queue = deque(found)
        while queue:
            for nxt in edges.get(queue.popleft(), ()):
                if nxt not in found:
                    found.add(nxt)
                    queue.append(nxt)
        return found

    def can_use(self, role: str, group: str) -> bool:
        """Whether ``role`` is ``group`` or can use its privileges (``group in holders(role)``).

        Asked from the group's side: one cached walk per group serves every role.
        """
        return role == group or role in self.user_names(group)

    def users_of(self, group: str) -> dict[str, RolePath]:
        """Every role that can use ``group``'s privileges, with its shortest path."""
        # user_names walks the graph backwards once; holders() then gives each path.
        return {name: self.holders(name)[group] for name in sorted(self.user_names(group))}

    def any_path(self, role: str, group: str) -> tuple[str, ...] | None:
        """Any membership path, including ADMIN-only grants (for reporting, not access)."""
        return self._bfs(role, self._any).get(group)

    def admin_of(self, role: str) -> tuple[str, ...]:
        """Roles ``role`` holds directly WITH ADMIN OPTION (it may grant them to anyone)."""
        return tuple(
            target
            for (member, target), grants in sorted(self._grants.items())
            if member == role and any(g.admin_option for g in grants)
        )


@dataclass(frozen=True)
class Access:
    """One way ``role`` holds ``privileges`` on an object: one ACL item, or ownership.

    ``grantee`` is the ACL item's grantee (None: PUBLIC), or the owner for ``via``
    ``owner``; ``paths`` lead from ``role`` to it (empty for PUBLIC).
    """

    role: str
    privileges: tuple[str, ...]
    via: Via
    grantee: str | None
    grantor: str | None = None
    paths: tuple[RolePath, ...] = ()
    acl_item: AclItem | None = None

    @property
    def path(self) -> RolePath | None:
        return self.paths[0] if self.paths else None

    @property
    def needs_set_role(self) -> bool:
        """True when no path inherits: the privilege is one ``SET ROLE`` away."""
        return bool(self.paths) and all(p.mode == "set role" for p in self.paths)

    def chain(self, target: str) -> str:
        """The path as an auditor reads it: ``a → b → CONNECT on "db"``."""
        return f"{self._chain_head} {target}"

    def evidence(self, target: str) -> dict[str, object]:
        """The access as findings show it, held on ``target``.

        Built once per object and shared by every finding that shows it (an app's
        databases repeat the same tables, held the same way): safe because a finding's
        evidence is never changed once made.
        """
        shown = self._evidence_by_target.get(target)
        if shown is None:
            shown = {"via": self.via, "chain": self.chain(target), **self._evidence_rest}
            self._evidence_by_target[target] = shown
        return shown

    # One access is often shown on many objects (a group's grant on every table): what
    # does not depend on the object is worked out once.

    @cached_property
    def _evidence_by_target(self) -> dict[str, dict[str, object]]:
        return {}

    @cached_property
    def _chain_head(self) -> str:
        what = "owner of" if self.via == "owner" else f"{', '.join(self.privileges)} on"
        head = (
            "PUBLIC"
            if self.via == "public"
            else (self.path or RolePath((self.role,), "direct")).describe()
        )
        return f"{head} → {what}"

    @cached_property
    def _evidence_rest(self) -> dict[str, object]:
        """The evidence after the chain: the same on every object the access is shown on.

        Its lists are shared by every evidence built from this access, which is safe
        because a finding's evidence is never changed once made.
        """
        rest: dict[str, object] = {"privileges": list(self.privileges)}
        item = self.acl_item
        if item is not None:
            rest["acl_item"] = acl_text(item)
            rest["grantee"] = item.grantee or "PUBLIC"
            rest["grantor"] = item.grantor
        paths = self.paths
        if paths and len(paths[0].path) > 1:
            rest["paths"] = [p.evidence() for p in paths]
        if self._set_role_note is not None:
            rest["needs_set_role"] = True
            rest["note"] = self._set_role_note
        return rest

    @cached_property
    def _set_role_note(self) -> str | None:
        if not self.needs_set_role:
            return None
        set_role = quote_ident(self.paths[0].set_role or self.paths[0].holder)
        if "CONNECT" in self.privileges:
            # The login itself is checked against inherited privileges only, and
            # SET ROLE needs a session: this grant cannot open one today.
            return (
                "membership without INHERIT: CONNECT is checked at login against "
                "inherited privileges only, so the role cannot log in through it today; "
                "one INHERIT option (ALTER ROLE ... INHERIT before PostgreSQL 16, GRANT "
                f"... WITH INHERIT TRUE from 16) opens it, and SET ROLE {set_role} in a "
                "session hands over the group's other privileges"
            )
        return (
            "membership without INHERIT: the privilege is not used automatically, "
            f"but once connected it is one SET ROLE {set_role} away"
        )

    @property
    def usable_at_login(self) -> bool:
        """Whether this access counts when PostgreSQL checks CONNECT at login.

        Login is checked against the session user's inherited privileges: PUBLIC,
        its own grants and ownership, and groups reached through INHERIT only.
        """
        return self.via in ("public", "grant") or not self.needs_set_role


def item_access(item: AclItem, role: str, graph: RoleGraph) -> Access | None:
    """How ``role`` holds the privileges of one non-PUBLIC ACL item, or None."""
    if item.grantee is None:
        return None
    privileges = sort_privileges(item.privileges)
    if item.grantee == role:
        direct = (RolePath((role,), "direct"),)
        return Access(role, privileges, "grant", role, item.grantor, direct, item)
    if not graph.can_use(role, item.grantee):
        return None
    paths = graph.paths(role, item.grantee)
    return Access(role, privileges, "membership", item.grantee, item.grantor, paths, item)


def acl_accesses(
    acl: Iterable[AclItem],
    role: str,
    graph: RoleGraph,
    wanted: Collection[str] | None = None,
    *,
    include_public: bool = True,
) -> list[Access]:
    """Every way ``role`` holds any of ``wanted`` (all when None) through ``acl``.

    Grants to ``role`` itself come first, then grants reached through membership,
    PUBLIC last.
    """
    found: list[Access] = []
    public: list[Access] = []
    for item in acl:
        # Most items belong to roles ``role`` cannot use: skip them before anything else.
        if item.grantee is None:
            if not include_public:
                continue
        elif not graph.can_use(role, item.grantee):
            continue
        privileges = sort_privileges(p for p in item.privileges if wanted is None or p in wanted)
        if not privileges:
            continue
        if item.grantee is None:
            public.append(Access(role, privileges, "public", None, item.grantor, (), item))
        elif item.grantee == role:
            direct = (RolePath((role,), "direct"),)
            found.append(Access(role, privileges, "grant", role, item.grantor, direct, item))
        else:
            paths = graph.paths(role, item.grantee)
            found.append(
                Access(role, privileges, "membership", item.grantee, item.grantor, paths, item)
            )
    found.sort(key=lambda a: (a.via != "grant", len(a.path.path) if a.path else 0))
    return found + public


def can_connect(db: Database, role: str, graph: RoleGraph) -> bool:
    """Whether ``role`` can log in to ``db`` now (as has_database_privilege says)."""
    if not db.allow_connections:
        return False
    return db.public_connect or holds_at_login(db.acl, db.owner, role, graph, "CONNECT")


def holds_at_login(
    acl: Iterable[AclItem], owner: str, role: str, graph: RoleGraph, privilege: str
) -> bool:
    """Whether ``role`` holds ``privilege`` other than through PUBLIC, usable at login.

    That is its own grant or ownership, or a group's reached through INHERIT
    (``Access.usable_at_login``): what still lets it connect once PUBLIC's CONNECT is
    revoked.
    """
    if graph.always_inherits:
        # No grant lacks INHERIT: every group ``role`` can use, it inherits.
        return graph.can_use(role, owner) or any(
            item.grantee is not None
            and privilege in item.privileges
            and graph.can_use(role, item.grantee)
            for item in acl
        )
    owned = ownership_access(role, owner, graph)
    return (owned is not None and owned.usable_at_login) or any(
        a.usable_at_login
        for a in acl_accesses(acl, role, graph, (privilege,), include_public=False)
    )


def ownership_access(role: str, owner: str, graph: RoleGraph) -> Access | None:
    """``role`` acting as ``owner`` (being it, or using its privileges), or None."""
    if role == owner:
        return Access(role, ("ALL",), "owner", owner, None, (RolePath((role,), "direct"),))
    if not graph.can_use(role, owner):
        return None
    return Access(role, ("ALL",), "owner", owner, None, graph.paths(role, owner))


# -- remediation ---------------------------------------------------------------------


def revoke_membership(graph: RoleGraph, member: str, role: str, version_num: int) -> list[str]:
    """Statements that end ``member``'s use of ``role``: one REVOKE per access grant.

    From PostgreSQL 16 a membership is recorded per grantor and a plain REVOKE only
    removes the grant the current role made, so each one is revoked ``GRANTED BY``
    its grantor. Before 16 there is one grant per pair and the grantor is ignored.
    """
    grants = graph.access_grants(member, role) or graph.grants(member, role)
    head = f"REVOKE {quote_ident(role)} FROM {quote_ident(member)}"
    if version_num < PG16:
        return [f"{head};"]
    statements = [
        f"{head} GRANTED BY {quote_ident(g.grantor)};" if g.grantor else f"{head};" for g in grants
    ]
    return list(dict.fromkeys(statements)) or [f"{head};"]


def revoke_privileges(
    privileges: Iterable[str],
    on: str,
    grantee: str | None,
    grantor: str | None,
    owner: str | None,
) -> list[str]:
    """REVOKE ``privileges`` ON ``on`` (already quoted, e.g. ``DATABASE "x"``) FROM grantee.

    A REVOKE only removes the ACL item its issuer granted. When the owner (or a
    superuser, or a member of the owner, all of whom act as the owner) granted it, a
    plain REVOKE works; when another role granted it (holding the grant option), the
    REVOKE must be issued as that role.
    """
    target = "PUBLIC" if grantee is None else quote_ident(grantee)
    statement = f"REVOKE {', '.join(sort_privileges(privileges))} ON {on} FROM {target};"
    if grantor is None or owner is None or grantor == owner:
        return [statement]
    return [
        sql_comment(
            f"granted by {grantor!r}, not by the owner {owner!r}: revoke it as the grantor"
        ),
        f"SET ROLE {quote_ident(grantor)};",
        statement,
        "RESET ROLE;",
    ]


def sql_comment(text: str) -> str:
    """``text`` as one SQL comment line.

    Role and database names may contain line breaks; written raw into a ``--``
    comment they would end it and turn the rest of the name into SQL.
    """
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    return f"-- {flat}"


def in_database(database: str) -> str:
    """The comment that opens a script which must run inside ``database``."""
    name = quote_ident(database)
    return sql_comment(f"run in database {name} (psql: \\connect {name})")


def verify_membership(member: str, role: str, version_num: int) -> str:
    """A query an auditor can run to confirm ``member`` may use or become ``role``."""
    mode = "SET" if version_num >= PG16 else "MEMBER"
    return f"SELECT pg_has_role({quote_literal(member)}, {quote_literal(role)}, '{mode}');"


# -- tenancy -------------------------------------------------------------------------


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
    _foreign: dict[str | None, list[str]] = field(init=False, default_factory=dict)
    _connecting: dict[str, list[str]] = field(init=False, default_factory=dict)
    _app_users: dict[str, dict[str, list[str]]] = field(init=False, default_factory=dict)
    _users: dict[tuple[str, str | None], list[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.graph = RoleGraph(self.pg.memberships)

    @classmethod
    def of(cls, snapshot: ServerSnapshot, context: ServerContext) -> Tenancy:
        """The tenancy of a server whose PostgreSQL was collected (rules require it).

        Every rule of one server asks for the same one: it is built once (the role
        graph and its caches are the expensive part on big servers).
        """
        assert snapshot.postgres is not None
        last = context.shared.get("tenancy")
        if isinstance(last, Tenancy) and last.pg is snapshot.postgres:
            return last
        tenancy = cls(snapshot.postgres, context)
        context.shared["tenancy"] = tenancy
        return tenancy

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
        found: dict[str, DatabaseDetail] = {}
        for detail in self.pg.database_details:
            found.setdefault(detail.name, detail)  # the first one, as PostgresSnapshot.detail
        return found

    def owned_databases(self, role: str) -> list[str]:
        """The databases ``role`` owns, sorted."""
        return list(self._owned.get(role, ()))

    @cached_property
    def _owned(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, db in sorted(self.databases.items()):
            found.setdefault(db.owner, []).append(name)
        return found

    def connectable(self, role: str) -> list[str]:
        """Every database ``role`` can log in to now (``can_connect``), sorted.

        Only a database that gives PUBLIC CONNECT, or whose CONNECT grantee or owner
        ``role`` is or can use, can let it in: the others are never asked.
        """
        candidates: set[str] = set(self._connect_sources.get(None, ()))
        for holder in self.graph.holders(role):
            candidates.update(self._connect_sources.get(holder, ()))
        return sorted(d for d in candidates if can_connect(self.databases[d], role, self.graph))

    @cached_property
    def _connect_sources(self) -> dict[str | None, set[str]]:
        """The databases each grantee (None: PUBLIC) holds CONNECT on, or owns."""
        found: dict[str | None, set[str]] = {}
        for name, db in self.databases.items():
            found.setdefault(db.owner, set()).add(name)
            for item in db.acl:
                if "CONNECT" in item.privileges:
                    found.setdefault(item.grantee, set()).add(name)
        return found

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
        """Every app role present on the server, with its (first) app."""
        found: dict[str, str] = {}
        for app in self.context.server.app:
            for role in app.roles:
                if role in self.roles:
                    found.setdefault(role, app.name)
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
        if role in self.role_apps:
            return True
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
        return tuple(sorted(r for r in self.roles if self.is_principal(r)))

    @cached_property
    def _principal_names(self) -> frozenset[str]:
        # ``principals`` to test membership in: asked for every user of every grantee.
        return frozenset(self.principals)

    def foreign_principals(self, database: str) -> list[str]:
        """Every existing role that must not reach ``database``, sorted."""
        # Whether a role is foreign depends only on the database's app.
        owner_app = self.app_databases.get(database)
        if owner_app not in self._foreign:
            self._foreign[owner_app] = [
                r for r in self.principals if self.role_apps.get(r) != owner_app
            ]
        return self._foreign[owner_app]

    def foreign_logins(self, database: str) -> Iterator[str]:
        """The foreign principals of ``database`` with LOGIN, sorted, one at a time.

        Lazily: on a big server they are nearly every role, and callers list a few.
        """
        owner_app = self.app_databases.get(database)
        return (r for r in self._logins if self.role_apps.get(r) != owner_app)

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

    def foreign_connecting(self, db: Database) -> Sequence[str]:
        """The foreign principals of ``db`` that can log in to it now, sorted.

        With PUBLIC CONNECT that is every one of them; otherwise only the users of its
        CONNECT grantees and of its owner can (asked once per database).
        """
        if not db.allow_connections:
            return ()
        if db.public_connect:
            return self.foreign_principals(db.name)
        if db.name not in self._connecting:
            self._connecting[db.name] = [
                r for r in self.reaching(db, ("CONNECT",)) if can_connect(db, r, self.graph)
            ]
        return self._connecting[db.name]

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
        itself the leak.
        """
        for member, role in path.edges:
            if not self.foreign(role, database):
                return (member, role)
        return None

    def cut_membership(self, access: Access, database: str) -> tuple[list[str], str]:
        """REVOKEs that end ``access.role``'s use of ``access.grantee``, and why there.

        Every path is cut where it leaves the foreign roles, or at its first grant
        when it never does (the grantee's own grants are then reported on their own).
        """
        holder = access.grantee
        cuts = list(dict.fromkeys(self.cut_point(p, database) or p.edges[0] for p in access.paths))
        statements = [
            stmt for m, r in cuts for stmt in revoke_membership(self.graph, m, r, self.version_num)
        ]
        where = ", ".join(f"of {m!r} in {r!r}" for m, r in cuts)
        if holder is not None and self.foreign(holder, database):
            why = (
                f"{holder!r} is reported for its own grants; what hands them to "
                f"{access.role!r} is the membership {where}"
            )
        else:
            why = f"{holder!r} may keep them; the leak is the membership {where}"
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
        cuts = [self.cut_point(path, database) for path in access.paths]
        if self.foreign(holder, database) or not cuts or None in cuts:
            why = (
                f"{holder!r} must not hold this itself; revoking its grant removes the "
                f"access for {access.role!r} and every other member at once"
            )
            first_edges = [
                stmt
                for member, role in dict.fromkeys(p.edges[0] for p in access.paths if p.edges)
                for stmt in revoke_membership(self.graph, member, role, self.version_num)
            ]
            return revoke_grant, why, first_edges
        edges = [cut for cut in dict.fromkeys(cuts) if cut is not None]
        statements = [
            stmt
            for member, role in edges
            for stmt in revoke_membership(self.graph, member, role, self.version_num)
        ]
        neutral = not self.legitimate(holder, database)
        why = (
            f"{holder!r} is "
            + ("a group of no app" if neutral else "meant to hold it")
            + "; the leak is the membership "
            + ", ".join(f"of {m!r} in {r!r}" for m, r in edges)
            + ", so that is revoked and the grant stays for the group's other members"
        )
        return statements, why, revoke_grant if neutral else []


def access_matrix(snapshot: ServerSnapshot, context: ServerContext) -> tuple[AccessCell, ...]:
    """Apps (and PUBLIC) by app databases: who reaches which database, and how."""
    from pgwarden.model.results import AccessCell

    tenancy = Tenancy.of(snapshot, context)  # the one the server's rules used
    order = {app.name: index for index, app in enumerate(context.server.app)}  # the map's
    cells: list[AccessCell] = []
    for database, owner_app in context.app_databases().items():
        db = tenancy.databases.get(database)
        if db is None:
            continue
        if db.public_connect:
            cells.append(
                AccessCell(
                    database=database,
                    app=owner_app,
                    principal="PUBLIC",
                    via="public",
                    violation=True,
                )
            )
        # Only an app role that is, or can use, a CONNECT grantee can reach it: by a
        # grant when it is one, else through membership (no access needs building).
        grantees = {
            item.grantee
            for item in db.acl
            if item.grantee is not None and "CONNECT" in item.privileges
        }
        reaching: dict[str, set[str]] = {}
        for grantee in grantees:
            for app, roles in tenancy.app_users(grantee).items():
                reaching.setdefault(app, set()).update(roles)
        for app in sorted(reaching.keys() | {owner_app}, key=order.__getitem__):
            if app == owner_app:
                cells.append(AccessCell(database=database, app=owner_app, principal=app, via="own"))
                continue
            cells.append(
                AccessCell(
                    database=database,
                    app=owner_app,
                    principal=app,
                    via="membership" if reaching[app].isdisjoint(grantees) else "grant",
                    violation=True,
                )
            )
    return tuple(cells)
