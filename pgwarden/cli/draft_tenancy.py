"""The tenancy ``pgwarden init`` guesses for one server, and what it was unsure of.

The draft encodes the most likely intent and leaves every doubt visible: the admin
and platform roles (``draft_roles``), apps and their roles weighed from evidence
(``draft_evidence``, ``draft_apps``), and a review list, most important first. What a
role reaches beyond its app stays out of the map, so the scan still reports it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from pgwarden.access.graph import RoleGraph
from pgwarden.cli.draft_apps import (
    AppGuess,
    AppsGuess,
    AppWeigher,
    SplitRole,
    entra_identities_apart,
    first_few,
)
from pgwarden.cli.draft_evidence import (
    Category,
    Claim,
    DsnSecret,
    EvidenceReader,
    session_uses,
)
from pgwarden.cli.draft_review import ReviewItem, ordered
from pgwarden.cli.draft_roles import AdminGuess, NonTenants, PlatformRole, guess_non_tenants
from pgwarden.model.config import Policy
from pgwarden.model.evidence import summarize_targets
from pgwarden.model.snapshot import (
    AZURE_ROLES,
    SECTION_NAMES,
    SYSTEM_DATABASES,
    Database,
    PostgresSnapshot,
)

DEFAULT_ADMIN_TOOLS = Policy().admin_application_names


@dataclass(frozen=True)
class TenancyGuess:
    """Admin, platform roles, apps, roles split between apps, and the review list."""

    admin: AdminGuess
    platform: tuple[PlatformRole, ...]
    apps: tuple[AppGuess, ...]
    split: tuple[SplitRole, ...]
    review: tuple[ReviewItem, ...]

    def to_json(self) -> dict[str, Any]:
        """The guess as data for tooling (``pgwarden init --json``)."""
        return {
            "admin": asdict(self.admin),
            "platform_roles": [asdict(p) for p in self.platform],
            "apps": [
                {
                    "name": app.name,
                    "name_from": app.name_from,
                    "databases": list(app.databases),
                    "roles": [asdict(r) for r in app.roles],
                    "identities": [asdict(i) for i in app.identities],
                    "grouped_because": list(app.grouped_because),
                    "secret": asdict(app.secret) if app.secret else None,
                    "suspected_cross_app_access": [asdict(c) for c in app.cross_access],
                }
                for app in self.apps
            ],
            "split_roles": [asdict(s) for s in self.split],
            "review": [item.to_json() for item in self.review],
        }


def app_databases(pg: PostgresSnapshot) -> list[Database]:
    """The databases that may be an app's: not system databases, not templates."""
    return [db for db in pg.databases if db.name not in SYSTEM_DATABASES and not db.is_template]


def guess_tenancy(
    pg: PostgresSnapshot,
    *,
    arm_admin: str | None = None,
    arm_server: str | None = None,
    secrets: Sequence[DsnSecret] = (),
    admin_tools: Sequence[str] = DEFAULT_ADMIN_TOOLS,
) -> TenancyGuess:
    """Weigh everything the server (and Azure, when read) shows into a tenancy."""
    databases = app_databases(pg)
    roles = {role.name: role for role in pg.roles}
    non_tenants = guess_non_tenants(pg, databases, arm_admin=arm_admin, arm_server=arm_server)
    excluded = non_tenants.names()
    candidates = {
        name
        for name, role in roles.items()
        if name not in excluded
        and name not in AZURE_ROLES
        and not name.startswith("pg_")
        and not role.superuser
        and not role.bootstrap_superuser
    }
    reader = EvidenceReader(pg, candidates, {db.name for db in databases}, secrets)
    claims = {
        role: by_db
        for role, by_db in reader.claims().items()
        # A NOLOGIN role is an app's only when it owns something: a group that only
        # holds grants (a reporting role) is judged by who belongs to it.
        if roles[role].login or _owns_anything(by_db)
    }
    graph = RoleGraph(pg.memberships)
    logins = frozenset(name for name in candidates if roles[name].login)
    apps = AppWeigher(databases, claims, graph, secrets, logins).weigh()
    apps = replace(apps, apps=tuple(entra_identities_apart(apps.apps, roles)))
    review = [
        *non_tenants.review,
        *_admin_in_use(pg, non_tenants, databases, secrets, admin_tools),
        *_apps_review(apps, role_names=roles.keys(), logins=logins, secrets=secrets),
        *_groups_review(pg, databases, apps, graph),
        *_visibility_review(pg, databases),
    ]
    return TenancyGuess(
        admin=non_tenants.admin,
        platform=non_tenants.platform,
        apps=apps.apps,
        split=apps.split,
        review=ordered(review),
    )


def _owns_anything(claims: Mapping[str, Claim]) -> bool:
    return any(e.category is Category.OWNING for c in claims.values() for e in c.evidence)


def _admin_in_use(
    pg: PostgresSnapshot,
    non_tenants: NonTenants,
    databases: Sequence[Database],
    secrets: Sequence[DsnSecret],
    admin_tools: Sequence[str],
) -> Iterator[ReviewItem]:
    """The admin working as an application: what PGW-ADM-001/002 will report."""
    admin = non_tenants.admin.role
    if admin is None:
        return
    names = {db.name for db in databases}
    for (user, database), use in sorted(session_uses(pg).items()):
        if user != admin or database not in names:
            continue
        apps = [
            a for a in use.applications if not any(fnmatch.fnmatchcase(a, p) for p in admin_tools)
        ]
        if apps:
            shown = ", ".join(repr(a) if a else "(empty)" for a in apps)
            yield ReviewItem(
                "high",
                "admin-in-use",
                f"database/{database}",
                f"the admin {admin} is logged in to {database} from {shown}: an application "
                "may run as the admin; the scan reports it (PGW-ADM-001), give that "
                "application its own role",
            )
    for secret in secrets:
        if secret.user == admin:
            yield ReviewItem(
                "high",
                "admin-secret",
                f"secret/{secret.label}",
                f"the DSN in {secret.label} logs in as the admin {admin} to "
                f"{secret.database or 'the server'}; the scan reports it (PGW-ADM-002)",
            )


def _apps_review(
    apps: AppsGuess,
    *,
    role_names: Collection[str],
    logins: frozenset[str],
    secrets: Sequence[DsnSecret],
) -> Iterator[ReviewItem]:
    """Doubts about the apps: split roles, cross-app reach, groupings, thin evidence."""
    for split in apps.split:
        yield ReviewItem(
            "high",
            "split-evidence",
            f"role/{split.role}",
            f"its evidence favours {' and '.join(split.apps)} equally ({split.evidence}): in "
            "no app, so the scan reports what it reaches; add it to the app it belongs to",
        )
    for app in apps.apps:
        by_role: dict[str, list[str]] = {}
        for access in app.cross_access:
            by_role.setdefault(access.role, []).append(access.reached())
        for role, reached in by_role.items():
            yield ReviewItem(
                "high",
                "cross-app-access",
                f"role/{role}",
                f"a role of {app.name} that also reaches {first_few(reached)}: kept as "
                "suspected cross-app access, not intent; the scan reports it",
            )
    for role, reach in apps.unplaced_reach.items():
        described = first_few([a.reached() for a in reach])
        yield ReviewItem(
            "medium",
            "unplaced-role",
            f"role/{role}",
            f"in no app, and reaches {described}: nothing says it belongs there, so the "
            "scan reports it; add it to an app if it is that app's",
        )
    for app in apps.apps:
        if len(app.databases) > 1:
            yield ReviewItem(
                "medium",
                "grouped-databases",
                f"app/{app.name}",
                f"{summarize_targets(app.databases)} are drafted as one app because "
                f"{first_few(app.grouped_because)}: split them if they are different apps",
            )
        if not app.roles:
            yield ReviewItem(
                "medium",
                "no-roles",
                f"app/{app.name}",
                f"nothing shows which role works in {summarize_targets(app.databases)} (no owner, "
                "session, secret or name): add its roles",
            )
        for member in app.roles:
            if not member.strong:
                yield ReviewItem(
                    "medium",
                    "weak-evidence",
                    f"role/{member.role}",
                    f"in {app.name} on its name alone ({member.evidence}): confirm it",
                )
    placed = {r.role for app in apps.apps for r in app.roles} | {s.role for s in apps.split}
    for role in sorted(logins - placed - set(apps.unplaced_reach)):
        yield ReviewItem(
            "low",
            "unowned-login",
            f"role/{role}",
            "a login role with no evidence of belonging to any app: in no app, so the "
            "scan reports it (PGW-ROLE-004); add it to its app or drop it",
        )
    for secret in secrets:
        if secret.user is None or secret.user not in role_names:
            who = (
                f"as {secret.user}, which is no role on this server"
                if secret.user
                else ("without naming a user")
            )
            yield ReviewItem(
                "medium",
                "secret-unknown-user",
                f"secret/{secret.label}",
                f"a DSN for this server that logs in {who}: check where it points",
            )


def _groups_review(
    pg: PostgresSnapshot,
    databases: Sequence[Database],
    apps: AppsGuess,
    graph: RoleGraph,
) -> Iterator[ReviewItem]:
    """NOLOGIN groups of no app holding CONNECT on app databases: access for whoever
    joins them."""
    placed = {r.role for app in apps.apps for r in app.roles}
    roles = {role.name: role for role in pg.roles}
    reached: dict[str, list[str]] = {}
    for db in databases:
        for item in db.acl:
            group = item.grantee
            if (
                group is not None
                and "CONNECT" in item.privileges
                and group not in placed
                and group in roles
                and not roles[group].login
                and not group.startswith("pg_")
                and group not in AZURE_ROLES
            ):
                reached.setdefault(group, []).append(db.name)
    for group, names in sorted(reached.items()):
        members = sorted(graph.user_names(group))
        yield ReviewItem(
            "low",
            "group-role",
            f"role/{group}",
            f"a group of no app holding CONNECT on {first_few(names)}; its members: "
            f"{first_few(members) or 'no one yet'}",
        )


def _visibility_review(pg: PostgresSnapshot, databases: Sequence[Database]) -> Iterator[ReviewItem]:
    """What init could not see, and so could not weigh."""
    details = pg.details_by_name()
    for db in databases:
        detail = details.get(db.name)
        if detail is not None and not detail.collected:
            yield ReviewItem(
                "medium",
                "database-unread",
                f"database/{db.name}",
                f"init could not look inside it ({detail.error}): who owns what there is "
                f"unknown; GRANT CONNECT ON DATABASE to {pg.connected_as} and run init again",
            )
        elif detail is not None and detail.unread:
            lost = ", ".join(
                f"{SECTION_NAMES.get(name, name)} ({why})"
                for name, why in sorted(detail.unread.items())
            )
            yield ReviewItem(
                "medium",
                "database-unread",
                f"database/{db.name}",
                f"init read it only in part: its {lost} could not be read, so what it "
                f"holds there was not weighed; let {pg.connected_as} read them and run init "
                "again",
            )
    gap = pg.gap("sessions")
    if pg.sessions is None:
        reason = gap.reason if gap else "pg_stat_activity was not read"
        yield ReviewItem(
            "medium",
            "sessions-unseen",
            "server/sessions",
            f"{reason}: which role works where is unknown; GRANT pg_monitor to "
            f"{pg.connected_as} and run init again",
        )
    elif not session_uses(pg):
        yield ReviewItem(
            "medium",
            "no-sessions",
            "server/sessions",
            f"no application session was seen in {pg.session_samples} sample(s): roles were "
            "weighed on ownership, secrets and names only; run init again while the "
            "applications are busy",
        )
