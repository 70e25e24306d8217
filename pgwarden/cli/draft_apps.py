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

from pgwarden.access.analysis import RoleGraph
from pgwarden.cli.draft_evidence import Claim, DsnSecret, name_affinity, name_parts
from pgwarden.model.snapshot import Database

Claims = Mapping[str, Mapping[str, Claim]]


@dataclass(frozen=True)
class AppRole:
    """A role of an app and the evidence for it, per database of the app."""

    role: str
    evidence: str
    strong: bool


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


def favourites(claims: Mapping[str, Claim]) -> list[str]:
    """The databases a role's evidence favours most (several on a tie)."""
    ranked = [claim for claim in claims.values() if claim.intent > 0]
    if not ranked:
        return []
    best = max(claim.intent for claim in ranked)
    return sorted(claim.database for claim in ranked if claim.intent == best)


def leaders(claims: Claims, database: str) -> list[str]:
    """The roles whose intent in ``database`` is highest (several on a tie)."""
    scores = {
        role: by_db[database].intent
        for role, by_db in claims.items()
        if database in by_db and by_db[database].intent > 0
    }
    if not scores:
        return []
    best = max(scores.values())
    return sorted(role for role, score in scores.items() if score == best)


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


def _joins(claims: Claims, role: str, anchor: str, database: str) -> bool:
    """Whether ``role``'s evidence makes ``database`` part of the app of ``anchor``."""
    claim = claims[role][database]
    if database == anchor or claim.intent <= 0 or leaders(claims, database) != [role]:
        return False
    if claim.strong:
        return True
    # Only a name to go by: join when no other role shows any intent there.
    others = [r for r, by_db in claims.items() if r != role and database in by_db]
    return claim.naming_only and all(claims[r][database].intent == 0 for r in others)


def group_databases(
    databases: Sequence[str], claims: Claims
) -> tuple[list[list[str]], dict[str, list[str]]]:
    """The databases grouped into apps, and why each group of several was joined."""
    groups = _Groups(databases)
    links: list[tuple[str, str]] = []
    for role in sorted(claims):
        favoured = favourites(claims[role])
        if not favoured:
            continue
        anchor = favoured[0]
        for database in sorted(claims[role]):
            if _joins(claims, role, anchor, database):
                groups.union(anchor, database)
                claim = claims[role][database]
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


def _connect_via(db: Database, role: str, graph: RoleGraph) -> str | None:
    """How ``role`` may CONNECT to ``db`` other than through PUBLIC (None: it may not)."""
    if db.owner != role and graph.can_use(role, db.owner):
        return f"may act as its owner {db.owner}"
    for item in db.acl:
        if item.grantee is None or "CONNECT" not in item.privileges:
            continue
        if item.grantee == role:
            return "CONNECT granted to it"
        if graph.can_use(role, item.grantee):
            return f"may CONNECT through {item.grantee}"
    return None


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
        return "; ".join(f"{db}: {claims[db].describe()}" for db in databases if db in claims)

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
        found: list[CrossAccess] = []
        claims = self.claims.get(role, {})
        for db in self.databases:
            app = app_of_db[db.name]
            if app == own_app:
                continue
            how = [claims[db.name].describe()] if db.name in claims else []
            via = _connect_via(db, role, self.graph)
            if via is not None and not (via == "CONNECT granted to it" and how):
                how.append(via)
            if how:
                found.append(CrossAccess(role, app, db.name, ", ".join(how)))
        for group in sorted(self.graph.holders(role)):
            other = app_of_role.get(group)
            if group != role and other is not None and other != own_app:
                found.append(CrossAccess(role, other, None, f"member of {group}"))
        return found
