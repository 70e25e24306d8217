"""PGW-ENTRA: Microsoft Entra principals inside the database.

On a Flexible Server with Entra authentication each Entra principal is a PostgreSQL
role carrying a ``pgaadauth`` security label: a person (``user``), a group (its
members log in as the group's role) or a workload (``service``: a managed identity or
service principal). The tenancy map's ``identities`` tie an app to its workloads'
object ids, and so to their roles.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice

from pgwarden.access.graph import RolePath
from pgwarden.access.holdings import Holding, direct_holders, direct_holdings
from pgwarden.access.remediation import (
    capped_blocks,
    capped_statements,
    in_database,
    sql_comment,
)
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.evidence import MAX_LISTED, MAX_WAYS_SHOWN, put_capped, summarize_targets
from pgwarden.model.frameworks.catalogue import NIST_800_53
from pgwarden.model.snapshot import Role, ServerSnapshot
from pgwarden.rules.base import (
    Control,
    Rule,
    Section,
    ServerContext,
    Verdict,
    quote_ident,
    quote_literal,
)
from pgwarden.rules.control_sets import ADMIN_PRIVILEGES, AUTHENTICATORS
from pgwarden.rules.database_contents import holdings_unseen

ACCOUNT_MANAGEMENT = Control(NIST_800_53, "AC-2")


def entra_tenancy(
    snapshot: ServerSnapshot, context: ServerContext, rule_id: str
) -> Tenancy | Verdict:
    """The server's tenancy, or an error when the roles' Entra labels could not be read."""
    assert snapshot.postgres is not None
    gap = snapshot.postgres.gap("entra_labels")
    if gap is None:
        return Tenancy.of(snapshot, context)
    return Verdict(
        resource=f"server/{context.name}",
        status="error",
        message=f"{rule_id} could not be evaluated: {gap.reason}"
        + (f" (fix: {gap.fix})" if gap.fix else ""),
    )


def entra_roles(tenancy: Tenancy, kind: str) -> list[Role]:
    """The roles that are Entra principals of ``kind``, sorted by name."""
    return [r for name, r in sorted(tenancy.roles.items()) if r.entra_kind == kind]


def _holds(held: list[str]) -> dict[str, object]:
    """What a person holds, capped as every evidence list is (``model.evidence``)."""
    shown: dict[str, object] = {}
    put_capped(shown, "holds", held, len(held))
    return shown


def _capped(items: list[str]) -> list[str]:
    """A list nested in the evidence (the engine cuts only top-level ones): the first
    ``MAX_LISTED``, then how many more there are."""
    shown = items[:MAX_LISTED]
    if len(items) > MAX_LISTED:
        shown.append(f"… and {len(items) - MAX_LISTED} more")
    return shown


def _script(holdings: Iterable[Holding]) -> list[str]:
    """The REVOKEs of ``holdings``: server-wide ones first, then per database."""
    lines: list[str] = []
    by_database: dict[str, list[str]] = {}
    for holding in holdings:
        if holding.server_wide:
            lines.extend(holding.revoke)
        else:
            by_database.setdefault(holding.database, []).extend(holding.revoke)
    for database, statements in by_database.items():
        lines.append(in_database(database))
        lines.extend(statements)
    return list(dict.fromkeys(lines))


class PasswordLoginBesideEntraIdentity(Rule):
    """An app logs in with a password role although the map gives it an Entra identity.

    Once an app has a managed identity, its password role is a second way in: a
    long-lived secret that someone can copy, that outlives the deployment, and that
    neither conditional access nor the identity's own lifecycle governs. The seed's
    connection strings in Key Vault are such passwords.

    Violation: an app lists ``identities`` in the tenancy map, and one of its roles
    that can log in carries no ``pgaadauth`` label (it authenticates with a password),
    while ``[policy] require_entra_app_logins`` is true (the default).

    Fix: create the identity's role if it is missing (SELECT * FROM
    pgaadauth_create_principal_with_oid('ROLE', 'OBJECT_ID', 'service', false,
    false);), grant it what the password role holds, move the app to token
    authentication, then ALTER ROLE password_role NOLOGIN and delete its DSN secret.
    """

    id = "PGW-ENTRA-001"
    severity = "medium"
    controls = (*AUTHENTICATORS, ACCOUNT_MANAGEMENT)
    requires = (
        Section.TENANCY_MAP,
        Section.POSTGRES,
    )
    policy_switch = "require_entra_app_logins"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        tenancy = entra_tenancy(snapshot, context, self.id)
        if isinstance(tenancy, Verdict):
            yield tenancy
            return
        # Who the app's DSN secret logs in as, when Key Vault was read: evidence of use.
        secret_users = {
            a.app: a.secret.endpoint.user
            for a in (snapshot.azure.app_secrets or () if snapshot.azure else ())
            if a.secret is not None and a.secret.endpoint is not None
        }
        by_object_id = {
            r.entra_object_id: name for name, r in tenancy.roles.items() if r.entra_object_id
        }
        # Sessions seen per user, counted once: asked for each password role.
        sessions = Counter(
            s.user
            for s in tenancy.pg.sessions or ()
            if s.user is not None and s.database is not None
        )
        for app in context.server.app:
            if not app.identities:
                continue
            entra = {i: by_object_id[i] for i in app.identities if i in by_object_id}
            for name in app.roles:
                role = tenancy.roles.get(name)
                if role is None or not role.login or role.entra_kind is not None:
                    continue
                yield self._verdict(
                    app.name,
                    app.identities,
                    entra,
                    role,
                    sessions[role.name],
                    secret_users.get(app.name),
                )

    def _verdict(
        self,
        app: str,
        identities: tuple[str, ...],
        entra: dict[str, str],
        role: Role,
        sessions: int,
        secret_user: str | None,
    ) -> Verdict:
        missing = [i for i in identities if i not in entra]
        lines = capped_statements(
            [
                "SELECT * FROM pgaadauth_create_principal_with_oid("
                f"{quote_literal(f'{app}-{i[:8]}')}, {quote_literal(i)}, 'service', false, "
                "false);"
                for i in missing
            ],
            "one for each other identity of the app without a role",
            # Each is a long line: the first few show the way.
            limit=MAX_WAYS_SHOWN,
        )
        if missing:
            lines.insert(0, sql_comment("create the identity's role (as the Entra administrator):"))
        lines += [
            sql_comment(
                f"grant the identity's role what {role.name!r} holds, move the app to tokens, then:"
            ),
            f"ALTER ROLE {quote_ident(role.name)} NOLOGIN;",
        ]
        how = "logs in" if sessions or secret_user == role.name else "can log in"
        return Verdict(
            resource=f"role/{role.name}",
            principal=f"role/{role.name}",
            app=app,
            message=f"app {app!r} {how} with the password role {role.name!r} although the "
            f"tenancy map gives it the Entra identit{'y' if len(identities) == 1 else 'ies'} "
            f"{summarize_targets(identities)}"
            + (f" (no role carries {summarize_targets(missing)} yet)" if missing else ""),
            evidence=_entra_login_evidence(role, identities, entra, sessions, secret_user),
            remediation="\n".join(lines),
        )


def _entra_login_evidence(
    role: Role,
    identities: tuple[str, ...],
    entra: dict[str, str],
    sessions: int,
    secret_user: str | None,
) -> dict[str, object]:
    evidence: dict[str, object] = {"password_role": role.name}
    put_capped(evidence, "identities", identities, len(identities))
    entra_roles = sorted(entra.values())
    put_capped(evidence, "entra_roles", entra_roles, len(entra_roles))
    evidence["sessions_seen"] = sessions
    evidence["dsn_secret_user"] = secret_user
    return evidence


class EntraUserHoldsPrivileges(Rule):
    """A Microsoft Entra user (a person) holds privileges in an app database directly.

    Access granted to a person by name is invisible to the group reviews Entra runs,
    stays when the person changes team, and has to be found and revoked database by
    database when they leave. A person should reach an app's data through an Entra
    group whose role holds the privileges.

    Violation: a role labelled ``type=user`` by ``pgaadauth`` owns, or is named in the
    ACL of, an app database, one of its schemas or objects, or its default privileges
    (not the admin, a platform role or the auditor). With such a person on the server,
    an app database whose objects could not all be read is an error for that database.

    Fix: grant the privileges to an Entra group's role (SELECT * FROM
    pgaadauth_create_principal('GROUP_NAME', false, false);), add the person to the
    group in Entra, then revoke the person's own grants as the finding lists them.
    """

    id = "PGW-ENTRA-002"
    severity = "medium"
    controls = (ACCOUNT_MANAGEMENT, Control(NIST_800_53, "AC-6"), *ADMIN_PRIVILEGES)
    requires = (Section.TENANCY_MAP, Section.POSTGRES, Section.POSTGRES_DATABASE_DETAILS)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = entra_tenancy(snapshot, context, self.id)
        if isinstance(tenancy, Verdict):
            yield tenancy
            return
        people = [r for r in entra_roles(tenancy, "user") if not tenancy.is_non_tenant(r.name)]
        # Most servers have no Entra person: nothing to index then, nor to miss.
        holders = direct_holders(tenancy) if people else {}
        if people:
            yield from holdings_unseen(tenancy, self.id)
        for person in people:
            for database in sorted(holders.get(person.name, ())):
                holdings = direct_holdings(tenancy, person.name, database)
                if not holdings:
                    continue
                held = [h.what for h in holdings]
                yield Verdict(
                    resource=f"database/{database}",
                    principal=f"role/{person.name}",
                    app=tenancy.app_databases.get(database),
                    message=f"Entra user {person.name!r} holds privileges in database "
                    f"{database!r} of app {tenancy.app_databases.get(database)!r} in their "
                    f"own name: {'; '.join(held[:3])}"
                    + (f" (and {len(held) - 3} more)" if len(held) > 3 else ""),
                    evidence={
                        "role": person.name,
                        "entra_kind": person.entra_kind,
                        "object_id": person.entra_object_id,
                        "database": database,
                        **_holds(held),
                    },
                    remediation="\n".join(
                        [
                            sql_comment(
                                "first grant the same to an Entra group's role the person "
                                "belongs to; then:"
                            ),
                            *_script(holdings),
                        ]
                    ),
                )


class EntraGroupSpansApps(Rule):
    """A Microsoft Entra group's role holds privileges in two apps' databases.

    Every member of an Entra group logs in as the group's role. A group that reaches
    two apps' databases — by grants of its own or through roles it belongs to — joins
    the two tenants at the identity provider: whoever is added to the group for one
    app gets the other's data too, and the group owner, not the database owner,
    decides who that is.

    Violation: a role labelled ``type=group`` by ``pgaadauth`` (not a platform role)
    owns or is granted something — itself, or through a role whose privileges it
    uses — in app databases of two or more apps. With such a group on the server, an
    app database whose objects could not all be read is an error for that database.

    Fix: one Entra group per app: create a group role for each app (SELECT * FROM
    pgaadauth_create_principal('GROUP_NAME', false, false);), move the grants, and
    revoke from this group what reaches the other apps (the finding lists it per app).
    """

    id = "PGW-ENTRA-003"
    severity = "high"
    controls = (Control(NIST_800_53, "AC-6"), ACCOUNT_MANAGEMENT)
    requires = (Section.TENANCY_MAP, Section.POSTGRES, Section.POSTGRES_DATABASE_DETAILS)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = entra_tenancy(snapshot, context, self.id)
        if isinstance(tenancy, Verdict):
            yield tenancy
            return
        groups = [r for r in entra_roles(tenancy, "group") if not tenancy.is_non_tenant(r.name)]
        holders = direct_holders(tenancy) if groups else {}
        if groups:
            yield from holdings_unseen(tenancy, self.id)
        # Groups of one organisation share the roles they belong to (a reporting role
        # granted in every database): what those roles reach is gathered once per set
        # of them, not once per group and database.
        shared: dict[frozenset[str], _Reach] = {}
        for group in groups:
            paths = tenancy.graph.holders(group.name)
            through = frozenset(
                holder
                for holder in paths
                if holder != group.name and holder in holders and not tenancy.is_non_tenant(holder)
            )
            reach = shared.get(through)
            if reach is None:
                reach = shared[through] = _Reach(tenancy, holders, through)
            own: dict[str, list[str]] = {}
            for database in holders.get(group.name, ()):
                own.setdefault(tenancy.app_databases[database], []).append(database)
            verdict = _spanning(tenancy, group, paths, reach, own)
            if verdict is not None:
                yield verdict


class _Reach:
    """The app databases a set of roles holds something in, by app and database, with
    the roles that hold each."""

    def __init__(
        self, tenancy: Tenancy, holders: dict[str, frozenset[str]], roles: frozenset[str]
    ) -> None:
        self.by_app: dict[str, dict[str, set[str]]] = {}
        for holder in roles:
            for database in holders[holder]:
                app = tenancy.app_databases[database]
                self.by_app.setdefault(app, {}).setdefault(database, set()).add(holder)
        self.apps = sorted(self.by_app)


def _spanning(
    tenancy: Tenancy,
    group: Role,
    paths: dict[str, RolePath],
    reach: _Reach,
    own: dict[str, list[str]],
) -> Verdict | None:
    """ENTRA-003's finding on ``group``, which reaches ``reach`` through the roles it
    uses and holds something itself in ``own`` (databases by app); None when that is
    one app or none. Only the apps the finding shows are spelt out."""
    extra = sorted(app for app in own if app not in reach.by_app)
    total = len(reach.apps) + len(extra)
    if total < 2:
        return None
    apps = heapq.merge(reach.apps, extra)

    def databases(app: str) -> dict[str, set[str]]:
        """Each database of ``app`` the group reaches, with the roles holding it there."""
        held = {db: set(through) for db, through in reach.by_app.get(app, {}).items()}
        for database in own.get(app, ()):
            held.setdefault(database, set()).add(group.name)
        return held

    own_app = tenancy.role_apps.get(group.name)

    def blocks() -> Iterator[list[str]]:
        for app in heapq.merge(reach.apps, extra):
            if app == own_app:
                continue
            held = databases(app)
            block = [sql_comment(f"to keep the group out of app {app!r}:")]
            cuts = {holder for through in held.values() for holder in through}
            cuts.discard(group.name)
            for holder in sorted(cuts):
                member, role = paths[holder].edges[0]
                block += tenancy.revoke(member, role)
            if app in own:
                block += _script(
                    h
                    for database in sorted(held)
                    for h in direct_holdings(tenancy, group.name, database)
                )
            yield list(dict.fromkeys(block))

    shown = list(islice(apps, MAX_LISTED))
    blocked = total - (1 if own_app in reach.by_app or own_app in own else 0)
    # However many apps the group spans: the first few blocks, and a count.
    script = capped_blocks(blocks(), blocked, "one for each other app the evidence names")
    evidence: dict[str, object] = {
        "role": group.name,
        "entra_kind": group.entra_kind,
        "object_id": group.entra_object_id,
        "group_app": own_app,
        "apps": {
            app: _capped(
                [
                    db
                    + (
                        f" (through {', '.join(sorted(through - {group.name}))})"
                        if through - {group.name}
                        else ""
                    )
                    for db, through in sorted(databases(app).items())
                ]
            )
            for app in shown
        },
    }
    if total > MAX_LISTED:
        evidence["apps_total"] = total
    return Verdict(
        resource=f"role/{group.name}",
        principal=f"role/{group.name}",
        app=own_app,
        message=f"Entra group {group.name!r} holds privileges in the databases of "
        f"{total} apps ({summarize_targets([repr(a) for a in shown], total)}): every "
        "member of the group reaches them all",
        evidence=evidence,
        remediation="\n".join(dict.fromkeys(script)) if blocked else None,
    )


RULES = [PasswordLoginBesideEntraIdentity, EntraUserHoldsPrivileges, EntraGroupSpansApps]
