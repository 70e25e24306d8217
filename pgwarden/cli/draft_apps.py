"""Apps and their roles, weighed from the evidence (``draft_evidence``) for ``pgwarden init``.

Each role goes to the database its evidence favours most (grants are shown, never
weighed); a role whose evidence is split evenly between apps goes to none. Databases
are one app when a role leads the evidence in both (it owns or works in each, and no
other role leads there), or when a database has nothing but a role's name to go by
and that role's app is elsewhere (``temporal_visibility`` with ``temporal``). What a
role reaches beyond its own app is kept as suspected cross-app access: the scan
reports it, the draft never makes it intent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from pgwarden.access.graph import RoleGraph
from pgwarden.cli.draft_evidence import Claim, DsnSecret, name_affinity, name_parts
from pgwarden.model.snapshot import Database, Role

Claims = Mapping[str, Mapping[str, Claim]]


@dataclass(frozen=True)
class AppRole:
    """A role of an app and the evidence for it, per database of the app."""

    role: str
    evidence: str
    strong: bool


@dataclass(frozen=True)
class AppIdentity:
    """A Microsoft Entra service principal (managed identity) an app logs in as.

    Its PostgreSQL role carries a ``pgaadauth`` security label; the map names it by
    object id in ``identities``, not in ``roles``.
    """

    role: str
    object_id: str
    evidence: str


@dataclass(frozen=True)
class CrossAccess:
    """A way a role reaches another app: a database (or, when None, a role) of it."""

    role: str
    app: str
    database: str | None
    how: str

    def reached(self) -> str:
        """What is reached and how, without the role."""
        where = self.database if self.database is not None else f"app {self.app}"
        return f"{where}: {self.how}"

    def describe(self) -> str:
        return f"{self.role} → {self.reached()}"


@dataclass(frozen=True)
class SecretGuess:
    """The app's DSN secret as a map's ``secret`` line, and why that one."""

    reference: str
    why: str


@dataclass(frozen=True)
class AppGuess:
    """One app of the draft."""

    name: str
    name_from: str
    databases: tuple[str, ...]
    roles: tuple[AppRole, ...]
    grouped_because: tuple[str, ...] = ()
    secret: SecretGuess | None = None
    cross_access: tuple[CrossAccess, ...] = ()
    identities: tuple[AppIdentity, ...] = ()


@dataclass(frozen=True)
class SplitRole:
    """A role whose evidence favours several apps equally: in none of them."""

    role: str
    apps: tuple[str, ...]
    evidence: str


@dataclass(frozen=True)
class AppsGuess:
    """The apps, the roles left out of them, and what every role reaches elsewhere."""

    apps: tuple[AppGuess, ...]
    split: tuple[SplitRole, ...]
    unplaced_reach: dict[str, tuple[CrossAccess, ...]] = field(default_factory=dict)


def first_few(texts: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` of ``texts`` joined, then how many more: a draft's comment
    names a few of anything, however many databases an app or a role spans."""
    more = f"; and {len(texts) - shown} more" if len(texts) > shown else ""
    return "; ".join(texts[:shown]) + more


def favourites(claims: Mapping[str, Claim]) -> list[str]:
    """The databases a role's evidence favours most (several on a tie)."""
    ranked = [claim for claim in claims.values() if claim.intent > 0]
    if not ranked:
        return []
    best = max(claim.intent for claim in ranked)
    return sorted(claim.database for claim in ranked if claim.intent == best)


class _Groups:
    """Union-find over database names."""

    def __init__(self, names: Sequence[str]) -> None:
        self._parent = {name: name for name in names}

    def find(self, name: str) -> str:
        while self._parent[name] != name:
            self._parent[name] = self._parent[self._parent[name]]
            name = self._parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        first, second = sorted((self.find(a), self.find(b)))
        self._parent[second] = first


def _claimants(claims: Claims) -> dict[str, list[str]]:
    """database → the roles with any claim on it."""
    found: dict[str, list[str]] = {}
    for role, by_db in sorted(claims.items()):
        for database in by_db:
            found.setdefault(database, []).append(role)
    return found


def _leaders(claims: Claims, roles: Sequence[str], database: str) -> list[str]:
    """The roles whose intent in ``database`` is highest (several on a tie)."""
    scores = {role: claims[role][database].intent for role in roles}
    best = max(scores.values(), default=0.0)
    return [role for role, score in scores.items() if score == best] if best > 0 else []


def group_databases(
    databases: Sequence[str], claims: Claims
) -> tuple[list[list[str]], dict[str, list[str]]]:
    """The databases grouped into apps, and why each group of several was joined.

    A role joins a database to its favourite's app when it alone leads the evidence
    there with more than a name; or with its name alone, when no other role shows any
    intent there at all.
    """
    claimants = _claimants(claims)
    leaders = {db: _leaders(claims, roles, db) for db, roles in claimants.items()}
    groups = _Groups(databases)
    links: list[tuple[str, str]] = []
    for role in sorted(claims):
        favoured = favourites(claims[role])
        if not favoured:
            continue
        anchor = favoured[0]
        for database, claim in sorted(claims[role].items()):
            if database == anchor or leaders[database] != [role]:
                continue
            alone = all(
                claims[other][database].intent == 0
                for other in claimants[database]
                if other != role
            )
            if claim.strong or (claim.naming_only and alone):
                groups.union(anchor, database)
                links.append((anchor, f"{role} leads in {database} ({claim.describe()})"))
    members: dict[str, list[str]] = {}
    for name in databases:
        members.setdefault(groups.find(name), []).append(name)
    reasons: dict[str, list[str]] = {}
    for anchor, reason in links:
        reasons.setdefault(groups.find(anchor), []).append(reason)
    return [sorted(names) for _root, names in sorted(members.items())], reasons


_VAULT_SUFFIX = re.compile(r"[-_]?(kv|keyvault|vault)$", re.IGNORECASE)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "app"


def app_name(databases: Sequence[str], anchor: str, secret: DsnSecret | None) -> tuple[str, str]:
    """The app's name and where it came from: its vault, its databases' shared stem,
    or its leading database."""
    if secret is not None:
        stem = _VAULT_SUFFIX.sub("", secret.vault)
        if stem and any(name_affinity(stem, db) == 1.0 for db in databases):
            return _slug(stem), f"after its vault {secret.vault}"
    if len(databases) == 1:
        return _slug(databases[0]), "after its database"
    words = [re.findall(r"[a-z0-9]+", db.lower()) for db in databases]
    common: list[str] = []
    for parts in zip(*words, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    if "".join(common) and name_parts("_".join(common)):
        return _slug("-".join(common)), "after the stem its databases share"
    return _slug(anchor), f"after {anchor}, where its roles' evidence is strongest"


def connect_reach(databases: Sequence[Database], graph: RoleGraph) -> dict[str, dict[str, str]]:
    """role → database → how it may CONNECT other than through PUBLIC.

    Only the owner and the CONNECT grantees of a database can let a role in: their
    users are asked of the role graph once per grantee, not once per role.
    """
    found: dict[str, dict[str, str]] = {}
    for db in databases:
        grantees = [i.grantee for i in db.acl if i.grantee and "CONNECT" in i.privileges]
        for grantee in grantees:
            found.setdefault(grantee, {})[db.name] = "CONNECT granted to it"
        for grantee in grantees:
            for user in graph.user_names(grantee):
                found.setdefault(user, {}).setdefault(db.name, f"may CONNECT through {grantee}")
        for user in graph.user_names(db.owner):
            found.setdefault(user, {})[db.name] = f"may act as its owner {db.owner}"
    return found


@dataclass
class AppWeigher:
    """Weighs the claims of one server into apps.

    ``logins``: the login roles that may be tenants; those that end in no app have
    their reach shown too (the scan judges them as logins of no app).
    """

    databases: Sequence[Database]
    claims: Claims
    graph: RoleGraph
    secrets: Sequence[DsnSecret] = ()
    logins: frozenset[str] = frozenset()
    _connect: dict[str, dict[str, str]] = field(init=False)
    _order: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self._connect = connect_reach(self.databases, self.graph)
        # Each database's place on the server, to list what a role reaches in order
        # without walking every database for every role.
        self._order = {db.name: index for index, db in enumerate(self.databases)}

    def weigh(self) -> AppsGuess:
        """The apps, the roles split between apps, and what unplaced roles reach."""
        groups, reasons = group_databases([db.name for db in self.databases], self.claims)
        group_of = {db: index for index, group in enumerate(groups) for db in group}
        members: dict[int, list[str]] = {}
        split: list[tuple[str, list[int]]] = []
        for role in sorted(self.claims):
            favoured = {group_of[db] for db in favourites(self.claims[role])}
            if len(favoured) == 1:
                members.setdefault(favoured.pop(), []).append(role)
            elif favoured:
                split.append((role, sorted(favoured)))
        drafts: list[AppGuess] = []
        taken: set[str] = set()
        for index, group in enumerate(groups):
            roles = members.get(index, [])
            secret, secret_guess = self._secret_of(group, roles)
            name, name_from = app_name(group, self._anchor(group, roles), secret)
            while name in taken:
                name += "-2"
            taken.add(name)
            drafts.append(
                AppGuess(
                    name=name,
                    name_from=name_from,
                    databases=tuple(group),
                    roles=tuple(self._app_role(role, group) for role in roles),
                    grouped_because=tuple(reasons.get(group[0], ())),
                    secret=secret_guess,
                )
            )
        app_of_db = {db: drafts[index].name for db, index in group_of.items()}
        app_of_role = {role: drafts[i].name for i, roles in members.items() for role in roles}
        apps = tuple(
            replace(
                app,
                cross_access=tuple(
                    access
                    for member in app.roles
                    for access in self._reach(member.role, app.name, app_of_db, app_of_role)
                ),
            )
            for app in drafts
        )
        # Split roles say what they reach with their evidence; the other logins of no
        # app are shown what they may reach.
        unplaced: dict[str, tuple[CrossAccess, ...]] = {}
        for role in sorted(self.logins - app_of_role.keys() - {role for role, _ in split}):
            reach = self._reach(role, None, app_of_db, app_of_role)
            if reach:
                unplaced[role] = tuple(reach)
        return AppsGuess(
            apps=apps,
            split=tuple(
                SplitRole(
                    role,
                    tuple(drafts[i].name for i in indexes),
                    self._describe(role, sorted(self.claims[role])),
                )
                for role, indexes in split
            ),
            unplaced_reach=unplaced,
        )

    def _describe(self, role: str, databases: Sequence[str]) -> str:
        claims = self.claims.get(role, {})
        return first_few([f"{db}: {claims[db].describe()}" for db in databases if db in claims])

    def _app_role(self, role: str, group: Sequence[str]) -> AppRole:
        claims = self.claims[role]
        return AppRole(
            role=role,
            evidence=self._describe(role, group),
            strong=any(claims[db].strong for db in group if db in claims),
        )

    def _anchor(self, group: Sequence[str], roles: Sequence[str]) -> str:
        """The database of the group where its roles' evidence is strongest."""

        def weight(db: str) -> float:
            return sum(self.claims[r][db].intent for r in roles if db in self.claims[r])

        return max(group, key=lambda db: (weight(db), -group.index(db)))

    def _secret_of(
        self, group: Sequence[str], roles: Sequence[str]
    ) -> tuple[DsnSecret | None, SecretGuess | None]:
        """The app's DSN secret: one naming its databases, its own role's first."""
        found = [s for s in self.secrets if s.database in group]
        if not found:
            return None, None
        found.sort(key=lambda s: (s.user not in roles, s.label))
        chosen = found[0]
        why = f"its DSN logs in as {chosen.user} to {chosen.database}"
        if len(found) > 1:
            why += f"; also found: {', '.join(s.label for s in found[1:])}"
        return chosen, SecretGuess(chosen.reference, why)

    def _reach(
        self,
        role: str,
        own_app: str | None,
        app_of_db: Mapping[str, str],
        app_of_role: Mapping[str, str],
    ) -> list[CrossAccess]:
        """Everything ``role`` shows or may do in apps other than ``own_app``."""
        how: dict[str, list[str]] = {}
        for db, claim in self.claims.get(role, {}).items():
            # A name that resembles another app's database reaches nothing.
            if described := claim.describe(names=False):
                how.setdefault(db, []).append(described)
        for db, via in self._connect.get(role, {}).items():
            shown = how.setdefault(db, [])
            if not (shown and via == "CONNECT granted to it"):  # already in the evidence
                shown.append(via)
        order = self._order
        found = [
            CrossAccess(role, app_of_db[db], db, ", ".join(how[db]))
            for db in sorted((db for db in how if db in order), key=order.__getitem__)
            if app_of_db[db] != own_app
        ]
        for group in sorted(self.graph.holders(role)):
            other = app_of_role.get(group)
            if group != role and other is not None and other != own_app:
                found.append(CrossAccess(role, other, None, f"member of {group}"))
        return found


def entra_identities_apart(apps: Sequence[AppGuess], roles: Mapping[str, Role]) -> list[AppGuess]:
    """Each app's Entra service principals moved from its roles to its identities.

    A managed identity's role is named after the identity, not the database, so the map
    says who it is by object id (``identities``); rules link the two through the label.
    """
    moved: list[AppGuess] = []
    for app in apps:
        services = [
            r
            for r in app.roles
            if (role := roles.get(r.role)) is not None
            and role.entra_kind == "service"
            and role.entra_object_id
        ]
        if not services:
            moved.append(app)
            continue
        identities = tuple(
            AppIdentity(r.role, roles[r.role].entra_object_id or "", r.evidence) for r in services
        )
        kept = tuple(r for r in app.roles if r not in services)
        moved.append(replace(app, roles=kept, identities=app.identities + identities))
    return moved
