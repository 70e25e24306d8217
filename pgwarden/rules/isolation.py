"""PGW-ISO: isolation between the databases of different apps.

Every rule here judges *effective* access: a privilege granted to a role, to a group
it belongs to (transitively, by inheritance or one ``SET ROLE`` away), or to PUBLIC.
Access that exists only through PUBLIC is reported once, as PUBLIC (ISO-001, -003,
-005, -006 and PUBLIC object grants in -004), never again for every role it reaches.
Each remediation removes the access at its source: the ACL item (revoked as its
grantor), the membership grant that lets a foreign role in, or the ownership.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import NamedTuple

from pgwarden.access.grants import (
    Access,
    acl_accesses,
    can_connect,
    holds_at_login,
    item_access,
    ownership_access,
)
from pgwarden.access.graph import RoleGraph
from pgwarden.access.privileges import acl_text, sort_privileges
from pgwarden.access.remediation import in_database, revoke_privileges, sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.snapshot import (
    AclItem,
    Database,
    DatabaseDetail,
    DefaultPrivilege,
    ObjectGrant,
    ServerSnapshot,
)
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict, quote_ident, quote_literal

NIST_LEAST_PRIVILEGE = "NIST SP 800-53 AC-6"
CIS_PG_DML = "CIS PostgreSQL 16 Benchmark 4.4"
MAX_LISTED = 25

# An ACL item's identity: grantee (None: PUBLIC), grantor, privileges and grantable.
_ItemKey = tuple[str | None, str, tuple[str, ...], tuple[str, ...]]
# Who holds an object grant's item: (role, access, held through membership).
_Holders = list[tuple[str, Access, bool]]

# What PostgreSQL grants PUBLIC on every new object of these kinds: restating it in a
# default ACL (which a global ALTER DEFAULT PRIVILEGES entry always does) is no leak.
BUILT_IN_PUBLIC = {"function": {"EXECUTE"}, "type": {"USAGE"}}
_DEFAULT_ACL_KEYWORDS = {
    "table": "TABLES",
    "sequence": "SEQUENCES",
    "function": "FUNCTIONS",
    "type": "TYPES",
    "schema": "SCHEMAS",
}


def _who(tenancy: Tenancy, role: str) -> str:
    app = tenancy.role_apps.get(role)
    return f"role {role!r} (app {app!r})" if app else f"login role {role!r} (no app)"


def _listed(names: Iterable[str], total: int) -> list[str]:
    """The first names of ``names`` (``total`` in all), then how many more there are."""
    shown = list(islice(names, MAX_LISTED))
    if total > MAX_LISTED:
        shown.append(f"… and {total - MAX_LISTED} more")
    return shown


def _script(*blocks: Iterable[str]) -> str:
    """Join remediation lines, dropping repeats (one REVOKE can fix several paths)."""
    lines: list[str] = []
    seen: set[str] = set()
    for block in blocks:
        for line in block:
            if line.startswith("--") or line not in seen:
                lines.append(line)
                seen.add(line)
    return "\n".join(lines)


def _new_owner(tenancy: Tenancy, database: str) -> str:
    """Who should own what a foreign role owns in ``database``: the app's first role."""
    app = tenancy.app_databases[database]
    roles = tenancy.app_roles(app)
    if roles:
        return roles[0]
    return tenancy.context.admin_role or tenancy.databases[database].owner


def _verify_db(role: str | None, database: str, privilege: str) -> str:
    who = "public" if role is None else role
    return (
        f"SELECT has_database_privilege({quote_literal(who)}, {quote_literal(database)}, "
        f"{quote_literal(privilege)});"
    )


def inspected(
    tenancy: Tenancy, rule_id: str
) -> Iterator[tuple[str, str, DatabaseDetail | Verdict]]:
    """Each app database with what the collector saw inside it, or an error verdict.

    A database the auditor could not enter is a blind spot: the rule reports it as
    ``error`` with what would let the next scan see it, never as a pass.
    """
    pg = tenancy.pg
    auditor = pg.connected_as
    for database, app in sorted(tenancy.app_databases.items()):
        db = tenancy.databases[database]
        detail = tenancy.detail(database)
        if detail is not None and detail.collected:
            yield database, app, detail
            continue
        reason = (
            detail.error
            if detail is not None and detail.error
            else "connections to it are disabled (datallowconn = false)"
            if not db.allow_connections
            else "it was not inspected"
        )
        auditor_connects = can_connect(db, auditor, tenancy.graph)
        if not db.allow_connections:
            fix = sql_comment(
                "nobody can connect to it; inspect it by hand or allow connections while "
                f"auditing: ALTER DATABASE {quote_ident(database)} ALLOW_CONNECTIONS true;"
            )
        elif not auditor_connects:
            fix = f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {quote_ident(auditor)};"
        elif "too many connections" in reason or "connection limit" in reason:
            fix = sql_comment(
                "retry when connections are free, or raise the limit that was hit: "
                f"ALTER ROLE {quote_ident(auditor)} CONNECTION LIMIT <n>;"
            )
        else:
            fix = sql_comment(
                f"{auditor!r} may connect by its ACL; resolve the error above and re-scan"
            )
        yield (
            database,
            app,
            Verdict(
                resource=f"database/{database}",
                app=app,
                status="error",
                message=f"{rule_id} could not inspect database {database!r} of app {app!r}: "
                f"{reason}; its schemas, grants and default privileges are unknown",
                evidence={
                    "database": database,
                    "error": reason,
                    "connected_as": auditor,
                    "auditor_has_connect": auditor_connects,
                },
                remediation=fix,
            ),
        )


class _Held(NamedTuple):
    """One way a principal holds something, how to revoke it, and what it is held on.

    ``derived``: held through membership in another role (``_derived``).
    """

    access: Access
    revoke: list[str]
    target: str
    derived: bool


@dataclass
class _Exposure:
    """Everything one principal holds on one resource, gathered before reporting.

    ``through``: what it holds through each role it belongs to, grouped by that role
    as it is added (the message and the remediation both ask for it).
    """

    resource: str
    principal: str
    app: str
    database: str
    held: list[_Held] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)
    through: dict[str, list[_Held]] = field(default_factory=dict)

    def add(self, access: Access, revoke: list[str], target: str) -> None:
        held = _Held(access, revoke, target, _derived(access))
        self.held.append(held)
        if held.derived and access.grantee is not None:
            self.through.setdefault(access.grantee, []).append(held)

    @property
    def accesses(self) -> list[Access]:
        return [h.access for h in self.held]

    def evidence(self, limit: int | None = None) -> list[dict[str, object]]:
        return [h.access.evidence(h.target) for h in self.held[:limit]]


def _exposure(
    exposures: dict[tuple[str, str], _Exposure],
    resource: str,
    principal: str,
    app: str,
    database: str,
) -> _Exposure:
    key = (resource, principal)
    if key not in exposures:
        exposures[key] = _Exposure(resource, principal, app, database)
    return exposures[key]


def _derived(access: Access) -> bool:
    """Held through membership in another role (its grant, or its ownership)."""
    return access.via == "membership" or (access.via == "owner" and access.grantee != access.role)


def _summary(targets: Sequence[str]) -> str:
    shown = ", ".join(targets[:3])
    return shown + (f" and {len(targets) - 3} more" if len(targets) > 3 else "")


def _fix_lines(
    tenancy: Tenancy, database: str, exposure: _Exposure, *, cut_memberships: bool = False
) -> list[str]:
    """The remediation script's lines, each preceded by the chain it ends and why.

    With ``cut_memberships``, everything held through one role is ended together by
    revoking the membership (the role's own grants are reported on their own), so a
    group granted thousands of tables costs one line, not thousands.
    """
    lines: list[str] = []
    grouped = exposure.through if cut_memberships else {}
    for held in exposure.held:
        if held.derived and held.access.grantee in grouped:
            continue
        statements, why, alternatives = tenancy.source_fix(held.access, database, held.revoke)
        lines.append(sql_comment(f"{held.access.chain(held.target)}: {why}"))
        lines.extend(statements)
        for alternative in alternatives:
            if not alternative.startswith("--"):
                lines.append(sql_comment(f"alternative: {alternative}"))
    for holder, group in grouped.items():
        first = group[0].access
        statements, why = tenancy.cut_membership(first, database)
        path = first.path.describe() if first.path else f"{first.role} → {holder}"
        targets = _summary([h.target for h in group])
        lines.append(sql_comment(f"{path} → {targets}: {why}"))
        lines.extend(statements)
    return lines


class _ItemAccesses:
    """Each role's way to an ACL item, for every database one rule looks into.

    An app's databases repeat its grants (the same group given USAGE on its schemas,
    SELECT on every table and the same default privileges, in each database): the
    item of an object grant, each foreign user's ``Access`` to an item and the
    evidence that access shows are built once per distinct item, not once per
    database and object.
    """

    def __init__(self, graph: RoleGraph) -> None:
        self._graph = graph
        self._items: dict[_ItemKey, AclItem] = {}
        self._accesses: dict[tuple[_ItemKey, str], Access | None] = {}
        self._holders: dict[tuple[_ItemKey, str | None], _Holders] = {}

    def item(self, grantee: str | None, grantor: str, privileges: tuple[str, ...]) -> AclItem:
        """The ACL item an object grant stands for."""
        key = (grantee, grantor, privileges, ())
        if key not in self._items:
            # Made of the snapshot's already validated fields: no second validation.
            self._items[key] = AclItem.model_construct(
                grantee=grantee, grantor=grantor, privileges=privileges
            )
        return self._items[key]

    def access(self, item: AclItem, role: str) -> Access | None:
        """How ``role`` holds ``item``'s privileges (``item_access``), or None."""
        key = ((item.grantee, item.grantor, item.privileges, item.grantable), role)
        if key not in self._accesses:
            self._accesses[key] = item_access(item, role, self._graph)
        return self._accesses[key]

    def holders(
        self,
        grantee: str,
        grantor: str,
        privileges: tuple[str, ...],
        tenancy: Tenancy,
        database: str,
    ) -> _Holders:
        """Each foreign principal of ``database`` holding an object grant's item, and how.

        Who is foreign depends only on the database's app: worked out once per app, not
        once per database and object.
        """
        key = ((grantee, grantor, privileges, ()), tenancy.app_databases.get(database))
        found = self._holders.get(key)
        if found is None:
            item = self.item(grantee, grantor, privileges)
            found = self._holders[key] = [
                (role, access, _derived(access))
                for role in tenancy.foreign_users(grantee, database)
                if (access := self.access(item, role)) is not None
            ]
        return found


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
    frameworks = (NIST_LEAST_PRIVILEGE,)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        for database, app, db, public in _public_holds(tenancy, "CONNECT"):
            yield Verdict(
                resource=f"database/{database}",
                principal="PUBLIC",
                app=app,
                message=f"PUBLIC can connect to database {database!r} of app {app!r}: "
                "every login role on the server can",
                evidence=_public_database_evidence(tenancy, db, public, "CONNECT"),
                remediation=_script(
                    _keep_access(tenancy, db, "CONNECT"),
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


def _public_database_evidence(
    tenancy: Tenancy, db: Database, item: AclItem, privilege: str
) -> dict[str, object]:
    # Every foreign login is exposed, but those granted the privilege themselves.
    granted = set(tenancy.reaching(db, (privilege,), owner=False))
    exposed = (role for role in tenancy.foreign_logins(db.name) if role not in granted)
    total = tenancy.count_foreign_logins(db.name) - sum(
        1 for role in granted if tenancy.roles[role].login
    )
    evidence: dict[str, object] = {
        "database": db.name,
        "acl_item": acl_text(item),
        "datacl": [acl_text(i) for i in db.acl],
        "acl_is_default": db.acl_is_default,
        "exposed_roles": _listed(exposed, total),
        "verify": _verify_db(None, db.name, privilege),
    }
    if db.acl_is_default:
        evidence["note"] = (
            "datacl is NULL: PostgreSQL's built-in default gives PUBLIC CONNECT and TEMPORARY"
        )
    return evidence


def _keep_access(tenancy: Tenancy, db: Database, privilege: str) -> list[str]:
    """GRANTs for the roles that need ``privilege`` and hold it only through PUBLIC."""
    app = tenancy.app_databases[db.name]
    needed = [
        *tenancy.app_roles(app),
        *(r for r in tenancy.context.server.platform_roles if r in tenancy.roles),
        tenancy.pg.connected_as,
    ]
    if tenancy.context.admin_role in tenancy.roles:
        needed.append(tenancy.context.admin_role)
    lines: list[str] = []
    for role in dict.fromkeys(needed):
        # Only what counts at login: a membership without INHERIT would not keep it in.
        if holds_at_login(db.acl, db.owner, role, tenancy.graph, privilege):
            continue
        if not lines:
            lines.append(sql_comment("first keep access for the roles that need it"))
        lines.append(
            f"GRANT {privilege} ON DATABASE {quote_ident(db.name)} TO {quote_ident(role)};"
        )
    return lines


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
    frameworks = (NIST_LEAST_PRIVILEGE,)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        for database, app in sorted(tenancy.app_databases.items()):
            db = tenancy.databases[database]
            target = quote_ident(database)
            datacl = [acl_text(i) for i in db.acl]  # once, not once per foreign role
            for role in tenancy.reaching(db, ("CONNECT",)):
                exposure = _Exposure(f"database/{database}", f"role/{role}", app, database)
                for access in _database_accesses(tenancy, db, role, ("CONNECT",)):
                    exposure.add(access, _revoke_database_item(tenancy, db, access), target)
                if not exposure.held:
                    continue
                accesses = exposure.accesses
                how = " and ".join(dict.fromkeys(_how(a, db.owner) for a in accesses))
                if any(a.usable_at_login for a in accesses):
                    message = f"can connect to database {database!r} of app {app!r} {how}"
                else:
                    message = (
                        f"holds CONNECT on database {database!r} of app {app!r} {how}, "
                        "without INHERIT: not usable to log in today, one INHERIT option away"
                    )
                yield Verdict(
                    resource=exposure.resource,
                    principal=exposure.principal,
                    app=app,
                    message=f"{_who(tenancy, role)} {message}",
                    evidence={
                        "database": database,
                        "database_app": app,
                        "principal_app": tenancy.role_apps.get(role),
                        "login": tenancy.roles[role].login,
                        "access": exposure.evidence(),
                        "datacl": list(datacl),
                        "verify": _verify_db(role, database, "CONNECT"),
                    },
                    remediation=_script(_fix_lines(tenancy, database, exposure)),
                )


def _how(access: Access, owner: str) -> str:
    if access.grantee == owner:
        if access.role == owner:
            return "as the database's owner"
        return f"through membership in its owner {owner!r}"
    if access.via == "grant":
        return "through a grant to itself"
    return f"through membership in {access.grantee!r}"


def _database_accesses(
    tenancy: Tenancy, db: Database, role: str, privileges: Sequence[str]
) -> list[Access]:
    """``role``'s non-PUBLIC ways to ``privileges`` on ``db``, ownership included.

    The owner holds every privilege however the ACL reads (it can re-grant itself),
    so an owner reached without an ACL item of its own is access too.
    """
    found = acl_accesses(db.acl, role, tenancy.graph, privileges, include_public=False)
    if not any(a.grantee == db.owner for a in found):
        owned = ownership_access(role, db.owner, tenancy.graph)
        if owned is not None:
            found.append(owned)
    return found


def _revoke_database_item(tenancy: Tenancy, db: Database, access: Access) -> list[str]:
    target = quote_ident(db.name)
    if access.grantee == db.owner:
        new_owner = tenancy.context.admin_role or _new_owner(tenancy, db.name)
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


class PublicCreateInSchema(Rule):
    """PUBLIC can create objects in a schema of an app database.

    CREATE on a schema lets any role that can connect plant tables, views and —
    above all — functions and operators that shadow the ones the app calls through
    its search_path (CVE-2018-1058). PostgreSQL 15 stopped granting it on ``public``
    for new databases, but a database created before 15, or from a template that was,
    keeps the old ACL; only CREATE is checked, USAGE for PUBLIC is harmless. CREATE
    on the database itself (new schemas) for PUBLIC is reported here too.

    Violation: An app database schema whose ACL gives CREATE to PUBLIC, or an app
    database whose ACL gives CREATE to PUBLIC.

    Fix: In that database, REVOKE CREATE ON SCHEMA <schema> FROM PUBLIC (as the
    schema owner or the grantor), and GRANT CREATE only to the app's own migration
    role.
    """

    id = "PGW-ISO-003"
    severity = "medium"
    frameworks = (NIST_LEAST_PRIVILEGE, "CVE-2018-1058")
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        version = tenancy.version_num
        for database, app, detail in inspected(tenancy, self.id):
            db = tenancy.databases[database]
            public_db = next((i for i in db.acl if i.is_public and "CREATE" in i.privileges), None)
            if public_db is not None:
                yield Verdict(
                    resource=f"database/{database}",
                    principal="PUBLIC",
                    app=app,
                    message=f"PUBLIC can create schemas in database {database!r} of app {app!r}",
                    evidence={
                        "database": database,
                        "acl_item": acl_text(public_db),
                        "datacl": [acl_text(i) for i in db.acl],
                        "verify": _verify_db(None, database, "CREATE"),
                    },
                    remediation=_script(
                        revoke_privileges(
                            ["CREATE"],
                            f"DATABASE {quote_ident(database)}",
                            None,
                            public_db.grantor,
                            db.owner,
                        )
                    ),
                )
            if isinstance(detail, Verdict):
                yield detail
                continue
            for schema in detail.schemas:
                item = next(
                    (i for i in schema.acl if i.is_public and "CREATE" in i.privileges), None
                )
                if item is None:
                    continue
                evidence: dict[str, object] = {
                    "database": database,
                    "schema": schema.name,
                    "owner": schema.owner,
                    "acl_item": acl_text(item),
                    "nspacl": [acl_text(i) for i in schema.acl],
                    "verify": f"SELECT has_schema_privilege('public', "
                    f"{quote_literal(schema.name)}, 'CREATE');  -- in {database!r}",
                }
                if schema.name == "public":
                    evidence["note"] = _public_schema_note(version, schema.owner)
                keep = [
                    sql_comment(
                        f"if {role!r} creates objects here: GRANT CREATE ON SCHEMA "
                        f"{quote_ident(schema.name)} TO {quote_ident(role)};"
                    )
                    for role in tenancy.app_roles(app)
                    if not acl_accesses(
                        schema.acl, role, tenancy.graph, ("CREATE",), include_public=False
                    )
                ]
                yield Verdict(
                    resource=f"schema/{database}.{schema.name}",
                    principal="PUBLIC",
                    app=app,
                    message=f"PUBLIC can create objects in schema {schema.name!r} of database "
                    f"{database!r} (app {app!r})",
                    evidence=evidence,
                    remediation=_script(
                        [in_database(database)],
                        revoke_privileges(
                            ["CREATE"],
                            f"SCHEMA {quote_ident(schema.name)}",
                            None,
                            item.grantor,
                            schema.owner,
                        ),
                        keep,
                    ),
                )


def _public_schema_note(version: int, owner: str) -> str:
    if version < 150000:
        return "before PostgreSQL 15 every new database's public schema gives CREATE to PUBLIC"
    if owner != "pg_database_owner":
        return (
            f"the schema is owned by {owner!r}, not pg_database_owner: it predates "
            "PostgreSQL 15 (an upgraded database, or one copied from an old template) and "
            "kept the old ACL"
        )
    return (
        "PostgreSQL 15+ creates public with USAGE only for PUBLIC: CREATE was granted "
        "explicitly (or the template database had it)"
    )


class ForeignObjectPrivileges(Rule):
    """A role of one app holds privileges on objects in another app's database.

    Object privileges are the inner wall: even with CONNECT revoked they show who was
    meant to read or change another tenant's data, and one GRANT CONNECT (or a
    PUBLIC CONNECT left in place) makes them live. Checked per database: privileges
    on tables, views, sequences and routines, on schemas, on the database itself
    (CREATE, TEMPORARY), and ownership of its objects or of the database. A grant to
    the role itself is reported per object (``table/DB.SCHEMA.NAME``,
    ``function/DB.SCHEMA.NAME(ARGS)``, ``schema/DB.NAME``), as is a privilege granted to
    PUBLIC on a relation (once, as PUBLIC; PUBLIC EXECUTE on routines is the default).
    What a role holds through membership in another role (inherit or SET ROLE), and
    what it owns, is reported once per database (``database/DB``): one membership can
    hand over thousands of objects. Membership in pg_read_all_data and the like is
    PGW-ROLE-002's.

    Violation: A role of app A (or a login of no app) holds any privilege on, or owns,
    an object in a database of app B, directly or through a role it belongs to; or
    PUBLIC holds a privilege on a relation there.

    Fix: REVOKE a direct grant (as its grantor); hand owned objects to the app
    (REASSIGN OWNED, ALTER ... OWNER TO); end access through a group with REVOKE
    <group> FROM <member> where the chain leaves the foreign roles (the group's own
    grants, if it is another app's role, are reported and fixed on their own).
    """

    id = "PGW-ISO-004"
    severity = "high"
    frameworks = (CIS_PG_DML, NIST_LEAST_PRIVILEGE)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        accesses = _ItemAccesses(tenancy.graph)
        for database, app, detail in inspected(tenancy, self.id):
            exposures: dict[tuple[str, str], _Exposure] = {}
            _database_level(tenancy, tenancy.databases[database], app, exposures)
            if isinstance(detail, Verdict):
                yield detail
            else:
                _schema_privileges(tenancy, detail, app, exposures, accesses)
                _object_privileges(tenancy, detail, app, exposures, accesses)
                _object_ownership(tenancy, detail, app, exposures)
            for key in sorted(exposures):
                yield _object_verdict(tenancy, exposures[key])


def _database_level(
    tenancy: Tenancy, db: Database, app: str, exposures: dict[tuple[str, str], _Exposure]
) -> None:
    """Ownership of the database, and CREATE or TEMPORARY on it, for foreign roles."""
    target = f"DATABASE {quote_ident(db.name)}"
    resource = f"database/{db.name}"
    for role in tenancy.reaching(db, ("CREATE", "TEMPORARY")):
        owned = ownership_access(role, db.owner, tenancy.graph)
        if owned is not None:
            new_owner = tenancy.context.admin_role or _new_owner(tenancy, db.name)
            _exposure(exposures, resource, f"role/{role}", app, db.name).add(
                owned,
                [f"ALTER DATABASE {quote_ident(db.name)} OWNER TO {quote_ident(new_owner)};"],
                target,
            )
        for access in acl_accesses(
            db.acl, role, tenancy.graph, ("CREATE", "TEMPORARY"), include_public=False
        ):
            if access.grantee == db.owner or access.acl_item is None:
                continue  # the owner's own ACL item: reported as ownership above
            revoke = revoke_privileges(
                access.acl_item.privileges, target, access.grantee, access.grantor, db.owner
            )
            _exposure(exposures, resource, f"role/{role}", app, db.name).add(access, revoke, target)


def _schema_privileges(
    tenancy: Tenancy,
    detail: DatabaseDetail,
    app: str,
    exposures: dict[tuple[str, str], _Exposure],
    accesses: _ItemAccesses,
) -> None:
    database = detail.name
    for schema in detail.schemas:
        target = f"SCHEMA {quote_ident(schema.name)}"
        for item in schema.acl:
            # pg_database_owner stands for the database owner: that is ownership, above.
            if item.grantee is None or item.grantee == "pg_database_owner":
                continue
            users = tenancy.foreign_users(item.grantee, database)
            if not users:
                continue
            if item.grantee == schema.owner:
                revoke = [
                    sql_comment(f"{schema.owner!r} owns the schema: hand it to the app"),
                    f"ALTER SCHEMA {quote_ident(schema.name)} OWNER TO "
                    f"{quote_ident(_new_owner(tenancy, database))};",
                ]
            else:
                revoke = revoke_privileges(
                    item.privileges, target, item.grantee, item.grantor, schema.owner
                )
            for role in users:
                access = accesses.access(item, role)
                if access is None or not access.privileges:
                    continue
                resource = (
                    f"database/{database}"
                    if _derived(access)
                    else f"schema/{database}.{schema.name}"
                )
                _exposure(exposures, resource, f"role/{role}", app, database).add(
                    access, revoke, target
                )


def _object_privileges(
    tenancy: Tenancy,
    detail: DatabaseDetail,
    app: str,
    exposures: dict[tuple[str, str], _Exposure],
    accesses: _ItemAccesses,
) -> None:
    database = detail.name
    # Most grants go to roles no foreign principal can use (the app's own): asked once
    # per grantee, they are passed over before anything is built for them.
    users_of: dict[str, list[str]] = {}
    # What a role holds through membership goes to its one finding for the database.
    through_membership: dict[str, _Exposure] = {}
    for grant in detail.object_grants:
        grantee = grant.grantee
        if grantee is not None:
            if grantee not in users_of:
                users_of[grantee] = tenancy.foreign_users(grantee, database)
            if not users_of[grantee]:
                continue
        routine = grant.arguments is not None
        privileges = tuple(grant.privileges)
        if grantee is None and routine:
            # PUBLIC EXECUTE is every routine's default; only other privileges count.
            privileges = tuple(p for p in privileges if p != "EXECUTE")
        if not privileges:
            continue
        qualified = f"{quote_ident(grant.schema_name)}.{quote_ident(grant.name)}"
        if routine:
            target = f"ROUTINE {qualified}({grant.arguments})"
        else:
            target = f"{'SEQUENCE' if grant.kind == 'sequence' else 'TABLE'} {qualified}"
        grantor = grant.grantor or grant.owner
        if grantee is None:
            item = accesses.item(None, grantor, privileges)
            exposure = _exposure(
                exposures, _object_resource(grant, database), "PUBLIC", app, database
            )
            exposure.add(
                Access("PUBLIC", privileges, "public", None, grantor, (), item),
                revoke_privileges(privileges, target, None, grantor, grant.owner),
                target,
            )
            exposure.facts.update(object_type=grant.kind, owner=grant.owner)
            continue
        # Many objects carry the same grant (a group given SELECT on every table): who
        # holds it, and how, is worked out once per grant and app, not once per object.
        for role, access, derived in accesses.holders(
            grantee, grantor, privileges, tenancy, database
        ):
            if derived:
                # Through membership: one finding per database, ended by one REVOKE of
                # the membership (``_fix_lines``), never by revoking this grant.
                if role not in through_membership:
                    through_membership[role] = _exposure(
                        exposures, f"database/{database}", f"role/{role}", app, database
                    )
                through_membership[role].add(access, [], target)
                continue
            exposure = _exposure(
                exposures, _object_resource(grant, database), f"role/{role}", app, database
            )
            exposure.add(
                access,
                revoke_privileges(privileges, target, grantee, grantor, grant.owner),
                target,
            )
            exposure.facts.update(object_type=grant.kind, owner=grant.owner)


def _object_resource(grant: ObjectGrant, database: str) -> str:
    """The resource a grant on one object is reported on."""
    if grant.arguments is not None:
        return f"function/{database}.{grant.schema_name}.{grant.name}({grant.arguments})"
    return f"table/{database}.{grant.schema_name}.{grant.name}"


def _object_ownership(
    tenancy: Tenancy, detail: DatabaseDetail, app: str, exposures: dict[tuple[str, str], _Exposure]
) -> None:
    """Relations a foreign role owns, or can act as the owner of, summed per owner."""
    database = detail.name
    owners: dict[str, dict[str, int]] = {}
    for owned in detail.ownership:
        counts = owners.setdefault(owned.role, {})
        counts[owned.kind] = counts.get(owned.kind, 0) + owned.count
    for owner, counts in sorted(owners.items()):
        described = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in counts.items())
        target = f"{described} in {quote_ident(database)}"
        for role in tenancy.foreign_users(owner, database):
            access = ownership_access(role, owner, tenancy.graph)
            if access is None:
                continue
            exposure = _exposure(exposures, f"database/{database}", f"role/{role}", app, database)
            exposure.add(access, _reassign(tenancy, database, owner), target)
            owns = exposure.facts.setdefault("owns", {})
            assert isinstance(owns, dict)
            owns[owner] = counts
            exposure.facts["list_owned"] = (
                "SELECT relname, relkind FROM pg_class WHERE relowner = "
                f"{quote_literal(quote_ident(owner))}::regrole;"
            )


def _reassign(tenancy: Tenancy, database: str, owner: str) -> list[str]:
    new_owner = _new_owner(tenancy, database)
    owned_databases = tenancy.owned_databases(owner)
    if not owned_databases:
        return [f"REASSIGN OWNED BY {quote_ident(owner)} TO {quote_ident(new_owner)};"]
    # REASSIGN OWNED would also hand over the databases the role owns: not wanted here.
    return [
        sql_comment(
            f"{owner!r} also owns database(s) {', '.join(map(repr, owned_databases))}, which "
            "REASSIGN OWNED would hand over too: ALTER ... OWNER TO "
            f"{quote_ident(new_owner)} each object of {owner!r} in this database instead"
        )
    ]


def _database_phrases(exposure: _Exposure) -> list[str]:
    """What a principal holds in a database, one phrase per way, for the message."""
    phrases: list[str] = []
    for held in exposure.held:
        if held.derived:
            continue
        access = held.access
        if access.via == "owner":
            whole = held.target.startswith("DATABASE")
            phrases.append(
                "owns the database" if whole else f"owns {held.target.rsplit(' in ', 1)[0]}"
            )
        else:
            phrases.append(f"holds {', '.join(access.privileges)} on the database")
    for holder, group in exposure.through.items():
        owned = [h.target for h in group if h.access.via == "owner"]
        granted = [h for h in group if h.access.via != "owner"]
        if owned:
            what = (
                "the database"
                if owned[0].startswith("DATABASE")
                else _summary([t.rsplit(" in ", 1)[0] for t in owned])
            )
            phrases.append(f"can act as {holder!r}, the owner of {what}")
        if granted:
            privileges = sort_privileges(p for h in granted for p in h.access.privileges)
            phrases.append(
                f"holds {', '.join(privileges)} on {_summary([h.target for h in granted])} "
                f"through {holder!r}"
            )
    return list(dict.fromkeys(phrases))


def _object_verdict(tenancy: Tenancy, exposure: _Exposure) -> Verdict:
    accesses = exposure.accesses
    database = exposure.database
    db = tenancy.databases[database]
    kind, name = exposure.resource.split("/", 1)
    principal = exposure.principal
    evidence: dict[str, object] = {
        "database": database,
        "database_app": exposure.app,
        "object_type": exposure.facts.get("object_type", kind),
        "access": exposure.evidence(MAX_LISTED),
        **{k: v for k, v in exposure.facts.items() if k != "object_type"},
    }
    if len(exposure.held) > MAX_LISTED:
        evidence["access_total"] = len(exposure.held)
    if principal == "PUBLIC":
        subject = "PUBLIC"
        connecting = tenancy.foreign_connecting(db)
        evidence["exposed_roles"] = _listed(connecting, len(connecting))
    else:
        role = principal.removeprefix("role/")
        subject = _who(tenancy, role)
        evidence["principal_app"] = tenancy.role_apps.get(role)
        evidence["can_connect"] = can_connect(db, role, tenancy.graph)
    if kind == "database":
        message = f"in database {name!r} of app {exposure.app!r}, {subject} " + "; ".join(
            _database_phrases(exposure)
        )
    else:
        privileges = sort_privileges(p for a in accesses for p in a.privileges)
        message = (
            f"{subject} holds {', '.join(privileges)} on {kind} {name!r} of app {exposure.app!r}"
        )
    return Verdict(
        resource=exposure.resource,
        principal=principal,
        app=exposure.app,
        message=message,
        evidence=evidence,
        remediation=_script(
            [in_database(database)],
            _fix_lines(tenancy, database, exposure, cut_memberships=True),
        ),
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
    frameworks = (NIST_LEAST_PRIVILEGE,)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        for database, app, db, item in _public_holds(tenancy, "TEMPORARY"):
            connect = db.public_connect
            keep = [
                sql_comment(
                    f"if {role!r} uses temporary tables: GRANT TEMPORARY ON DATABASE "
                    f"{quote_ident(database)} TO {quote_ident(role)};"
                )
                for role in tenancy.app_roles(app)
            ]
            yield Verdict(
                resource=f"database/{database}",
                principal="PUBLIC",
                app=app,
                message=f"PUBLIC may create temporary objects in database {database!r} of app "
                f"{app!r}" + ("" if connect else " (once connected: PUBLIC itself has no CONNECT)"),
                evidence=_public_database_evidence(tenancy, db, item, "TEMPORARY"),
                remediation=_script(
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


class LeakyDefaultPrivileges(Rule):
    """Default privileges in an app database grant to PUBLIC or to another app's role.

    ``ALTER DEFAULT PRIVILEGES`` decides the ACL of every object a role creates from
    then on. A default that grants to PUBLIC, or to a role of another app (directly
    or through a group that role belongs to), leaks each new table the moment the app
    creates it: the exposure grows with every migration, with nobody granting anything.
    PUBLIC EXECUTE on functions and USAGE on types are PostgreSQL's built-in defaults
    and are not reported.

    Violation: A pg_default_acl entry in an app database (for the whole database or
    one schema) whose ACL grants to PUBLIC or to a role of another app.

    Fix: In that database, ALTER DEFAULT PRIVILEGES FOR ROLE <creator> [IN SCHEMA <s>]
    REVOKE <privileges> ON <TABLES|...> FROM <grantee> (as the creator role or a
    member of it); objects created meanwhile keep the grant: PGW-ISO-004 lists them.
    """

    id = "PGW-ISO-006"
    severity = "medium"
    frameworks = (CIS_PG_DML, NIST_LEAST_PRIVILEGE)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        accesses = _ItemAccesses(tenancy.graph)
        for database, app, detail in inspected(tenancy, self.id):
            if isinstance(detail, Verdict):
                yield detail
                continue
            exposures: dict[tuple[str, str], _Exposure] = {}
            for default in detail.default_privileges:
                _default_entry(tenancy, database, app, default, exposures, accesses)
            for key in sorted(exposures):
                yield _default_verdict(tenancy, exposures[key])


def _default_entry(
    tenancy: Tenancy,
    database: str,
    app: str,
    default: DefaultPrivilege,
    exposures: dict[tuple[str, str], _Exposure],
    accesses: _ItemAccesses,
) -> None:
    keyword = _DEFAULT_ACL_KEYWORDS[default.object_type]
    creator = quote_ident(default.role)
    if default.schema_name is not None:
        scope = f" IN SCHEMA {quote_ident(default.schema_name)}"
        resource = f"schema/{database}.{default.schema_name}"
        target = f"future {keyword} of {creator} in schema {quote_ident(default.schema_name)}"
    else:
        scope = ""
        resource = f"database/{database}"
        target = f"future {keyword} of {creator}"
    fact: dict[str, object] = {
        "creator": default.role,
        "schema": default.schema_name,
        "object_type": default.object_type,
        "defaclacl": [acl_text(i) for i in default.acl],
    }
    for item in default.acl:
        if item.grantee == default.role:
            continue  # the creator's own privileges on what it creates
        privileges = tuple(item.privileges)
        if item.grantee is None:
            built_in = BUILT_IN_PUBLIC.get(default.object_type, set())
            privileges = tuple(p for p in privileges if p not in built_in)
        if not privileges:
            continue
        users = [] if item.grantee is None else tenancy.foreign_users(item.grantee, database)
        if item.grantee is not None and not users:
            continue  # no foreign principal can use the grantee
        grantee = "PUBLIC" if item.grantee is None else quote_ident(item.grantee)
        revoke = [
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {creator}{scope} "
            f"REVOKE {', '.join(sort_privileges(privileges))} ON {keyword} FROM {grantee};"
        ]
        shown = item.model_copy(update={"privileges": privileges})
        if item.grantee is None:
            exposure = _exposure(exposures, resource, "PUBLIC", app, database)
            exposure.add(
                Access("PUBLIC", privileges, "public", None, item.grantor, (), shown),
                revoke,
                target,
            )
            _append_fact(exposure, fact)
            continue
        for role in users:
            access = accesses.access(shown, role)
            if access is None:
                continue
            exposure = _exposure(exposures, resource, f"role/{role}", app, database)
            exposure.add(access, revoke, target)
            _append_fact(exposure, fact)


def _append_fact(exposure: _Exposure, fact: dict[str, object]) -> None:
    entries = exposure.facts.setdefault("default_acl_entries", [])
    assert isinstance(entries, list)
    if fact not in entries:
        entries.append(fact)


def _default_verdict(tenancy: Tenancy, exposure: _Exposure) -> Verdict:
    principal = exposure.principal
    subject = "PUBLIC" if principal == "PUBLIC" else _who(tenancy, principal.removeprefix("role/"))
    entries = exposure.facts.get("default_acl_entries", [])
    assert isinstance(entries, list)
    privileges = sort_privileges(p for a in exposure.accesses for p in a.privileges)
    creators = sorted({str(e["creator"]) for e in entries if isinstance(e, dict)})
    kinds = sorted({str(e["object_type"]) for e in entries if isinstance(e, dict)})
    where = exposure.resource.split("/", 1)[1]
    return Verdict(
        resource=exposure.resource,
        principal=principal,
        app=exposure.app,
        message=f"default privileges in {where!r} (app {exposure.app!r}) give {subject} "
        f"{', '.join(privileges)} on every new {' and '.join(kinds)} created by "
        f"{', '.join(map(repr, creators))}",
        evidence={
            "database": exposure.database,
            "database_app": exposure.app,
            "default_acl_entries": entries,
            "access": exposure.evidence(),
            "note": "objects already created under these defaults carry the grant: see PGW-ISO-004",
        },
        remediation=_script(
            [in_database(exposure.database)], _fix_lines(tenancy, exposure.database, exposure)
        ),
    )


RULES = [
    PublicConnect,
    CrossAppConnect,
    PublicCreateInSchema,
    ForeignObjectPrivileges,
    PublicTemporary,
    LeakyDefaultPrivileges,
]
