"""What a collected server shows about which role works in which database.

``pgwarden init`` weighs this evidence (``draft_tenancy``); nothing here decides. Each
piece is one observation a reviewer can check: ownership of the database, of schemas
and of objects inside it, default privileges set for the role, live sessions sampled,
an app's DSN secret naming the role, the similarity of the role's and the database's
names, and grants. Grants are *access*, not intent: a grant is exactly what a draft
must not turn into a statement of what the owners meant, so grants are shown and
never weighed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from pgwarden.access.graph import RoleGraph
from pgwarden.model.snapshot import Database, DatabaseDetail, PostgresSnapshot, Role

# pgwarden's own sessions (the init run itself, or a scan) say nothing about tenancy.
OWN_APPLICATION_NAME = "pgwarden"

# Name parts that say what kind of role or database something is, not whose it is.
GENERIC_NAME_PARTS = frozenset(
    {
        "admin",
        "api",
        "app",
        "application",
        "apps",
        "backend",
        "data",
        "database",
        "db",
        "dev",
        "login",
        "main",
        "migrator",
        "owner",
        "pg",
        "postgres",
        "prod",
        "production",
        "read",
        "reader",
        "ro",
        "role",
        "rw",
        "server",
        "service",
        "sql",
        "staging",
        "svc",
        "test",
        "user",
        "usr",
        "web",
        "worker",
        "write",
        "writer",
    }
)


class Category(StrEnum):
    """How much a kind of evidence says about intent."""

    OWNING = "owning"  # the role owns the database, schemas or objects there
    WORKING = "working"  # the role was seen logged in there
    DECLARED = "declared"  # an app's DSN secret logs in as the role there
    NAMING = "naming"  # the role's name resembles the database's
    ACCESS = "access"  # a grant: what a draft must not bless as intent


# Category of each kind, and its weight when the evidence is weighed (a grant's weight
# only orders the evidence shown: grants are never weighed).
KINDS: dict[str, tuple[Category, float]] = {
    "owns-database": (Category.OWNING, 3.0),
    "owns-schema": (Category.OWNING, 3.0),
    "owns-objects": (Category.OWNING, 3.0),
    "owns-through-group": (Category.OWNING, 2.0),
    "default-privileges": (Category.OWNING, 2.0),
    "sessions": (Category.WORKING, 2.0),
    "dsn-secret": (Category.DECLARED, 4.0),
    "name": (Category.NAMING, 2.0),
    "connect-grant": (Category.ACCESS, 1.0),
    "schema-grant": (Category.ACCESS, 0.5),
    "object-grant": (Category.ACCESS, 0.5),
}
STRONG = frozenset({Category.OWNING, Category.WORKING, Category.DECLARED})


@dataclass(frozen=True)
class Evidence:
    """One observation tying a role to a database, as a reviewer reads it."""

    kind: str
    text: str
    weight: float

    @property
    def category(self) -> Category:
        return KINDS[self.kind][0]


# Records one piece of evidence: (role, database, evidence).
AddEvidence = Callable[[str, str, Evidence], None]


def evidence(kind: str, text: str, factor: float = 1.0) -> Evidence:
    """Evidence of ``kind`` with its standard weight (times ``factor``)."""
    return Evidence(kind=kind, text=text, weight=KINDS[kind][1] * factor)


@dataclass
class Claim:
    """Everything tying one role to one database."""

    role: str
    database: str
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def intent(self) -> float:
        """The weight of everything but grants: what says the role belongs here."""
        return sum(e.weight for e in self.evidence if e.category is not Category.ACCESS)

    @property
    def strong(self) -> bool:
        """Owning, working or declared evidence: more than a name or a grant."""
        return any(e.category in STRONG for e in self.evidence)

    @property
    def naming_only(self) -> bool:
        return bool(self.evidence) and all(
            e.category in (Category.NAMING, Category.ACCESS) for e in self.evidence
        )

    def describe(self, *, names: bool = True) -> str:
        """The evidence, weightiest first (without name similarity unless ``names``)."""
        shown = [e for e in self.evidence if names or e.category is not Category.NAMING]
        return ", ".join(e.text for e in sorted(shown, key=lambda e: -e.weight))


@dataclass(frozen=True)
class DsnSecret:
    """A Key Vault secret holding a DSN for this server: where it is and whom it logs in as."""

    reference: str  # keyvault:VAULT/SECRET, as a map's ``secret`` line takes it
    vault: str
    name: str
    user: str | None
    database: str | None

    @property
    def label(self) -> str:
        return f"{self.vault}/{self.name}"


@dataclass(frozen=True)
class SessionUse:
    """The sampled sessions of one role in one database."""

    count: int
    applications: tuple[str, ...]

    def describe(self) -> str:
        names = ", ".join(repr(a) if a else "(empty)" for a in self.applications[:3])
        more = f" and {len(self.applications) - 3} more" if len(self.applications) > 3 else ""
        return f"{self.count} live session(s) from {names}{more}"


@lru_cache(maxsize=4096)
def name_parts(name: str) -> tuple[str, ...]:
    """The parts of a name that may say whose it is (lower case, generic parts dropped).

    A generic word followed by a number is one part, an identifier: ``app000_svc`` and
    ``app000_db0003`` share ``app000``, where ``app`` alone says nothing.
    """
    parts: list[str] = []
    generic: str | None = None  # the generic word just read, kept if a number follows
    for word in re.findall(r"[a-z]+|[0-9]+", name.lower()):
        if generic is not None and word.isdigit():
            parts.append(generic + word)
        elif word not in GENERIC_NAME_PARTS:
            parts.append(word)
        generic = word if word in GENERIC_NAME_PARTS else None
    return tuple(parts)


def _letters(part: str) -> int:
    return sum(1 for char in part if char.isalpha())


def _leading_stems(parts: tuple[str, ...]) -> list[str]:
    """The stems of a name's leading parts: ``temporal``, ``temporalvisibility``."""
    return ["".join(parts[:count]) for count in range(1, len(parts) + 1)]


def name_affinity(role: str, database: str) -> float:
    """How much the role's name says it is the database's: 1 same stem, 0.5 related, 0.

    ``secairadar_app`` and ``secairadar``, ``ctxeco_app`` and ``ctxEco`` share a stem.
    ``temporal_app`` and ``temporal_visibility`` are related: one name is the other's
    leading words. ``tenant1`` and ``tenant10`` are not (a stem is compared word by
    word), nor ``svc1`` and ``db1`` (digits alone are no name, and a generic word with a
    number is one word). ``app1_svc`` and ``app1_db`` share ``app1``.
    """
    role_parts, db_parts = name_parts(role), name_parts(database)
    if all(p.isdigit() for p in role_parts) or all(p.isdigit() for p in db_parts):
        return 0.0
    role_stem, db_stem = "".join(role_parts), "".join(db_parts)
    if role_stem == db_stem:
        return 1.0
    shorter, longer = sorted((role_parts, db_parts), key=lambda parts: len("".join(parts)))
    meaningful = any(_letters(p) >= 3 for p in shorter)
    return 0.5 if meaningful and "".join(shorter) in _leading_stems(longer) else 0.0


def related_names(names: Iterable[str]) -> Callable[[str], list[str]]:
    """A lookup of the ``names`` that may resemble a given name (``name_affinity`` then
    decides): one whose whole stem leads the other's, asked of two indexes instead of
    comparing every pair."""
    by_whole: dict[str, set[str]] = {}
    by_leading: dict[str, set[str]] = {}
    for name in names:
        stems = _leading_stems(name_parts(name))
        if stems:
            by_whole.setdefault(stems[-1], set()).add(name)
        for stem in stems:
            by_leading.setdefault(stem, set()).add(name)

    def lookup(name: str) -> list[str]:
        stems = _leading_stems(name_parts(name))
        if not stems:
            return []
        found = set(by_leading.get(stems[-1], ()))
        for stem in stems:
            found.update(by_whole.get(stem, ()))
        return sorted(found)

    return lookup


def session_uses(pg: PostgresSnapshot) -> dict[tuple[str, str], SessionUse]:
    """The sampled sessions of each (role, database), pgwarden's own left out."""
    counts: Counter[tuple[str, str]] = Counter()
    apps: dict[tuple[str, str], list[str]] = {}
    for session in pg.sessions or ():
        if session.user is None or session.database is None:
            continue
        if session.application_name == OWN_APPLICATION_NAME:
            continue
        key = (session.user, session.database)
        counts[key] += 1
        names = apps.setdefault(key, [])
        if session.application_name not in names:
            names.append(session.application_name)
    return {key: SessionUse(count, tuple(sorted(apps[key]))) for key, count in counts.items()}


def _plural(count: int, kind: str) -> str:
    return f"{count} {kind}" + ("" if count == 1 else "s")


def _owned_objects(detail: DatabaseDetail) -> dict[str, str]:
    """Each owner's relations in one database, described ("2 tables, 1 view")."""
    by_owner: dict[str, list[str]] = {}
    for owned in detail.ownership:
        by_owner.setdefault(owned.role, []).append(_plural(owned.count, owned.kind))
    return {role: ", ".join(kinds) for role, kinds in by_owner.items()}


@dataclass
class EvidenceReader:
    """Gathers the claims of candidate roles on the app databases of one server."""

    pg: PostgresSnapshot
    candidates: Collection[str]
    databases: Collection[str]
    secrets: Iterable[DsnSecret] = ()

    def claims(self) -> dict[str, dict[str, Claim]]:
        """role → database → claim, for every candidate with any evidence anywhere."""
        roles: Mapping[str, Role] = {role.name: role for role in self.pg.roles}
        graph = RoleGraph(self.pg.memberships)
        found: dict[str, dict[str, Claim]] = {}

        def add(role: str, database: str, item: Evidence) -> None:
            if role in self.candidates and database in self.databases:
                claims = found.setdefault(role, {})
                claims.setdefault(database, Claim(role, database)).evidence.append(item)

        databases = [db for db in self.pg.databases if db.name in self.databases]
        details = self.pg.details_by_name()
        for db in databases:
            self._database_level(db, add)
            detail = details.get(db.name)
            if detail is not None and detail.collected:
                self._inside(detail, add)
        for (role, database), use in sorted(session_uses(self.pg).items()):
            add(role, database, evidence("sessions", use.describe()))
        for secret in self.secrets:
            if secret.user and secret.database:
                add(secret.user, secret.database, evidence("dsn-secret", f"secret {secret.label}"))
        related = related_names(db.name for db in databases)
        for role in sorted(self.candidates):
            for database in related(role):
                affinity = name_affinity(role, database)
                if affinity:
                    word = "matches" if affinity == 1.0 else "resembles"
                    add(role, database, evidence("name", f"name {word} {database}", affinity))
        self._through_groups(found, roles, graph, add)
        return found

    @staticmethod
    def _database_level(db: Database, add: AddEvidence) -> None:
        add(db.owner, db.name, evidence("owns-database", "owns the database"))
        for item in db.acl:
            if item.grantee is not None and "CONNECT" in item.privileges:
                add(item.grantee, db.name, evidence("connect-grant", "CONNECT granted to it"))

    @staticmethod
    def _inside(detail: DatabaseDetail, add: AddEvidence) -> None:
        for schema in detail.schemas:
            add(schema.owner, detail.name, evidence("owns-schema", f"owns schema {schema.name}"))
            for item in schema.acl:
                if item.grantee is not None and item.grantee != schema.owner:
                    text = f"{'/'.join(item.privileges)} on schema {schema.name}"
                    add(item.grantee, detail.name, evidence("schema-grant", text))
        for role, described in sorted(_owned_objects(detail).items()):
            add(role, detail.name, evidence("owns-objects", f"owns {described}"))
        for role in sorted({d.role for d in detail.default_privileges}):
            add(role, detail.name, evidence("default-privileges", "default privileges set for it"))
        granted: dict[str, list[str]] = {}
        for grant in detail.object_grants:
            if grant.grantee is not None:
                column = f" ({grant.column})" if grant.column is not None else ""
                what = f"{'/'.join(grant.privileges)} on {grant.schema_name}.{grant.name}{column}"
                granted.setdefault(grant.grantee, []).append(what)
        for role, objects in sorted(granted.items()):
            more = f" and {len(objects) - 2} more object(s)" if len(objects) > 2 else ""
            text = ", ".join(sorted(objects)[:2]) + more
            add(role, detail.name, evidence("object-grant", text))

    def _through_groups(
        self,
        found: dict[str, dict[str, Claim]],
        roles: Mapping[str, Role],
        graph: RoleGraph,
        add: AddEvidence,
    ) -> None:
        """A login role inherits the ownership of the NOLOGIN group it belongs to (an
        app's owner role): the group's objects are its app's, and so is the member."""
        owning: dict[str, list[str]] = {}
        for role, claims in found.items():
            if role in roles and not roles[role].login:
                for database, claim in sorted(claims.items()):
                    if any(e.kind in ("owns-schema", "owns-objects") for e in claim.evidence):
                        owning.setdefault(role, []).append(database)
        if not owning:
            return
        for role in sorted(self.candidates):
            if role not in roles or not roles[role].login:
                continue
            for holder in graph.holders(role):
                for database in owning.get(holder, ()) if holder != role else ():
                    add(role, database, evidence("owns-through-group", f"owns through {holder}"))
