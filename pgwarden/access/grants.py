"""Effective access: who holds a privilege, directly, through PUBLIC or through membership.

Membership follows ``graph``'s semantics. One more rule applies to logging in:

* CONNECT is checked at login against the session user's *inherited* privileges, and
  ``SET ROLE`` needs a session: a path without INHERIT never opens a connection
  (``Access.usable_at_login``, ``can_connect``), though it is still reported.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pgwarden.access.cached import cached_property
from pgwarden.access.graph import RoleGraph, RolePath, own_grant
from pgwarden.access.privileges import acl_text, sort_privileges
from pgwarden.model.identifiers import quote_ident
from pgwarden.model.snapshot import AclItem, Database

Via = Literal["public", "grant", "membership", "owner"]
# Membership paths an access spells out in evidence (the remediation cuts them all):
# at most this many, and of long ones as many as hold this many role names together
# (the first always), so deep chains keep a finding a few kilobytes.
MAX_PATHS_SHOWN = 5
MAX_PATH_NAMES_SHOWN = 40


def shown_paths(paths: Sequence[RolePath]) -> list[RolePath]:
    """The paths a finding spells out: the first few, within the names' budget."""
    shown: list[RolePath] = []
    names = 0
    for path in paths[:MAX_PATHS_SHOWN]:
        names += len(path.shown)
        if shown and names > MAX_PATH_NAMES_SHOWN:
            break
        shown.append(path)
    return shown


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
            shown = {"via": self.via, "chain": self.chain(target), **self.evidence_rest}
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
    def evidence_rest(self) -> dict[str, object]:
        """The evidence after the chain: the same on every object the access is shown on,
        and for every member of a group whose one way to it is its own inherited
        membership (no path is spelt out then).

        Its lists are shared by every evidence built from it, which is safe because a
        finding's evidence is never changed once made.
        """
        rest: dict[str, object] = {"privileges": list(self.privileges)}
        item = self.acl_item
        if item is not None:
            rest["acl_item"] = acl_text(item)
            rest["grantee"] = item.grantee or "PUBLIC"
            rest["grantor"] = item.grantor
        paths = self.paths
        # One direct, inherited membership says nothing the role and the grantee do not;
        # any other way in (a chain, SET ROLE, several paths) is spelt out.
        plain = own_grant(paths) and paths[0].mode == "inherit"
        if paths and len(paths[0].path) > 1 and not plain:
            # Each path may be a dozen roles long: the shortest few show the way in.
            shown = shown_paths(paths)
            rest["paths"] = [p.evidence() for p in shown]
            if len(paths) > len(shown):
                rest["paths_total"] = len(paths)
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
    return membership_access(item, role, privileges, graph.paths(role, item.grantee))


def membership_access(
    item: AclItem, role: str, privileges: tuple[str, ...], paths: tuple[RolePath, ...]
) -> Access:
    """How ``role`` holds ``item``'s ``privileges`` (sorted) through ``paths``, its
    membership paths to the grantee."""
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
    revoked. (``Tenancy.holds_at_login`` asks the same of many roles.)
    """
    return held_at_login(login_holders(acl, owner, privilege), role, graph.usable_groups(role)[0])


def login_holders(acl: Iterable[AclItem], owner: str, privilege: str) -> frozenset[str]:
    """The roles that hold ``privilege`` other than through PUBLIC: the grantees of the
    ACL items with it, and the owner (who holds every privilege, however the ACL reads:
    it can grant itself any)."""
    return frozenset(
        {owner, *(i.grantee for i in acl if i.grantee is not None and privilege in i.privileges)}
    )


def held_at_login(holders: frozenset[str], role: str, inherited: frozenset[str]) -> bool:
    """Whether ``role``, which inherits the groups ``inherited``
    (``RoleGraph.usable_groups``), holds what ``holders`` (``login_holders``) hold, usable
    at login: it is one of them, or inherits one. A group it reaches only through
    ``SET ROLE`` does not count: login needs no session's SET ROLE."""
    return role in holders or not holders.isdisjoint(inherited)


def ownership_access(role: str, owner: str, graph: RoleGraph) -> Access | None:
    """``role`` acting as ``owner`` (being it, or using its privileges), or None."""
    if role == owner:
        return Access(role, ("ALL",), "owner", owner, None, (RolePath((role,), "direct"),))
    if not graph.can_use(role, owner):
        return None
    return Access(role, ("ALL",), "owner", owner, None, graph.paths(role, owner))
