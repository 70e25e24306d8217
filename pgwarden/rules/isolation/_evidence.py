"""What the PGW-ISO rules share: the databases they look into, and exposures with their fixes.

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
from itertools import repeat
from typing import NamedTuple

from pgwarden.access.cached import cached_property
from pgwarden.access.grants import Access, item_access, membership_access
from pgwarden.access.graph import RoleGraph, RolePath, own_grant
from pgwarden.access.privileges import acl_text, sort_privileges
from pgwarden.access.remediation import capped_blocks, in_database, sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.evidence import MAX_WAYS_SHOWN, put_capped, summarize_targets
from pgwarden.model.snapshot import AclItem, Database, DatabaseDetail, LargeObjects
from pgwarden.rules.base import Verdict, quote_ident, quote_literal
from pgwarden.rules.database_contents import finish_dropping, not_inspected_reason

# An ACL item's identity: grantee (None: PUBLIC), grantor, privileges and grantable.
_ItemKey = tuple[str | None, str, tuple[str, ...], tuple[str, ...]]


# How to list every role an evidence list of exposed roles was cut from: on a database
# PUBLIC may connect to, that is every login (but the app's own, named in the map).
LOGINS_QUERY = "SELECT rolname FROM pg_roles WHERE rolcanlogin ORDER BY 1;"


def datacl_query(database: str) -> str:
    """A query that shows a database's whole ACL (evidence lists its first items)."""
    return f"SELECT datacl FROM pg_database WHERE datname = {quote_literal(database)};"


def held_query(role: str) -> str:
    """A query, run in the finding's database, listing every object ``role`` holds a
    privilege on through itself or a role it belongs to (PUBLIC aside), or owns that
    way: the whole of what a finding's ``held_on`` names the first of.

    It reads the shared dependency catalog (``pg_shdepend``, readable by PUBLIC), where
    PostgreSQL records each object's owner and every role its ACL names: every kind of
    object at once (schemas, relations, columns, routines, large objects, types,
    default privileges, ...), each once, with its type and its name quoted as the
    catalog quotes it, and whether it is owned (``owned``); in half the text of a query
    over each catalog, which every capped finding carries. PostgreSQL records nothing
    for the bootstrap superuser: what a role holds by belonging to it (everything) is
    not listed.
    """
    return (
        "SELECT o.type, o.identity, deptype = 'o' AS owned FROM pg_shdepend, "
        "pg_identify_object(classid, objid, objsubid) o WHERE dbid = (SELECT oid FROM "
        "pg_database WHERE datname = current_database()) AND deptype IN ('o', 'a') AND "
        f"pg_has_role({quote_literal(role)}, refobjid, 'MEMBER') ORDER BY 1, 2;"
    )


def describe_role(tenancy: Tenancy, role: str) -> str:
    """``role`` as a message names it: with its app, or as a login of no app."""
    app = tenancy.role_apps.get(role)
    return f"role {role!r} (app {app!r})" if app else f"login role {role!r} (no app)"


def database_passed(database: Database, app: str, message: str, **evidence: object) -> Verdict:
    """The pass record of an app database found isolated, with its ACL as the evidence."""
    shown: dict[str, object] = {"database": database.name, "owner": database.owner}
    put_capped(
        shown,
        "datacl",
        (acl_text(i) for i in database.acl),
        len(database.acl),
        datacl_query(database.name),
    )
    return Verdict(
        resource=f"database/{database.name}",
        app=app,
        status="pass",
        message=message,
        evidence={**shown, "acl_is_default": database.acl_is_default, **evidence},
    )


def remediation_script(*blocks: Iterable[str]) -> str:
    """Join remediation lines, dropping repeats (one REVOKE can fix several paths)."""
    lines: list[str] = []
    seen: set[str] = set()
    for block in blocks:
        for line in block:
            if line.startswith("--") or line not in seen:
                lines.append(line)
                seen.add(line)
    return "\n".join(lines)


def successor_owner(tenancy: Tenancy, database: str) -> str:
    """Who should own what a foreign role owns in ``database``: the app's first role."""
    app = tenancy.app_databases[database]
    roles = tenancy.app_roles(app)
    if roles:
        return roles[0]
    return tenancy.context.admin_role or tenancy.databases[database].owner


def verify_database_privilege(role: str | None, database: str, privilege: str) -> str:
    """A query an auditor can run to confirm ``role`` (None: PUBLIC) holds ``privilege``."""
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
        reason = not_inspected_reason(db, detail)
        auditor_connects = tenancy.can_connect(db, auditor)
        if db.invalid:
            fix = finish_dropping(database)
        elif not db.allow_connections:
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


# Held's fields as a tuple, without NamedTuple's keyword-handling constructor.
_new_held = tuple.__new__
# What an access through membership revokes of its own: nothing (never changed).
_NO_REVOKE: list[str] = []


class Held(NamedTuple):
    """One way a principal holds something, how to revoke it, and what it is held on.

    ``derived``: held through membership in another role (``is_derived``).
    """

    access: Access
    revoke: list[str]
    target: str
    derived: bool


class Handover:
    """The object grants one group holds in one database, gathered once.

    Every foreign member of the group is handed the same objects, and one group can
    hold thousands: its members share this record instead of each being given each
    object, so the work follows the members plus the objects, never their product. A
    member's own ``Held`` for an object is made only when asked for (``first``), and
    only the first few ever are.
    """

    def __init__(self, grantee: str, accesses: ItemAccesses) -> None:
        self.grantee = grantee
        self.items: list[tuple[AclItem, str]] = []
        # Each distinct item once (thousands of objects share a few grants' items). An
        # object appended to ``items`` without ``add`` must carry an item added before.
        self._distinct: dict[int, AclItem] = {}
        # The statements that revoke each item itself, when the rule offers them as the
        # alternative to ending a membership (ISO-006's default privileges); else empty.
        self.revokes: list[list[str]] = []
        self._accesses = accesses
        # Each member's first objects, as asked for (the message, the evidence and the
        # remediation each ask for the first one to three).
        self._first: dict[str, list[Held]] = {}
        # Each item's evidence but the chain, for the members whose one way to the group
        # is their own inherited membership (``evidence``), by the item's identity.
        self._rests: dict[int, dict[str, object]] = {}
        # Each item's privileges, sorted (``first_through``), by the item's identity.
        self._privileges: dict[int, tuple[str, ...]] = {}

    def add(self, item: AclItem, target: str, revoke: list[str] | None = None) -> None:
        """The group holds ``item``'s privileges on ``target``; ``revoke`` would
        revoke the grant itself (given for every item or for none)."""
        self.items.append((item, target))
        self._distinct.setdefault(id(item), item)
        if revoke is not None:
            self.revokes.append(revoke)

    def first(self, role: str, limit: int | None) -> list[Held]:
        """The first ``limit`` objects (all when None) as ``role``, a member of the
        group, holds them, in grant order."""
        known = self._first.get(role)
        if known is None or (
            len(known) < len(self.items) and (limit is None or limit > len(known))
        ):
            access = self._accesses.access
            wanted = None if limit is None else max(limit, 3)
            revokes = self.revokes or repeat(_NO_REVOKE)
            known = self._first[role] = [
                _new_held(Held, (_member_access(access(item, role)), revoke, target, True))
                for (item, target), revoke in zip(self.items[:wanted], revokes, strict=False)
            ]
        return known[:limit]

    def first_through(self, role: str, paths: tuple[RolePath, ...], limit: int) -> list[Held]:
        """``first`` for a member whose one way to the group is ``paths``
        (``one_membership``): made as ``first`` makes it, without asking the graph for
        each object again, and not kept."""
        privileges = self._privileges
        revokes = self.revokes or repeat(_NO_REVOKE)
        found: list[Held] = []
        for (item, target), revoke in zip(self.items[:limit], revokes, strict=False):
            sorted_privileges = privileges.get(id(item))
            if sorted_privileges is None:
                sorted_privileges = privileges[id(item)] = sort_privileges(item.privileges)
            access = membership_access(item, role, sorted_privileges, paths)
            found.append(_new_held(Held, (access, revoke, target, True)))
        return found

    def evidence(self, held: list[Held]) -> list[dict[str, object]]:
        """``Access.evidence`` of each of ``held``, the first objects as a member holds
        them through its own inherited membership in the group (``one_membership``):
        what does not name the member is made once per item, for all such members."""
        return [member_evidence(h.access, h.access.chain(h.target), self._rests) for h in held]

    @cached_property
    def first_targets(self) -> str:
        """The first three objects handed over, in grant order, and how many more."""
        return summarize_targets([target for _item, target in self.items[:3]], len(self.items))

    @cached_property
    def targets(self) -> list[str]:
        """The objects handed over, sorted, each once."""
        # In the order found (the catalog's, nearly sorted already), so that sorting
        # them costs a pass rather than a full sort of a wide database's objects.
        return sorted(dict.fromkeys(target for _item, target in self.items))

    @cached_property
    def target_set(self) -> frozenset[str]:
        return frozenset(self.targets)

    @cached_property
    def privileges(self) -> frozenset[str]:
        """Every privilege handed over, on any of the objects."""
        return frozenset(p for item in self._distinct.values() for p in item.privileges)


def _member_access(access: Access | None) -> Access:
    # A member can use the group, so it holds each of the group's grants.
    assert access is not None, "a member of a group holds the group's grants"
    return access


@dataclass
class Through:
    """What a principal holds through one role it belongs to: what was recorded one by
    one (``held``), and the group's shared object grants (``handover``), which come
    after the first ``handover_at`` of ``held``, in the order they were found."""

    held: list[Held] = field(default_factory=list)
    handover: Handover | None = None
    handover_at: int = 0

    @property
    def count(self) -> int:
        return len(self.held) + (len(self.handover.items) if self.handover else 0)

    def first(self, role: str, limit: int) -> list[Held]:
        """The first ``limit`` of what ``role`` holds through the role, in the order
        it was found."""
        if self.handover is None:
            return self.held[:limit]
        return _spliced(self.held, [(self.handover_at, self.handover)], role, limit)


@dataclass
class Exposure:
    """Everything one principal holds on one resource, gathered before reporting.

    ``held``: what was recorded one by one (``add``); ``handovers``: groups' object
    grants shared with their other members (``hand_over``), each placed after the
    first ``n`` of ``held``. ``through``: what it holds through each role it belongs
    to, grouped by that role in the order first found (the message and the
    remediation both ask for it).
    """

    resource: str
    principal: str
    app: str
    database: str
    held: list[Held] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)
    through: dict[str, Through] = field(default_factory=dict)
    handovers: list[tuple[int, Handover]] = field(default_factory=list)
    # The columns held by column privileges (None: none were).
    columns: set[str] | None = None
    # The large objects held, one entry per owner and ACL (``note_large_objects``).
    large_objects: list[LargeObjects] = field(default_factory=list)

    def add(self, access: Access, revoke: list[str], target: str) -> None:
        """Record ``access`` held on ``target``, ended by the statements ``revoke``."""
        held = Held(access, revoke, target, is_derived(access))
        self.held.append(held)
        if held.derived and access.grantee is not None:
            group = self.through.get(access.grantee)
            if group is None:
                group = self.through[access.grantee] = Through()
            group.held.append(held)

    def hand_over(self, handover: Handover) -> None:
        """Record what ``handover``'s group holds as held through it (the principal is a
        member), ended by revoking the membership (``fix_lines``)."""
        self.handovers.append((len(self.held), handover))
        group = self.through.get(handover.grantee)
        if group is None:
            group = self.through[handover.grantee] = Through()
        assert group.handover is None, "one handover per group and database"
        group.handover, group.handover_at = handover, len(group.held)

    @property
    def role(self) -> str:
        return self.principal.removeprefix("role/")

    def through_one_group(self, graph: RoleGraph) -> tuple[Handover, tuple[RolePath, ...]] | None:
        """The group's handover and the principal's path to the group, when all it holds
        is what one group hands over, through its own inherited membership in the group
        (``one_membership``); else None. Such a finding is made the short way
        (``handover_verdict``)."""
        if (
            self.held
            or self.facts
            or self.large_objects
            or self.columns is not None
            or len(self.handovers) != 1
        ):
            return None
        handover = self.handovers[0][1]
        paths = one_membership(graph, self.role, handover.grantee)
        return None if paths is None else (handover, paths)

    @property
    def count(self) -> int:
        """How many accesses are recorded, handed over ones included."""
        return len(self.held) + sum(len(h.items) for _at, h in self.handovers)

    @property
    def accesses(self) -> list[Access]:
        """Every access recorded with ``add``, in the order it was added."""
        return [h.access for h in self.held]

    def first(self, limit: int | None) -> list[Held]:
        """The first ``limit`` accesses held (all when None), handed over ones
        included, in the order they were found."""
        if not self.handovers:
            return self.held[:limit]
        return _spliced(self.held, self.handovers, self.role, limit)

    def evidence(self, limit: int | None = None) -> list[dict[str, object]]:
        """The first ``limit`` accesses (all when None) as findings show them."""
        return [h.access.evidence(h.target) for h in self.first(limit)]

    def put_accesses(self, evidence: dict[str, object], limit: int = MAX_WAYS_SHOWN) -> None:
        """The first ``limit`` accesses under ``access``, and ``access_total`` when
        there are more (a principal in hundreds of groups has hundreds of ways in)."""
        put_capped(evidence, "access", self.evidence(limit), self.count, limit=limit)

    def note_large_objects(self, objects: LargeObjects, more: str) -> None:
        """Name ``objects`` among the large objects held, in the evidence: the first
        OIDs of all (each entry holds its own first ones, so the first of their union
        are the first of all), how many, and ``more``, a query that lists them all. An
        entry noted twice (PUBLIC's grant, then lo_compat_privileges) counts once: each
        large object is in one entry."""
        if objects not in self.large_objects:
            self.large_objects.append(objects)
        oids = sorted({oid for held in self.large_objects for oid in held.oids})
        total = sum(held.count for held in self.large_objects)
        put_capped(self.facts, "large_objects", oids, total, more)

    def targets(self, limit: int) -> tuple[list[str], int]:
        """The first ``limit`` objects held, sorted, each once; and how many there are."""
        own = {h.target for h in self.held}
        shared = [h for _at, h in self.handovers]
        if not shared:
            ordered = sorted(own)
            return ordered[:limit], len(ordered)
        if len(shared) == 1:
            # The common case: one group's objects, shared, and a few of the member's own.
            total = len(shared[0].targets) + len(own - shared[0].target_set)
        else:
            total = len(own.union(*(h.target_set for h in shared)))
        # The first ``limit`` of the union are among the first ``limit`` of each part.
        return sorted(own.union(*(h.targets[:limit] for h in shared)))[:limit], total


def _spliced(
    held: list[Held], handovers: list[tuple[int, Handover]], role: str, limit: int | None
) -> list[Held]:
    """The first ``limit`` (all when None) of ``held`` with each handover's objects, as
    ``role`` holds them, placed after the first ``at`` of ``held``."""
    found: list[Held] = []
    start = 0
    for at, handover in handovers:
        found += held[start:at]
        start = at
        if limit is not None and len(found) >= limit:
            return found[:limit]
        found += handover.first(role, None if limit is None else limit - len(found))
    found += held[start:]
    return found[:limit]


def exposure_for(
    exposures: dict[tuple[str, str], Exposure],
    resource: str,
    principal: str,
    app: str,
    database: str,
) -> Exposure:
    """The exposure of ``principal`` on ``resource`` in ``exposures``, added when new."""
    key = (resource, principal)
    if key not in exposures:
        exposures[key] = Exposure(resource, principal, app, database)
    return exposures[key]


def is_derived(access: Access) -> bool:
    """Held through membership in another role (its grant, or its ownership)."""
    return access.via == "membership" or (access.via == "owner" and access.grantee != access.role)


@dataclass
class _Fix:
    """One block of a remediation script: the first way in its statements end (its
    chain), why there, the statements, the alternatives of every way in they end, and
    how many more ways in they end."""

    chain: str
    why: str
    statements: list[str]
    alternatives: list[str]
    more: int = 0

    def block(self) -> list[str]:
        also = f" (and {self.more} more way{'s' if self.more > 1 else ''} in that this ends)"
        return [
            sql_comment(f"{self.chain}{also if self.more else ''}: {self.why}"),
            *self.statements,
            *(sql_comment(f"alternative: {a}") for a in self.alternatives),
        ]


def fix_lines(
    tenancy: Tenancy,
    database: str,
    exposure: Exposure,
    *,
    cut_memberships: bool = False,
    in_database_first: bool = False,
) -> list[str]:
    """The remediation script's lines, each block preceded by the chain it ends and why.

    With ``in_database_first``, the script opens with the comment naming the database
    it must run in (``in_database``), unless all it would run there (its statements
    and alternatives) ends memberships, which are the server's and run anywhere.

    With ``cut_memberships``, everything held through one role is ended together by
    revoking the membership (the role's own grants are reported on their own), so a
    group granted thousands of tables costs one line, not thousands. What a group
    hands over (``Exposure.hand_over``) is always ended that way. A principal with
    many ways in gets the first blocks and a comment counting the rest
    (``capped_blocks``; the evidence lists them).
    """
    grouped = (
        exposure.through
        if cut_memberships
        else {k: g for k, g in exposure.through.items() if g.handover is not None}
    )
    # Every block is made: a principal rarely has more than the few a script shows, and
    # making them as read costs each finding more than it saves the rare one. Ways in
    # that one fix ends (a group given default privileges on tables, sequences and
    # functions: one REVOKE of the membership) share its block, which counts them.
    fixes: list[_Fix] = []
    by_statements: dict[tuple[str, ...], _Fix] = {}
    local = False  # some statement or alternative must run in the database
    for held in exposure.held:
        if held.derived and held.access.grantee in grouped:
            continue
        statements, why, alternatives = tenancy.source_fix(held.access, database, held.revoke)
        alternatives = [a for a in alternatives if not a.startswith("--")]
        if in_database_first and not local:
            local = _runs_in_database(tenancy, (*statements, *alternatives))
        fix = by_statements.get(tuple(statements))
        if fix is not None:
            fix.more += 1
            fix.alternatives += [a for a in alternatives if a not in fix.alternatives]
            continue
        fix = _Fix(held.access.chain(held.target), why, statements, alternatives)
        fixes.append(fix)
        if statements:
            by_statements[tuple(statements)] = fix
    blocks = [fix.block() for fix in fixes]
    for holder, group in grouped.items():
        first_held = group.first(exposure.role, 3)
        block, runs_here = _group_fix(
            tenancy,
            database,
            holder,
            first_held[0].access,
            [h.revoke for h in first_held],
            summarize_targets([h.target for h in first_held], group.count),
            group.count,
        )
        blocks.append(block)
        local = local or (in_database_first and runs_here)
    lines = capped_blocks(blocks, len(blocks), "one for each other way in that the evidence counts")
    return [in_database(database), *lines] if in_database_first and local else lines


def _group_fix(
    tenancy: Tenancy,
    database: str,
    holder: str,
    first: Access,
    revokes: Sequence[list[str]],
    targets: str,
    count: int,
) -> tuple[list[str], bool]:
    """``fix_lines``'s block ending everything a principal holds through ``holder``: the
    ``count`` ways in, ``first`` the first one's access, ``revokes`` the first three's
    REVOKEs of the grant (empty lists: none offered), ``targets`` the first three's
    objects summarized (``summarize_targets``); and whether a statement or alternative
    of it must run in the database (``_runs_in_database``)."""
    alternatives: list[str] = []
    runs_here = False
    if revokes and revokes[0] and not tenancy.foreign(holder, database):
        # The group's grants can be revoked instead (a rule gave their REVOKEs):
        # said as for one way in; a group of no app's first grants are alternatives.
        statements, why, alternatives = tenancy.source_fix(first, database, revokes[0])
        if alternatives == revokes[0]:
            # A group of no app: each of its grants may go instead.
            alternatives = list(dict.fromkeys(s for revoke in revokes for s in revoke))
            if count > len(revokes):
                rest = count - len(revokes)
                alternatives.append(
                    f"the same for its {rest} other grants (the evidence counts them)"
                )
        runs_here = _runs_in_database(tenancy, (*statements, *alternatives))
    else:
        statements, why = tenancy.cut_membership(first, database)
    path = first.path.describe() if first.path else f"{first.role} → {holder}"
    block = [
        sql_comment(f"{path} → {targets}: {why}"),
        *statements,
        *(sql_comment(f"alternative: {a}") for a in alternatives),
    ]
    return block, runs_here


def one_membership(graph: RoleGraph, role: str, group: str) -> tuple[RolePath, ...] | None:
    """``role``'s paths to ``group`` when its one way there is its own inherited
    membership in it (a login put in an app's group: most findings on a big server);
    else None.

    An access through such a path spells out no path (``Access.evidence_rest``): the
    findings of two such members of one group differ only where they name the member,
    and the rules make them from what the group's members share, worked out once.
    """
    paths = graph.paths(role, group)
    if own_grant(paths) and paths[0].mode == "inherit":
        return paths
    return None


def member_evidence(
    access: Access, chain: str, rests: dict[int, dict[str, object]]
) -> dict[str, object]:
    """``access.evidence(target)``, ``chain`` being ``access.chain(target)``, for a member
    whose one way to the grantee is its own inherited membership (``one_membership``):
    all but the chain is the same for every such member, made once per ACL item and
    kept in ``rests`` (by the item's identity, while the caller holds the item)."""
    item = access.acl_item
    rest = rests.get(id(item))
    if rest is None:
        rest = rests[id(item)] = access.evidence_rest
    return {"via": access.via, "chain": chain, **rest}


def handover_verdict(
    tenancy: Tenancy,
    exposure: Exposure,
    first: Access,
    message: str,
    evidence: dict[str, object],
) -> Verdict:
    """The finding of a principal that holds only what one group hands over
    (``Exposure.through_one_group``; ``first``, its access to the first object), as the
    general way makes it: its remediation ends the membership (``_group_fix``), in the
    database when an alternative must run there."""
    database = exposure.database
    handover = exposure.handovers[0][1]
    block, runs_here = _group_fix(
        tenancy,
        database,
        handover.grantee,
        first,
        handover.revokes[:3],
        handover.first_targets,
        len(handover.items),
    )
    return Verdict(
        resource=exposure.resource,
        principal=exposure.principal,
        app=exposure.app,
        message=message,
        evidence=evidence,
        remediation=remediation_script([in_database(database), *block] if runs_here else block),
    )


def one_fix(chain: str, why: str, statements: list[str], alternatives: list[str]) -> list[str]:
    """``fix_lines`` for one way in, ``chain``, with ``tenancy.source_fix``'s result."""
    alternatives = [a for a in alternatives if not a.startswith("--")]
    return _Fix(chain, why, statements, alternatives).block()


def _runs_in_database(tenancy: Tenancy, statements: Iterable[str]) -> bool:
    """Whether any of ``statements`` must run inside the database: one that is neither
    a comment nor the end of a membership (the server's, run anywhere)."""
    return not all(s.startswith("--") or tenancy.is_membership_revoke(s) for s in statements)


class Holders(NamedTuple):
    """Who among a database's foreign principals holds an object grant's ``item``: the
    grantee itself (``direct``, with its access), and the roles that hold it through
    membership in the grantee (``members``)."""

    item: AclItem
    direct: list[tuple[str, Access]]
    members: list[str]


class ItemAccesses:
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
        self._holders: dict[tuple[_ItemKey, str | None], Holders] = {}

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
    ) -> Holders:
        """The foreign principals of ``database`` holding an object grant's item, and how.

        Who is foreign depends only on the database's app: worked out once per app, not
        once per database and object.
        """
        key = ((grantee, grantor, privileges, ()), tenancy.app_databases.get(database))
        found = self._holders.get(key)
        if found is None:
            item = self.item(grantee, grantor, privileges)
            direct: list[tuple[str, Access]] = []
            members: list[str] = []
            for role in tenancy.foreign_users(grantee, database):
                access = self.access(item, role)
                if access is None:
                    continue
                if is_derived(access):
                    members.append(role)
                else:
                    direct.append((role, access))
            found = self._holders[key] = Holders(item, direct, members)
        return found
