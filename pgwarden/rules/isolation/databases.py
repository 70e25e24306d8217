"""PGW-ISO-001, -002 and -005: who may connect to an app database or create temporary objects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from pgwarden.access.cached import cached_property
from pgwarden.access.grants import Access, acl_accesses, membership_access, ownership_access
from pgwarden.access.privileges import acl_text
from pgwarden.access.remediation import capped_statements, revoke_privileges, sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.evidence import put_capped, summarize_phrases
from pgwarden.model.snapshot import AclItem, Database, ServerSnapshot
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict, quote_ident
from pgwarden.rules.control_sets import LEAST_PRIVILEGE
from pgwarden.rules.isolation._evidence import (
    LOGINS_QUERY,
    Exposure,
    database_passed,
    datacl_query,
    describe_role,
    fix_lines,
    member_evidence,
    one_fix,
    one_membership,
    remediation_script,
    successor_owner,
    verify_database_privilege,
)


class PublicConnect(Rule):
    """PUBLIC holds CONNECT on an app database.

    PostgreSQL grants CONNECT and TEMPORARY to PUBLIC on every new database. On a
    shared server that means every login role of every other app can connect to this
    app's database: isolation then rests on object privileges alone. This is the gap
    behind "each database is completely isolated".

    Violation: An app database whose ACL (or the built-in default, when datacl is
    NULL) gives CONNECT to PUBLIC. The evidence lists the roles of other apps (and the
    logins of no app) that can connect only because of it.

    Fix: REVOKE CONNECT ON DATABASE <db> FROM PUBLIC, after granting CONNECT to the
    app's own roles and to the admin, platform and auditor roles that need it (the
    remediation includes exactly the grants that are missing).
    """

    id = "PGW-ISO-001"
    severity = "high"
    controls = LEAST_PRIVILEGE
    requires = (Section.TENANCY_MAP, Section.POSTGRES)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        if context.include_passed:
            yield from _public_lacks(tenancy, "CONNECT", "PUBLIC cannot connect to")
        needed_by: dict[str, tuple[str, ...]] = {}
        for database, app, db, public in _public_holds(tenancy, "CONNECT"):
            yield Verdict(
                resource=f"database/{database}",
                principal="PUBLIC",
                app=app,
                message=f"PUBLIC can connect to database {database!r} of app {app!r}: "
                "every login role on the server can",
                evidence=_public_database_evidence(tenancy, db, public, "CONNECT"),
                remediation=remediation_script(
                    _keep_access(tenancy, db, "CONNECT", needed_by),
                    revoke_privileges(
                        ["CONNECT"],
                        f"DATABASE {quote_ident(database)}",
                        None,
                        public.grantor,
                        db.owner,
                    ),
                ),
            )


def _public_holds(tenancy: Tenancy, privilege: str) -> Iterator[tuple[str, str, Database, AclItem]]:
    """Each app database whose ACL gives ``privilege`` to PUBLIC, with that ACL item."""
    for database, app in sorted(tenancy.app_databases.items()):
        db = tenancy.databases[database]
        item = next((i for i in db.acl if i.is_public and privilege in i.privileges), None)
        if item is not None:
            yield database, app, db, item


def _public_lacks(tenancy: Tenancy, privilege: str, says: str) -> Iterator[Verdict]:
    """A pass record for each app database whose ACL gives PUBLIC no ``privilege``."""
    for database, app in sorted(tenancy.app_databases.items()):
        db = tenancy.databases[database]
        if not any(i.is_public and privilege in i.privileges for i in db.acl):
            yield database_passed(db, app, f"{says} database {database!r} of app {app!r}")


def _public_database_evidence(
    tenancy: Tenancy, db: Database, item: AclItem, privilege: str
) -> dict[str, object]:
    # Every foreign login is exposed, but those granted the privilege themselves.
    granted = set(tenancy.reaching(db, (privilege,), owner=False))
    exposed = (role for role in tenancy.foreign_logins(db.name) if role not in granted)
    total = tenancy.count_foreign_logins(db.name) - sum(
        1 for role in granted if tenancy.roles[role].login
    )
    evidence: dict[str, object] = {"database": db.name, "acl_item": acl_text(item)}
    put_capped(
        evidence, "datacl", (acl_text(i) for i in db.acl), len(db.acl), datacl_query(db.name)
    )
    evidence["acl_is_default"] = db.acl_is_default
    put_capped(evidence, "exposed_roles", exposed, total, LOGINS_QUERY)
    evidence["verify"] = verify_database_privilege(None, db.name, privilege)
    if db.acl_is_default:
        evidence["note"] = (
            "datacl is NULL: PostgreSQL's built-in default gives PUBLIC CONNECT and TEMPORARY"
        )
    return evidence


def _keep_access(
    tenancy: Tenancy, db: Database, privilege: str, needed_by: dict[str, tuple[str, ...]]
) -> list[str]:
    """GRANTs for the roles that need ``privilege`` and hold it only through PUBLIC
    (``needed_by``: those roles for each app, gathered once per app, for an app may
    have a thousand databases)."""
    app = tenancy.app_databases[db.name]
    needed = needed_by.get(app)
    if needed is None:
        roles = [
            *tenancy.app_roles(app),
            *(r for r in tenancy.context.server.platform_roles if r in tenancy.roles),
            tenancy.pg.connected_as,
        ]
        if tenancy.context.admin_role in tenancy.roles:
            roles.append(tenancy.context.admin_role)
        needed = needed_by[app] = tuple(dict.fromkeys(roles))
    # Only what counts at login: a membership without INHERIT would not keep it in.
    lacking = tenancy.lacking_at_login(needed, db, privilege)
    if not lacking:
        return []
    grants = (
        f"GRANT {privilege} ON DATABASE {quote_ident(db.name)} TO {quote_ident(role)};"
        for role in lacking
    )
    return [
        sql_comment("first keep access for the roles that need it"),
        *capped_statements(
            grants,
            f"one for each other role of app {app!r} in the tenancy map",
            total=len(lacking),
        ),
    ]


class CrossAppConnect(Rule):
    """A role of one app can connect to another app's database.

    Database CONNECT is the outer wall between tenants. A role of another app (or a
    login role no app owns) that holds it — granted directly, or through a group it
    belongs to, however deep — can read whatever PUBLIC or any of its groups may read
    inside, and can create temporary objects there. Membership without INHERIT is
    reported too: PostgreSQL checks CONNECT at login against inherited privileges only,
    so such a role cannot log in through it today, but one INHERIT option opens it (and
    the membership hands over the group's other privileges by SET ROLE). Access only
    through PUBLIC is PGW-ISO-001's.

    Violation: A role of app A, or a non-platform login role of no app, holds CONNECT
    on a database of app B through a grant to itself, a group role (transitively), or
    ownership. The evidence gives each path, e.g. ``temporal_app → ctxeco_app →
    CONNECT on "ctxEco"``, and the ACL item at its end.

    Fix: Remove the access where it is made. A grant to the role itself (or to a role
    that must not hold it either): REVOKE CONNECT ON DATABASE <db> FROM <role>. Access
    through a group that is meant to hold it (the app's own role, or a group of no
    app): REVOKE <group> FROM <member>, at the membership where the chain leaves the
    foreign roles, so the group's other members keep it. On PostgreSQL 16+ each
    membership is revoked GRANTED BY its grantor.
    """

    id = "PGW-ISO-002"
    severity = "high"
    controls = LEAST_PRIVILEGE
    requires = (Section.TENANCY_MAP, Section.POSTGRES)

    # Whether a role whose one way in is its own inherited membership in a grantee (a
    # login put in an app's group: most findings on a big server) is reported by the
    # short way (``_Connecting.through_one_group``). Tests turn it off, to check that both
    # ways give the same findings.
    shortcut: ClassVar[bool] = True

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        for database, app in sorted(tenancy.app_databases.items()):
            db = tenancy.databases[database]
            connecting = _Connecting(tenancy, db, app)
            exposed = False
            for role, items, owner in _connect_holders(tenancy, db):
                verdict = None
                if self.shortcut and not owner and len(items) == 1:
                    verdict = connecting.through_one_group(role, items[0])
                if verdict is None:
                    verdict = connecting.verdict(role, items, owner)
                if verdict is not None:
                    exposed = True
                    yield verdict
            if context.include_passed and not exposed:
                yield database_passed(
                    db,
                    app,
                    f"no role of another app (nor a login of no app) holds CONNECT on database "
                    f"{database!r} of app {app!r}",
                )


class _Connecting:
    """ISO-002's findings on one database: what every finding there shows (its ACL),
    made once, and what one group's members share, made once per group."""

    def __init__(self, tenancy: Tenancy, db: Database, app: str) -> None:
        self.tenancy = tenancy
        self.db = db
        self.app = app
        self.target = quote_ident(db.name)
        # What a member of a grantee shares with the grantee's other members
        # (``through_one_group``), by grantee.
        self._groups: dict[str, _Group] = {}

    @cached_property
    def _datacl(self) -> tuple[list[str], str]:
        return [acl_text(i) for i in self.db.acl], datacl_query(self.db.name)

    def _evidence(self, role: str) -> dict[str, object]:
        """The evidence every finding here starts with."""
        return {
            "database": self.db.name,
            "database_app": self.app,
            "principal_app": self.tenancy.role_apps.get(role),
            "login": self.tenancy.roles[role].login,
        }

    def _finish(
        self, role: str, message: str, evidence: dict[str, object], remediation: list[str]
    ) -> Verdict:
        datacl, query = self._datacl
        put_capped(evidence, "datacl", datacl, len(datacl), query)
        evidence["verify"] = verify_database_privilege(role, self.db.name, "CONNECT")
        return Verdict(
            resource=f"database/{self.db.name}",
            principal=f"role/{role}",
            app=self.app,
            message=f"{describe_role(self.tenancy, role)} {message}",
            evidence=evidence,
            remediation=remediation_script(remediation),
        )

    def _can_connect(self, how: str) -> str:
        """The message of a role that can connect, ``how`` it can."""
        return f"can connect to database {self.db.name!r} of app {self.app!r} {how}"

    def verdict(self, role: str, items: Sequence[AclItem], owner: bool) -> Verdict | None:
        """The finding for ``role``, which reaches the CONNECT grants ``items`` (and the
        owner, with ``owner``), or None when none of them is access after all."""
        tenancy, db, app, database = self.tenancy, self.db, self.app, self.db.name
        exposure = Exposure(f"database/{database}", f"role/{role}", app, database)
        for access in _database_accesses(tenancy, db, role, items, owner):
            exposure.add(access, _revoke_database_item(tenancy, db, access), self.target)
        if not exposure.held:
            return None
        accesses = exposure.accesses
        how = summarize_phrases(list(dict.fromkeys(_how(a, db.owner) for a in accesses)), " and ")
        if any(a.usable_at_login for a in accesses):
            message = self._can_connect(how)
        else:
            message = (
                f"holds CONNECT on database {database!r} of app {app!r} {how}, "
                "without INHERIT: not usable to log in today, one INHERIT option away"
            )
        evidence = self._evidence(role)
        exposure.put_accesses(evidence)
        return self._finish(role, message, evidence, fix_lines(tenancy, database, exposure))

    def through_one_group(self, role: str, item: AclItem) -> Verdict | None:
        """``verdict`` for a role that reaches one CONNECT grant, not the owner, when its
        one way to the grantee is its own inherited membership; else None.

        Such a finding differs from another member's only where it names the member:
        what the group's members share is made once (``_Group``), and the finding is
        the one ``verdict`` makes, without gathering and ordering ways in.
        """
        group = item.grantee
        assert group is not None, "PUBLIC's CONNECT is ISO-001's"
        tenancy = self.tenancy
        if group == role or (paths := one_membership(tenancy.graph, role, group)) is None:
            return None
        access = membership_access(item, role, _CONNECT, paths)
        shared = self._groups.get(group)
        if shared is None:
            # Made from the first member's access: what it says holds for every member.
            shared = self._groups[group] = _Group(
                revoke=_revoke_database_item(tenancy, self.db, access),
                message=self._can_connect(_how(access, self.db.owner)),
            )
        chain = access.chain(self.target)
        evidence = self._evidence(role)
        evidence["access"] = [member_evidence(access, chain, shared.rests)]
        statements, why, alternatives = tenancy.source_fix(access, self.db.name, shared.revoke)
        return self._finish(
            role, shared.message, evidence, one_fix(chain, why, statements, alternatives)
        )


_CONNECT = ("CONNECT",)


@dataclass
class _Group:
    """What every member of one CONNECT grantee shares in one database's findings: the
    REVOKE of the grant, the message, and the access's evidence but its chain
    (``member_evidence``)."""

    revoke: list[str]
    message: str
    rests: dict[int, dict[str, object]] = field(default_factory=dict)


def _connect_holders(tenancy: Tenancy, db: Database) -> Iterator[tuple[str, list[AclItem], bool]]:
    """Each foreign principal that is, or can use, a CONNECT grantee or the owner of ``db``.

    With the ACL items it reaches that way, in ACL order, and whether it reaches the
    owner: asked from the grantees' side (one cached reverse walk each), so the work
    follows the (role, grantee) pairs there are, never every role by every ACL item.
    """
    items: dict[str, list[tuple[int, AclItem]]] = {}
    for index, item in enumerate(db.acl):
        if item.grantee is not None and "CONNECT" in item.privileges:
            items.setdefault(item.grantee, []).append((index, item))
    reached: dict[str, list[str]] = {}
    for grantee in {*items, db.owner}:
        for role in tenancy.foreign_users(grantee, db.name):
            reached.setdefault(role, []).append(grantee)
    for role in sorted(reached):
        grantees = reached[role]
        held = sorted((pair for g in grantees for pair in items.get(g, ())), key=lambda p: p[0])
        yield role, [item for _index, item in held], db.owner in grantees


def _how(access: Access, owner: str) -> str:
    if access.grantee == owner:
        if access.role == owner:
            return "as the database's owner"
        return f"through membership in its owner {owner!r}"
    if access.via == "grant":
        return "through a grant to itself"
    return f"through membership in {access.grantee!r}"


def _database_accesses(
    tenancy: Tenancy, db: Database, role: str, items: Sequence[AclItem], owner: bool
) -> list[Access]:
    """``role``'s non-PUBLIC ways to CONNECT on ``db`` through ``items``, ownership included.

    The owner holds every privilege however the ACL reads (it can re-grant itself),
    so an owner reached without an ACL item of its own is access too (``owner``: the
    role is, or can use, the owner).
    """
    found = acl_accesses(items, role, tenancy.graph, ("CONNECT",), include_public=False)
    if owner and not any(a.grantee == db.owner for a in found):
        owned = ownership_access(role, db.owner, tenancy.graph)
        if owned is not None:
            found.append(owned)
    return found


def _revoke_database_item(tenancy: Tenancy, db: Database, access: Access) -> list[str]:
    target = quote_ident(db.name)
    if access.grantee == db.owner:
        new_owner = tenancy.context.admin_role or successor_owner(tenancy, db.name)
        return [
            sql_comment(
                f"{db.owner!r} owns the database, and an owner can always grant itself "
                "CONNECT: hand the database to the admin (or its app)"
            ),
            f"ALTER DATABASE {target} OWNER TO {quote_ident(new_owner)};",
        ]
    assert access.acl_item is not None
    return revoke_privileges(
        access.acl_item.privileges,
        f"DATABASE {target}",
        access.grantee,
        access.grantor,
        db.owner,
    )


class PublicTemporary(Rule):
    """PUBLIC holds TEMPORARY on an app database.

    TEMPORARY is the other half of PostgreSQL's default database ACL. Any role that
    can connect (through PUBLIC or a grant) may create temporary tables and functions
    there: disk and memory on the shared server charged to this app, and a place to
    stage objects. Harmless alone on a database PUBLIC cannot connect to, but it
    outlives a REVOKE CONNECT that forgot it.

    Violation: An app database whose ACL (or the built-in default) gives TEMPORARY to
    PUBLIC.

    Fix: REVOKE TEMPORARY ON DATABASE <db> FROM PUBLIC; grant it to the app's own
    roles if they use temporary tables.
    """

    id = "PGW-ISO-005"
    severity = "low"
    controls = LEAST_PRIVILEGE[1:]
    requires = (Section.TENANCY_MAP, Section.POSTGRES)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        if context.include_passed:
            yield from _public_lacks(
                tenancy, "TEMPORARY", "PUBLIC cannot create temporary objects in"
            )
        for database, app, db, item in _public_holds(tenancy, "TEMPORARY"):
            connect = db.public_connect
            roles = tenancy.app_roles(app)
            keep = capped_statements(
                (
                    sql_comment(
                        f"if {role!r} uses temporary tables: GRANT TEMPORARY ON DATABASE "
                        f"{quote_ident(database)} TO {quote_ident(role)};"
                    )
                    for role in roles
                ),
                f"the same for app {app!r}'s other roles",
                total=len(roles),
            )
            yield Verdict(
                resource=f"database/{database}",
                principal="PUBLIC",
                app=app,
                message=f"PUBLIC may create temporary objects in database {database!r} of app "
                f"{app!r}" + ("" if connect else " (once connected: PUBLIC itself has no CONNECT)"),
                evidence=_public_database_evidence(tenancy, db, item, "TEMPORARY"),
                remediation=remediation_script(
                    revoke_privileges(
                        ["TEMPORARY"],
                        f"DATABASE {quote_ident(database)}",
                        None,
                        item.grantor,
                        db.owner,
                    ),
                    keep,
                ),
            )
