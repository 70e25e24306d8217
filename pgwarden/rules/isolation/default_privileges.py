"""PGW-ISO-006: default privileges that grant every new object to PUBLIC or another app."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import ClassVar

from pgwarden.access.cached import cached_property
from pgwarden.access.grants import Access
from pgwarden.access.holdings import DEFAULT_ACL_OBJECTS
from pgwarden.access.privileges import acl_text, sort_privileges
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.evidence import MAX_WAYS_SHOWN, put_capped, summarize_targets
from pgwarden.model.identifiers import quote_literal, regrole
from pgwarden.model.snapshot import DefaultPrivilege, ServerSnapshot
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict, quote_ident
from pgwarden.rules.control_sets import DML_PRIVILEGES, LEAST_PRIVILEGE
from pgwarden.rules.database_contents import unread_verdict
from pgwarden.rules.isolation._evidence import (
    Exposure,
    Handover,
    ItemAccesses,
    database_passed,
    describe_role,
    exposure_for,
    fix_lines,
    handover_verdict,
    inspected,
    remediation_script,
)

# What PostgreSQL grants PUBLIC on every new object of these kinds: restating it in a
# default ACL (which a global ALTER DEFAULT PRIVILEGES entry always does) is no leak.
BUILT_IN_PUBLIC = {"function": {"EXECUTE"}, "type": {"USAGE"}}


class LeakyDefaultPrivileges(Rule):
    """Default privileges in an app database grant to PUBLIC or to another app's role.

    ``ALTER DEFAULT PRIVILEGES`` decides the ACL of every object a role creates from
    then on. A default that grants to PUBLIC, or to a role of another app (directly
    or through a group that role belongs to), leaks each new table the moment the app
    creates it: the exposure grows with every migration, with nobody granting anything.
    PUBLIC EXECUTE on functions and USAGE on types are PostgreSQL's built-in defaults
    and are not reported. A default given to PUBLIC or to the role itself is reported
    where it applies (``schema/DB.NAME``, or ``database/DB`` for the whole database);
    what a role is given through membership in another role, once per database
    (``database/DB``): a group may be given the new objects of hundreds of schemas (a
    schema per tenant), all handed over by one membership. The finding names the first
    entries, counts them all and gives the query that lists them; an entry that grants
    to hundreds of roles one by one shows its first ACL items, counted, with the query
    that lists them all (``defaclacl_total``, ``defaclacl_more``). Default privileges
    the auditor could not read (pg_default_acl refused) are an error for that database.

    Violation: A pg_default_acl entry in an app database (for the whole database or
    one schema) whose ACL grants to PUBLIC or to a role of another app.

    Fix: In that database, ALTER DEFAULT PRIVILEGES FOR ROLE <creator> [IN SCHEMA <s>]
    REVOKE <privileges> ON <TABLES|...> FROM <grantee> (as the creator role or a
    member of it); objects created meanwhile keep the grant: PGW-ISO-004 lists them.
    End what a group hands over with REVOKE <group> FROM <member> where the chain
    leaves the foreign roles (a group of another app is reported on its own).
    """

    id = "PGW-ISO-006"
    severity = "medium"
    controls = (*DML_PRIVILEGES, *LEAST_PRIVILEGE)
    requires = (Section.TENANCY_MAP, Section.POSTGRES)
    # Whether a role given defaults only through one group, by its own membership, is
    # reported by the short way (``_through_one_group``). Tests turn it off, to check
    # that both ways give the same findings.
    shortcut: ClassVar[bool] = True

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        accesses = ItemAccesses(tenancy.graph)
        for database, app, detail in inspected(tenancy, self.id):
            if isinstance(detail, Verdict):
                yield detail
                continue
            exposures: dict[tuple[str, str], Exposure] = {}
            # What a group is given by default, gathered once and handed to each of
            # its foreign members: one finding per member and database, however many
            # schemas the group's defaults cover.
            groups: dict[str, _GroupDefaults] = {}
            for default in detail.default_privileges:
                _default_entry(tenancy, database, app, default, exposures, accesses, groups)
            for group in groups.values():
                for role in group.members:  # none for a grantee no foreign role uses
                    exposure_for(
                        exposures, f"database/{database}", f"role/{role}", app, database
                    ).hand_over(group.handover)
            reason = detail.unread.get("default_privileges")
            if reason is not None:
                # Not read (pg_default_acl refused): not judged, never passed.
                yield unread_verdict(
                    tenancy,
                    database,
                    app,
                    f"{self.id} cannot judge database {database!r} of app {app!r}: its "
                    f"default privileges could not be read ({reason})",
                    {"default_privileges": reason},
                )
            elif context.include_passed and not exposures:
                entries: dict[str, object] = {}
                put_capped(
                    entries,
                    "default_acl_entries",
                    (_entry_fact(database, d) for d in detail.default_privileges),
                    len(detail.default_privileges),
                    _default_acl_query(database),
                )
                yield database_passed(
                    tenancy.databases[database],
                    app,
                    f"no default privilege in database {database!r} of app {app!r} grants to "
                    "PUBLIC or to another app's role",
                    **entries,
                )
            unions: dict[tuple[str, ...], frozenset[int]] = {}
            for key in sorted(exposures):
                exposure = exposures[key]
                verdict = _through_one_group(tenancy, exposure, groups) if self.shortcut else None
                yield verdict or _default_verdict(tenancy, exposure, groups, unions)


@dataclass
class _GroupDefaults:
    """The default privileges one group is given in one database, shared by the
    members that reach it (``handover``), and their ``pg_default_acl`` entries."""

    handover: Handover
    members: list[str]
    entries: list[dict[str, object]] = field(default_factory=list)

    @cached_property
    def creators(self) -> frozenset[str]:
        return frozenset(str(e["creator"]) for e in self.entries)

    @cached_property
    def kinds(self) -> frozenset[str]:
        return frozenset(str(e["object_type"]) for e in self.entries)

    @cached_property
    def given(self) -> str:
        """What the group is given, as a finding's message says it."""
        return _given(
            sort_privileges(self.handover.privileges), sorted(self.kinds), sorted(self.creators)
        )

    @cached_property
    def shown_entries(self) -> list[dict[str, object]]:
        """The entries a finding shows: the first few, each once."""
        return list(islice(_unique(self.entries), MAX_WAYS_SHOWN))

    @cached_property
    def ids(self) -> frozenset[int]:
        """The entries, by identity (each default entry is one object)."""
        return frozenset(id(e) for e in self.entries)


def _default_entry(
    tenancy: Tenancy,
    database: str,
    app: str,
    default: DefaultPrivilege,
    exposures: dict[tuple[str, str], Exposure],
    accesses: ItemAccesses,
    groups: dict[str, _GroupDefaults],
) -> None:
    keyword = DEFAULT_ACL_OBJECTS[default.object_type]
    creator = quote_ident(default.role)
    if default.schema_name is not None:
        scope = f" IN SCHEMA {quote_ident(default.schema_name)}"
        resource = f"schema/{database}.{default.schema_name}"
        target = f"future {keyword} of {creator} in schema {quote_ident(default.schema_name)}"
    else:
        scope = ""
        resource = f"database/{database}"
        target = f"future {keyword} of {creator}"
    fact = _entry_fact(database, default)
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
            exposure = exposure_for(exposures, resource, "PUBLIC", app, database)
            exposure.add(
                Access("PUBLIC", privileges, "public", None, item.grantor, (), shown),
                revoke,
                target,
            )
            _append_fact(exposure.facts.setdefault("default_acl_entries", []), fact)
            continue
        grantee_role = item.grantee
        if grantee_role in users:
            # A foreign principal given the default itself: its own finding, there.
            access = accesses.access(shown, grantee_role)
            if access is not None:
                exposure = exposure_for(exposures, resource, f"role/{grantee_role}", app, database)
                exposure.add(access, revoke, target)
                _append_fact(exposure.facts.setdefault("default_acl_entries", []), fact)
        group = groups.get(grantee_role)
        if group is None:
            # Its foreign members, found once per grantee and database, not per entry.
            members = [role for role in users if role != grantee_role]
            group = groups[grantee_role] = _GroupDefaults(Handover(grantee_role, accesses), members)
        if group.members:
            group.handover.add(shown, target, revoke)
            _append_fact(group.entries, fact)


def _entry_fact(database: str, default: DefaultPrivilege) -> dict[str, object]:
    """A default entry as the evidence shows it: its ACL capped, for one entry may name
    thousands of grantees, and every finding it makes shows it."""
    fact: dict[str, object] = {
        "creator": default.role,
        "schema": default.schema_name,
        "object_type": default.object_type,
    }
    schema = (
        "0"
        if default.schema_name is None
        else f"{quote_literal(quote_ident(default.schema_name))}::regnamespace"
    )
    put_capped(
        fact,
        "defaclacl",
        (acl_text(i) for i in default.acl),
        len(default.acl),
        "SELECT defaclobjtype, unnest(defaclacl) FROM pg_default_acl WHERE defaclrole = "
        f"{regrole(default.role)} AND defaclnamespace = {schema};  -- in {database!r}",
    )
    return fact


def _append_fact(entries: object, fact: dict[str, object]) -> None:
    assert isinstance(entries, list)
    # Each default entry makes one fact and appends it for each of its grants that
    # reach this exposure, one after another: only the last entry can be this one
    # (a search of the whole list made thousands of entries on one database quadratic).
    if not entries or entries[-1] is not fact:
        entries.append(fact)


def _default_acl_query(database: str) -> str:
    """A query listing every default privilege entry of ``database``, run there."""
    return (
        "SELECT defaclrole::regrole, defaclnamespace::regnamespace, defaclobjtype, "
        f"defaclacl FROM pg_default_acl;  -- in {database!r}"
    )


def _through_one_group(
    tenancy: Tenancy, exposure: Exposure, groups: dict[str, _GroupDefaults]
) -> Verdict | None:
    """``_default_verdict`` for a role given default privileges only through one group,
    by its own inherited membership in it (``Exposure.through_one_group``); else None.

    Such a finding differs from another such member's only where it names the member:
    what they share (the entries, the message's end, each grant's evidence but its
    chain) is made once per group, and the finding is the one ``_default_verdict``
    makes, without gathering and ordering ways in.
    """
    one_group = exposure.through_one_group(tenancy.graph)
    if one_group is None:
        return None
    handover, paths = one_group
    group = groups[handover.grantee]
    database = exposure.database
    evidence: dict[str, object] = {"database": database, "database_app": exposure.app}
    put_capped(
        evidence,
        "default_acl_entries",
        group.shown_entries,
        len(group.ids),
        _default_acl_query(database),
        limit=MAX_WAYS_SHOWN,
    )
    first_held = handover.first_through(exposure.role, paths, MAX_WAYS_SHOWN)
    shown = handover.evidence(first_held)
    put_capped(evidence, "access", shown, len(handover.items), limit=MAX_WAYS_SHOWN)
    message = _message(exposure, describe_role(tenancy, exposure.role), group.given)
    return handover_verdict(tenancy, exposure, first_held[0].access, message, evidence)


def _given(privileges: Sequence[str], kinds: Sequence[str], creators: Sequence[str]) -> str:
    """What default privileges give, as a finding's message says it."""
    return (
        f"{', '.join(privileges)} on every new {' and '.join(kinds)} created by "
        f"{summarize_targets([repr(c) for c in creators])}"
    )


def _message(exposure: Exposure, subject: str, given: str) -> str:
    """A finding's message: where the defaults are, and what they give ``subject``."""
    where = exposure.resource.split("/", 1)[1]
    return f"default privileges in {where!r} (app {exposure.app!r}) give {subject} {given}"


def _default_verdict(
    tenancy: Tenancy,
    exposure: Exposure,
    groups: dict[str, _GroupDefaults],
    unions: dict[tuple[str, ...], frozenset[int]],
) -> Verdict:
    principal = exposure.principal
    subject = (
        "PUBLIC"
        if principal == "PUBLIC"
        else describe_role(tenancy, principal.removeprefix("role/"))
    )
    own = exposure.facts.get("default_acl_entries", [])
    assert isinstance(own, list)
    shared = [groups[handover.grantee] for _at, handover in exposure.handovers]
    privileges = sort_privileges(
        {p for a in exposure.accesses for p in a.privileges}.union(
            *(group.handover.privileges for group in shared)
        )
    )
    creators = sorted({str(e["creator"]) for e in own}.union(*(g.creators for g in shared)))
    kinds = sorted({str(e["object_type"]) for e in own}.union(*(g.kinds for g in shared)))
    evidence: dict[str, object] = {"database": exposure.database, "database_app": exposure.app}
    entries, total = _entries(own, shared, unions)
    put_capped(
        evidence,
        "default_acl_entries",
        entries,
        total,
        _default_acl_query(exposure.database),
        limit=MAX_WAYS_SHOWN,
    )
    exposure.put_accesses(evidence)
    return Verdict(
        resource=exposure.resource,
        principal=principal,
        app=exposure.app,
        message=_message(exposure, subject, _given(privileges, kinds, creators)),
        evidence=evidence,
        remediation=remediation_script(
            fix_lines(tenancy, exposure.database, exposure, in_database_first=True)
        ),
    )


def _entries(
    own: list[dict[str, object]],
    shared: list[_GroupDefaults],
    unions: dict[tuple[str, ...], frozenset[int]],
) -> tuple[Iterator[dict[str, object]], int]:
    """The default entries behind an exposure, its own first, then each group's, each
    entry once (read lazily: only the first few are shown); and how many there are.

    Counted without walking a group's entries for each member: the entries of each
    set of groups are gathered once (``unions``), and a member's own are few.
    """
    if not shared:
        return iter(own), len(own)
    key = tuple(group.handover.grantee for group in shared)
    union = unions.get(key)
    if union is None:
        union = unions[key] = frozenset().union(*(group.ids for group in shared))
    total = len(union) + sum(1 for e in own if id(e) not in union)
    return _unique(chain(own, *(group.entries for group in shared))), total


def _unique(entries: Iterable[dict[str, object]]) -> Iterator[dict[str, object]]:
    seen: set[int] = set()
    for entry in entries:
        if id(entry) not in seen:
            seen.add(id(entry))
            yield entry
