"""PGW-ISO-004: other apps' privileges on, and ownership of, what an app database holds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from pgwarden.access.grants import Access, acl_accesses, ownership_access
from pgwarden.access.privileges import sort_privileges
from pgwarden.access.remediation import (
    acl_grantee,
    column_target,
    large_objects_named,
    object_target,
    revoke_large_objects,
    revoke_privileges,
    sql_comment,
)
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.evidence import MAX_LISTED, put_capped, summarize_phrases, summarize_targets
from pgwarden.model.identifiers import regrole
from pgwarden.model.snapshot import (
    AclItem,
    Database,
    DatabaseDetail,
    ObjectGrant,
    ServerSnapshot,
)
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict, quote_ident
from pgwarden.rules.control_sets import DML_PRIVILEGES, LEAST_PRIVILEGE
from pgwarden.rules.database_contents import unread_phrase, unread_sections, unread_verdict
from pgwarden.rules.isolation._evidence import (
    LOGINS_QUERY,
    Exposure,
    Handover,
    Holders,
    ItemAccesses,
    database_passed,
    describe_role,
    exposure_for,
    fix_lines,
    handover_verdict,
    held_query,
    inspected,
    remediation_script,
    successor_owner,
)
from pgwarden.rules.server_settings import alter_system

# The setting that turns off every large object's privilege checks (PostgreSQL's
# compatibility with releases before 9.0).
LO_COMPAT = "lo_compat_privileges"
# Accesses a finding spells out in full; beyond them, the first is, and the objects of
# all are named in held_on.
MAX_ACCESS_SHOWN = 3


class ForeignObjectPrivileges(Rule):
    """A role of one app holds privileges on objects in another app's database.

    Object privileges are the inner wall: even with CONNECT revoked they show who was
    meant to read or change another tenant's data, and one GRANT CONNECT (or a
    PUBLIC CONNECT left in place) makes them live. Checked per database: privileges
    on tables, views, sequences and routines, on columns (``GRANT SELECT (c) ON t``:
    reported on the table, the columns named), on large objects, on schemas, on the
    database itself (CREATE, TEMPORARY), and ownership of its objects (large objects
    included) or of the database. A grant to the role itself is reported per object
    (``table/DB.SCHEMA.NAME``, ``function/DB.SCHEMA.NAME(ARGS)``, ``schema/DB.NAME``),
    as is a privilege granted to PUBLIC on a relation (once, as PUBLIC; PUBLIC EXECUTE
    on routines is the default). What a role holds through membership in another role
    (inherit or SET ROLE), what it owns, and what it (or PUBLIC) holds on large
    objects, is reported once per database (``database/DB``): one membership can hand
    over thousands of objects, and a database may hold millions of large objects made
    alike (the finding lists the first 20 OIDs, counts them all and gives the query
    that lists them). With ``lo_compat_privileges`` on, the server checks no large
    object's privileges: every role that may connect reads and rewrites them all, which
    is reported as PUBLIC's SELECT and UPDATE in each database holding large objects.
    Relations, routines, column privileges or large objects the auditor could not read
    (a catalog refused) are an error for that database; the rest of it is judged.
    Membership in pg_read_all_data and the like is PGW-ROLE-002's.

    Violation: A role of app A (or a login of no app) holds any privilege on, or owns,
    an object in a database of app B, directly or through a role it belongs to; or
    PUBLIC holds a privilege on a relation or a large object there.

    Fix: REVOKE a direct grant (as its grantor; for more large objects than the
    finding lists, a DO block revokes from each); hand owned objects to the app
    (REASSIGN OWNED, ALTER ... OWNER TO); turn lo_compat_privileges off; end access
    through a group with REVOKE <group> FROM <member> where the chain leaves the
    foreign roles (the group's own grants, if it is another app's role, are reported
    and fixed on their own).
    """

    id = "PGW-ISO-004"
    severity = "high"
    controls = (*DML_PRIVILEGES, *LEAST_PRIVILEGE)
    requires = (Section.TENANCY_MAP, Section.POSTGRES)
    # Whether a role that holds only what one group hands over, through its own
    # membership, is reported by the short way (``_through_one_group``). Tests turn it
    # off, to check that both ways give the same findings.
    shortcut: ClassVar[bool] = True

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        accesses = ItemAccesses(tenancy.graph)
        compat = tenancy.pg.setting(LO_COMPAT)
        lo_compat = compat is not None and compat.value == "on"
        for database, app, detail in inspected(tenancy, self.id):
            exposures: dict[tuple[str, str], Exposure] = {}
            _database_level(tenancy, tenancy.databases[database], app, exposures)
            if isinstance(detail, Verdict):
                yield detail
            else:
                # What a group holds, gathered once and handed to each foreign member:
                # one finding per member and database, ended by one REVOKE of the
                # membership (``fix_lines``).
                handovers: dict[str, tuple[Handover, list[str]]] = {}
                _schema_privileges(tenancy, detail, app, exposures, accesses, handovers)
                _object_privileges(tenancy, detail, app, exposures, accesses, handovers)
                _large_object_privileges(tenancy, detail, app, exposures, accesses, handovers)
                if lo_compat:
                    _large_objects_unchecked(detail, app, exposures)
                for handover, members in handovers.values():
                    for role in members:
                        exposure_for(
                            exposures, f"database/{database}", f"role/{role}", app, database
                        ).hand_over(handover)
                _object_ownership(tenancy, detail, app, exposures)
                lost = unread_sections(detail, _SECTIONS)
                if lost:
                    yield _unread(tenancy, database, app, lost)
                elif context.include_passed and not exposures:
                    yield database_passed(
                        tenancy.databases[database],
                        app,
                        f"no role of another app holds a privilege on, or owns, anything in "
                        f"database {database!r} of app {app!r}",
                        schemas_checked=len(detail.schemas),
                        object_grants_checked=len(detail.object_grants),
                        owners=sorted({o.role for o in detail.ownership}),
                        **(
                            {"large_objects_checked": sum(lo.count for lo in detail.large_objects)}
                            if detail.large_objects
                            else {}
                        ),
                    )
            for key in sorted(exposures):
                exposure = exposures[key]
                verdict = _through_one_group(tenancy, exposure) if self.shortcut else None
                yield verdict or _object_verdict(tenancy, exposure)


# The sections of a database that can be lost on their own which this rule judges.
_SECTIONS = ("relations", "routines", "column_grants", "large_objects")


def _unread(tenancy: Tenancy, database: str, app: str, lost: dict[str, str]) -> Verdict:
    """An error for the sections of ``database`` that could not be read (``lost``): the
    rest of the database was judged, these were not (never a silent pass)."""
    return unread_verdict(
        tenancy,
        database,
        app,
        f"in database {database!r} of app {app!r}, {unread_phrase(lost)} could not be read: "
        f"{ForeignObjectPrivileges.id} judged the rest of the database, not these",
        lost,
    )


def _database_level(
    tenancy: Tenancy, db: Database, app: str, exposures: dict[tuple[str, str], Exposure]
) -> None:
    """Ownership of the database, and CREATE or TEMPORARY on it, for foreign roles."""
    target = f"DATABASE {quote_ident(db.name)}"
    resource = f"database/{db.name}"
    for role in tenancy.reaching(db, ("CREATE", "TEMPORARY")):
        owned = ownership_access(role, db.owner, tenancy.graph)
        if owned is not None:
            new_owner = tenancy.context.admin_role or successor_owner(tenancy, db.name)
            exposure_for(exposures, resource, f"role/{role}", app, db.name).add(
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
            exposure_for(exposures, resource, f"role/{role}", app, db.name).add(
                access, revoke, target
            )


def _schema_privileges(
    tenancy: Tenancy,
    detail: DatabaseDetail,
    app: str,
    exposures: dict[tuple[str, str], Exposure],
    accesses: ItemAccesses,
    handovers: dict[str, tuple[Handover, list[str]]],
) -> None:
    database = detail.name
    for schema in detail.schemas:
        target = f"SCHEMA {quote_ident(schema.name)}"
        for item in schema.acl:
            # pg_database_owner stands for the database owner: that is ownership, above.
            grantee = item.grantee
            if grantee is None or grantee == "pg_database_owner":
                continue
            if not _hand_to_members(tenancy, database, handovers, accesses, grantee, item, target):
                continue
            # The grantee itself is foreign: its own grant, on the schema.
            if grantee == schema.owner:
                revoke = [
                    sql_comment(f"{schema.owner!r} owns the schema: hand it to the app"),
                    f"ALTER SCHEMA {quote_ident(schema.name)} OWNER TO "
                    f"{quote_ident(successor_owner(tenancy, database))};",
                ]
            else:
                revoke = revoke_privileges(
                    item.privileges, target, grantee, item.grantor, schema.owner
                )
            access = accesses.access(item, grantee)
            if access is not None:
                exposure_for(
                    exposures, f"schema/{database}.{schema.name}", f"role/{grantee}", app, database
                ).add(access, revoke, target)


def _hand_to_members(
    tenancy: Tenancy,
    database: str,
    handovers: dict[str, tuple[Handover, list[str]]],
    accesses: ItemAccesses,
    grantee: str,
    item: AclItem,
    target: str,
) -> bool:
    """Hand ``item`` on ``target`` over to the foreign principals that hold it through
    membership in ``grantee``; whether ``grantee`` is itself a foreign principal."""
    users = tenancy.foreign_users(grantee, database)
    if not users:
        return False
    members = [role for role in users if role != grantee]
    if members:
        _hand_over(handovers, accesses, grantee, members, item, target)
    return grantee in users


def _hand_over(
    handovers: dict[str, tuple[Handover, list[str]]],
    accesses: ItemAccesses,
    grantee: str,
    members: list[str],
    item: AclItem,
    target: str,
) -> Handover:
    """Record that ``grantee``, and so each of its foreign ``members``, holds ``item``
    on ``target``: once for the group, whatever the number of members; the group's
    ``Handover``."""
    handed = handovers.get(grantee)
    if handed is None:
        # Who reaches a grantee through membership does not depend on the grant.
        handed = handovers[grantee] = (Handover(grantee, accesses), members)
    handed[0].add(item, target)
    return handed[0]


def _object_privileges(
    tenancy: Tenancy,
    detail: DatabaseDetail,
    app: str,
    exposures: dict[tuple[str, str], Exposure],
    accesses: ItemAccesses,
    handovers: dict[str, tuple[Handover, list[str]]],
) -> None:
    database = detail.name
    # Most grants go to roles no foreign principal can use (the app's own): asked once
    # per grantee, they are passed over before anything is built for them.
    users_of: dict[str, list[str]] = {}
    # A wide database repeats a few grants over thousands of objects: each distinct
    # grant's holders are looked up once here, and where only members of the grantee
    # hold it, the list its objects are handed over on (``Handover.items``).
    holders_of: dict[tuple[str, str, tuple[str, ...]], Holders] = {}
    handed_on: dict[
        tuple[str, str, tuple[str, ...]], tuple[list[tuple[AclItem, str]], AclItem]
    ] = {}
    # Each schema's name quoted once, not once per object in it.
    schemas: dict[str, str] = {}
    for grant in detail.object_grants:
        grantee = grant.grantee
        if grantee is not None:
            key = (grantee, grant.grantor or grant.owner, grant.privileges)
            handed = handed_on.get(key)
            if handed is not None and grant.column is None:
                # The common case of a wide database: one more object of a grant only
                # members of the grantee hold.
                handed[0].append((handed[1], object_target(grant, schemas)))
                continue
            users = users_of.get(grantee)
            if users is None:
                users = users_of[grantee] = tenancy.foreign_users(grantee, database)
            if not users:
                continue
        routine = grant.arguments is not None
        privileges = grant.privileges
        if grantee is None and routine:
            # PUBLIC EXECUTE is every routine's default; only other privileges count.
            privileges = tuple(p for p in privileges if p != "EXECUTE")
        if not privileges:
            continue
        on = object_target(grant, schemas)
        target, revoked = on, privileges
        if grant.column is not None:
            target, revoked = column_target(grant, privileges)
        grantor = grant.grantor or grant.owner
        if grantee is None:
            item = accesses.item(None, grantor, privileges)
            exposure = exposure_for(
                exposures, _object_resource(grant, database), "PUBLIC", app, database
            )
            exposure.add(
                Access("PUBLIC", privileges, "public", None, grantor, (), item),
                revoke_privileges(revoked, on, None, grantor, grant.owner),
                target,
            )
            exposure.facts.update(object_type=grant.kind, owner=grant.owner)
            if grant.column is not None:
                _note_column(exposure, grant.column)
            continue
        # Many objects carry the same grant (a group given SELECT on every table): who
        # holds it, and how, is worked out once per grant and app, not once per object.
        key = (grantee, grantor, privileges)
        holders = holders_of.get(key)
        if holders is None:
            holders = holders_of[key] = accesses.holders(
                grantee, grantor, privileges, tenancy, database
            )
        for role, access in holders.direct:
            exposure = exposure_for(
                exposures, _object_resource(grant, database), f"role/{role}", app, database
            )
            exposure.add(
                access,
                revoke_privileges(revoked, on, grantee, grantor, grant.owner),
                target,
            )
            exposure.facts.update(object_type=grant.kind, owner=grant.owner)
            if grant.column is not None:
                _note_column(exposure, grant.column)
        if holders.members:
            handover = _hand_over(
                handovers, accesses, grantee, holders.members, holders.item, target
            )
            if not holders.direct:
                handed_on[key] = (handover.items, holders.item)


def _large_object_privileges(
    tenancy: Tenancy,
    detail: DatabaseDetail,
    app: str,
    exposures: dict[tuple[str, str], Exposure],
    accesses: ItemAccesses,
    handovers: dict[str, tuple[Handover, list[str]]],
) -> None:
    """Privileges on the database's large objects held by foreign roles or PUBLIC.

    Reported on the database (``database/DB``), not per object: large objects have no
    names, and a database may hold millions made alike (the snapshot has one entry
    per owner and ACL, with the first OIDs).
    """
    database = detail.name
    resource = f"database/{database}"
    for objects in detail.large_objects:
        target = large_objects_named(objects)
        for item in objects.acl:
            grantee = item.grantee
            revoke = revoke_large_objects(objects, item.privileges, grantee, item.grantor)
            if grantee is None:
                access = Access("PUBLIC", item.privileges, "public", None, item.grantor, (), item)
                exposure = exposure_for(exposures, resource, "PUBLIC", app, database)
                exposure.add(access, revoke, target)
                exposure.note_large_objects(objects, _granted_large_objects(None))
                continue
            if not _hand_to_members(tenancy, database, handovers, accesses, grantee, item, target):
                continue
            held = accesses.access(item, grantee)
            if held is not None:
                exposure = exposure_for(exposures, resource, f"role/{grantee}", app, database)
                exposure.add(held, revoke, target)
                exposure.note_large_objects(objects, _granted_large_objects(grantee))


def _large_objects_unchecked(
    detail: DatabaseDetail, app: str, exposures: dict[tuple[str, str], Exposure]
) -> None:
    """With lo_compat_privileges on, the server checks no large object's privileges:
    every role that may connect reads and rewrites all of them, as PUBLIC would."""
    if not detail.large_objects:
        return
    database = detail.name
    total = sum(objects.count for objects in detail.large_objects)
    exposure = exposure_for(exposures, f"database/{database}", "PUBLIC", app, database)
    fix = [
        sql_comment(
            f"{LO_COMPAT} = on skips every large object's privilege checks, in every "
            "database of the server: turn it off"
        ),
        sql_comment(
            "Azure Database for PostgreSQL flexible server: az postgres flexible-server "
            f"parameter set --name {LO_COMPAT} --value off"
        ),
        sql_comment("self-managed PostgreSQL, as a superuser (one statement each):"),
        alter_system(LO_COMPAT, "off"),
    ]
    everyone = Access("PUBLIC", ("SELECT", "UPDATE"), "public", None)
    exposure.add(everyone, fix, f"LARGE OBJECTS, all {total:,} ({LO_COMPAT} is on)")
    exposure.facts[LO_COMPAT] = "on"
    for objects in detail.large_objects:
        exposure.note_large_objects(
            objects, "SELECT oid, lomowner::regrole FROM pg_largeobject_metadata;"
        )


def _granted_large_objects(grantee: str | None) -> str:
    """A query listing the large objects whose ACL names ``grantee`` (None: PUBLIC)."""
    return (
        "SELECT m.oid, m.lomowner::regrole FROM pg_largeobject_metadata AS m WHERE EXISTS "
        f"(SELECT FROM aclexplode(m.lomacl) AS i WHERE i.grantee = {acl_grantee(grantee)}) "
        "ORDER BY m.oid;"
    )


def _note_column(exposure: Exposure, column: str) -> None:
    """The finding names the columns held by column privileges."""
    if exposure.columns is None:
        exposure.columns = set()
    exposure.columns.add(column)


def _object_resource(grant: ObjectGrant, database: str) -> str:
    """The resource a grant on one object is reported on."""
    if grant.arguments is not None:
        return f"function/{database}.{grant.schema_name}.{grant.name}({grant.arguments})"
    return f"table/{database}.{grant.schema_name}.{grant.name}"


def _object_ownership(
    tenancy: Tenancy, detail: DatabaseDetail, app: str, exposures: dict[tuple[str, str], Exposure]
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
            exposure = exposure_for(
                exposures, f"database/{database}", f"role/{role}", app, database
            )
            exposure.add(access, _reassign(tenancy, database, owner), target)
            owns = exposure.facts.setdefault("owns", {})
            assert isinstance(owns, dict)
            owns[owner] = counts
            owner_oid = regrole(owner)
            exposure.facts["list_owned"] = (
                f"SELECT relname, relkind FROM pg_class WHERE relowner = {owner_oid};"
            ) + (
                f" SELECT oid FROM pg_largeobject_metadata WHERE lomowner = {owner_oid};"
                if "large object" in counts
                else ""
            )


def _reassign(tenancy: Tenancy, database: str, owner: str) -> list[str]:
    new_owner = successor_owner(tenancy, database)
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


def _database_phrases(exposure: Exposure) -> list[str]:
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
        elif held.target.startswith("LARGE OBJECT"):
            lower = held.target.replace("LARGE OBJECTS", "large objects", 1)
            what = lower.replace("LARGE OBJECT", "large object", 1)
            phrases.append(f"holds {', '.join(access.privileges)} on {what}")
        else:
            phrases.append(f"holds {', '.join(access.privileges)} on the database")
    role = exposure.role
    for holder, group in exposure.through.items():
        owned = [h.target for h in group.held if h.access.via == "owner"]
        if owned:
            what = (
                "the database"
                if owned[0].startswith("DATABASE")
                else summarize_targets([t.rsplit(" in ", 1)[0] for t in owned])
            )
            phrases.append(f"can act as {holder!r}, the owner of {what}")
        count = group.count - len(owned)
        if count:
            # One group's grants repeat a few accesses over many objects: what it hands
            # over is summed once for all its members (``Handover``).
            own = [h.access for h in group.held if h.access.via != "owner"]
            privileges = sort_privileges(
                {p for a in own for p in a.privileges}
                | (group.handover.privileges if group.handover else frozenset())
            )
            first = [h for h in group.first(role, 3 + len(owned)) if h.access.via != "owner"]
            targets = summarize_targets([h.target for h in first[:3]], count)
            phrases.append(_holds_through(privileges, targets, holder))
    return list(dict.fromkeys(phrases))


def _through_one_group(tenancy: Tenancy, exposure: Exposure) -> Verdict | None:
    """``_object_verdict`` for a role that holds nothing in the database but what one
    group hands over (more than ``MAX_ACCESS_SHOWN`` objects), through its own
    inherited membership in the group (``Exposure.through_one_group``); else None.

    Such a finding differs from another such member's only where it names the member:
    what they share (the objects, the message's end, each object's evidence but its
    chain) is made once per group (``Handover``), and the finding is the one
    ``_object_verdict`` makes, without gathering and ordering ways in.
    """
    one_group = exposure.through_one_group(tenancy.graph)
    if one_group is None:
        return None
    handover, paths = one_group
    count = len(handover.items)
    if count <= MAX_ACCESS_SHOWN or handover.revokes:
        return None
    role, database = exposure.role, exposure.database
    # The message and the remediation name the first three objects (``Handover``'s
    # ``first_targets``); the evidence spells out the first one's access.
    first_held = handover.first_through(role, paths, 1)
    evidence: dict[str, object] = {
        "database": database,
        "database_app": exposure.app,
        "object_type": "database",
        "access": handover.evidence(first_held),
        "access_total": count,
    }
    put_capped(evidence, "held_on", handover.targets, len(handover.targets), held_query(role))
    evidence["principal_app"] = tenancy.role_apps.get(role)
    evidence["can_connect"] = tenancy.can_connect(tenancy.databases[database], role)
    message = (
        f"in database {database!r} of app {exposure.app!r}, "
        f"{describe_role(tenancy, role)} {_handed_over(handover)}"
    )
    return handover_verdict(tenancy, exposure, first_held[0].access, message, evidence)


def _handed_over(handover: Handover) -> str:
    """What a group hands over, as a message of ``_database_phrases`` says it."""
    privileges = sort_privileges(handover.privileges)
    return _holds_through(privileges, handover.first_targets, handover.grantee)


def _holds_through(privileges: Sequence[str], targets: str, holder: str) -> str:
    """The phrase of a message for what a principal holds through one role."""
    return f"holds {', '.join(privileges)} on {targets} through {holder!r}"


def _object_verdict(tenancy: Tenancy, exposure: Exposure) -> Verdict:
    accesses = exposure.accesses
    count = exposure.count
    database = exposure.database
    db = tenancy.databases[database]
    kind, name = exposure.resource.split("/", 1)
    principal = exposure.principal
    evidence: dict[str, object] = {
        "database": database,
        "database_app": exposure.app,
        "object_type": exposure.facts.get("object_type", kind),
        # One membership can hand over thousands of objects, each an access that
        # differs from the next only in its object: beyond a few, the first is spelt
        # out and the objects are named.
        "access": exposure.evidence(None if count <= MAX_ACCESS_SHOWN else 1),
        **{k: v for k, v in exposure.facts.items() if k != "object_type"},
    }
    if count > MAX_ACCESS_SHOWN:
        evidence["access_total"] = count
        targets, total = exposure.targets(MAX_LISTED)
        put_capped(
            evidence,
            "held_on",
            targets,
            total,
            None if principal == "PUBLIC" else held_query(exposure.role),
        )
    if principal == "PUBLIC":
        subject = "PUBLIC"
        connecting, total = tenancy.foreign_connecting(db)
        put_capped(evidence, "exposed_roles", connecting, total, LOGINS_QUERY)
    else:
        role = exposure.role
        subject = describe_role(tenancy, role)
        evidence["principal_app"] = tenancy.role_apps.get(role)
        evidence["can_connect"] = tenancy.can_connect(db, role)
    if kind == "database":
        message = f"in database {name!r} of app {exposure.app!r}, {subject} " + (
            summarize_phrases(_database_phrases(exposure), "; ")
        )
    else:
        privileges = sort_privileges(p for a in accesses for p in a.privileges)
        on = f"{kind} {name!r}"
        if exposure.columns:
            columns = sorted(exposure.columns)
            put_capped(evidence, "columns", columns, len(columns))
            if all(held.target.startswith("COLUMN ") for held in exposure.held):
                plural = "s" if len(columns) > 1 else ""
                named = summarize_targets([quote_ident(c) for c in columns])
                on = f"column{plural} {named} of {on}"
        message = f"{subject} holds {', '.join(privileges)} on {on} of app {exposure.app!r}"
    return Verdict(
        resource=exposure.resource,
        principal=principal,
        app=exposure.app,
        message=message,
        evidence=evidence,
        remediation=remediation_script(
            fix_lines(tenancy, database, exposure, cut_memberships=True, in_database_first=True),
        ),
    )
