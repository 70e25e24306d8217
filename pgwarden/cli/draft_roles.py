"""Who is not a tenant: the admin and the platform roles, as ``pgwarden init`` guesses them.

The admin comes from ARM's ``administratorLogin`` when Azure was read; otherwise from
what the server shows: on Flexible Server the admin is a member of ``azure_pg_admin``
with CREATEROLE and CREATEDB that owns the databases it created; off Azure, the role
that owns most app databases. The role init connected as is the admin only when that
evidence says so: an auditor is a platform role, and guessing it as the admin would
hide every application that runs as the real one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pgwarden.cli.draft_review import ReviewItem
from pgwarden.model.snapshot import (
    AZURE_ADMIN_GROUP,
    AZURE_ROLES,
    Database,
    PostgresSnapshot,
    Role,
)

# Predefined roles that only let their members watch the server.
MONITORING_ROLES = frozenset(
    {"pg_monitor", "pg_read_all_settings", "pg_read_all_stats", "pg_stat_scan_tables"}
)


@dataclass(frozen=True)
class AdminGuess:
    """The admin role and the evidence for it.

    ``source``: ``arm`` (ARM's administratorLogin), ``flexible-server`` (the shape of
    Flexible Server's admin), ``owner`` (owns most app databases), ``bootstrap`` (the
    superuser initdb created, when no role owns most app databases) or ``none``.
    """

    role: str | None
    source: str
    evidence: str


@dataclass(frozen=True)
class PlatformRole:
    """A role that legitimately spans databases, and why init thinks so."""

    role: str
    why: str


@dataclass(frozen=True)
class NonTenants:
    """The admin, the platform roles, and other roles shaped like an admin."""

    admin: AdminGuess
    platform: tuple[PlatformRole, ...]
    admin_shaped: tuple[str, ...] = ()
    review: tuple[ReviewItem, ...] = ()

    def names(self) -> frozenset[str]:
        """Every role that is no app's, by these guesses."""
        found = {p.role for p in self.platform} | set(self.admin_shaped)
        if self.admin.role:
            found.add(self.admin.role)
        return frozenset(found)


def _privileged(role: Role) -> bool:
    return role.superuser or (role.createrole and role.createdb)


def _attributes(role: Role) -> str:
    if role.superuser:
        return "SUPERUSER"
    flags = (("CREATEROLE", role.createrole), ("CREATEDB", role.createdb))
    held = [name for name, on in flags if on]
    return " and ".join(held) or "no special attributes"


def guess_admin(
    pg: PostgresSnapshot,
    app_databases: Sequence[Database],
    *,
    arm_admin: str | None = None,
    arm_server: str | None = None,
) -> tuple[AdminGuess, tuple[str, ...], list[ReviewItem]]:
    """The admin, other admin-shaped roles, and the doubts about them."""
    roles = {role.name: role for role in pg.roles}
    owned = Counter(db.owner for db in app_databases)
    total = len(app_databases)

    def owns(role: str) -> str:
        return f"owns {owned[role]} of {total} app database(s)"

    members = {m.member for m in pg.memberships if m.role == AZURE_ADMIN_GROUP}
    shaped = sorted(
        (
            name
            for name in members
            if name in roles
            and roles[name].login
            and roles[name].createrole
            and roles[name].createdb
            and not roles[name].superuser
        ),
        key=lambda name: (-owned[name], name),
    )
    review: list[ReviewItem] = []
    if arm_admin:
        text = f"ARM administratorLogin of {arm_server or 'the server'}"
        if arm_admin in roles:
            guess = AdminGuess(arm_admin, "arm", f"{text}; {owns(arm_admin)}")
        else:
            guess = AdminGuess(arm_admin, "arm", f"{text} (no such role on the server)")
            review.append(
                ReviewItem(
                    "high",
                    "admin-missing",
                    f"role/{arm_admin}",
                    f"ARM names {arm_admin!r} as the admin, but the server has no such role: "
                    "check that init reached the server ARM describes",
                )
            )
    elif shaped:
        guess = AdminGuess(
            shaped[0],
            "flexible-server",
            f"member of {AZURE_ADMIN_GROUP} with CREATEROLE and CREATEDB, as Flexible "
            f"Server's admin is; {owns(shaped[0])}",
        )
    else:
        guess = _owner_or_bootstrap(pg, roles, owned, total)
    others = tuple(name for name in shaped if name != guess.role)
    if guess.role is None:
        review.append(
            ReviewItem(
                "high",
                "admin-missing",
                "server/admin_role",
                "no role looks like the admin: set admin_role (on Azure, run init with "
                "--azure-subscription so ARM's administratorLogin is read)",
            )
        )
    elif guess.source != "arm":
        rivals = [name for name in others if owned[name] == owned[guess.role]]
        tie = f"; so do {', '.join(rivals)}" if rivals else ""
        # On Azure, ARM knows the admin for certain.
        arm = (
            ", or run init with --azure-subscription to read ARM's administratorLogin"
            if AZURE_ADMIN_GROUP in roles
            else ""
        )
        review.append(
            ReviewItem(
                "high",
                "admin-guessed",
                f"role/{guess.role}",
                f"admin_role {guess.role!r} is a guess ({guess.evidence}{tie}): it decides "
                f"what PGW-ADM-001/002 look for; confirm it{arm}",
            )
        )
    for name in others:
        review.append(
            ReviewItem(
                "medium",
                "admin-shaped",
                f"role/{name}",
                f"{name!r} is also a member of {AZURE_ADMIN_GROUP} with CREATEROLE and "
                f"CREATEDB ({owns(name)}): left out of every app; list it in platform_roles "
                "if it is meant to span databases",
            )
        )
    return guess, others, review


def _owner_or_bootstrap(
    pg: PostgresSnapshot, roles: Mapping[str, Role], owned: Counter[str], total: int
) -> AdminGuess:
    ranked = [
        (name, count)
        for name, count in sorted(owned.items(), key=lambda kv: (-kv[1], kv[0]))
        if name in roles and not name.startswith("pg_")
    ]
    if ranked:
        name, count = ranked[0]
        # One database each is the apps owning theirs, not an admin owning them all.
        if (count >= 2 and count * 2 > total) or _privileged(roles[name]):
            attributes = _attributes(roles[name])
            text = f"owns {count} of {total} app database(s); {attributes}"
            rivals = [other for other, owns in ranked[1:] if owns == count]
            if rivals:
                text += f"; {', '.join(rivals)} own(s) as many"
            return AdminGuess(name, "owner", text)
    bootstrap = next((role.name for role in pg.roles if role.bootstrap_superuser), None)
    if bootstrap is None:
        return AdminGuess(None, "none", "no role owns most app databases")
    return AdminGuess(
        bootstrap,
        "bootstrap",
        "the superuser initdb created; no other role owns most app databases",
    )


def _owners(pg: PostgresSnapshot) -> set[str]:
    """Every role that owns a database, a schema or a relation the collector saw."""
    found = {db.owner for db in pg.databases}
    for detail in pg.database_details:
        found.update(schema.owner for schema in detail.schemas)
        found.update(owned.role for owned in detail.ownership)
    return found


def guess_platform(pg: PostgresSnapshot, admin: str | None) -> tuple[PlatformRole, ...]:
    """The auditor init connected as, Azure's own roles, and monitoring-only roles."""
    roles = {role.name: role for role in pg.roles}
    found: list[PlatformRole] = []
    if pg.connected_as != admin and pg.connected_as in roles:
        found.append(PlatformRole(pg.connected_as, "the role init connected as (the auditor)"))
    found += [
        PlatformRole(name, "Azure's own role") for name in sorted(AZURE_ROLES) if name in roles
    ]
    groups: dict[str, set[str]] = {}
    for grant in pg.memberships:
        groups.setdefault(grant.member, set()).add(grant.role)
    owners = _owners(pg)
    for name, role in sorted(roles.items()):
        held = groups.get(name, set())
        if (
            name in (admin, pg.connected_as)
            or name in AZURE_ROLES
            or name.startswith("pg_")
            or not held
            or not held <= MONITORING_ROLES
            or _privileged(role)
            or name in owners
        ):
            continue
        found.append(PlatformRole(name, f"holds only {', '.join(sorted(held))}"))
    return tuple(found)


def guess_non_tenants(
    pg: PostgresSnapshot,
    app_databases: Sequence[Database],
    *,
    arm_admin: str | None = None,
    arm_server: str | None = None,
) -> NonTenants:
    """The admin, the platform roles and the doubts about them."""
    admin, shaped, review = guess_admin(
        pg, app_databases, arm_admin=arm_admin, arm_server=arm_server
    )
    return NonTenants(
        admin=admin,
        platform=guess_platform(pg, admin.role),
        admin_shaped=shaped,
        review=tuple(review),
    )
