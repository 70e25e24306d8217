"""PGW-MAP: the tenancy map against the live server."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.evidence import put_capped
from pgwarden.model.frameworks.catalogue import NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict, quote_ident

INVENTORY = Control(NIST_800_53, "CM-8")


class UnmappedDatabase(Rule):
    """A database on the server belongs to no app.

    An unmapped database is outside every isolation check: nobody has said which app
    may reach it, so nobody notices when everyone can. System databases (postgres,
    template0, template1, azure_maintenance, azure_sys) are exempt.

    Violation: a non-system database that no ``[[server.app]]`` lists.

    Fix: add the database to the app that owns it in pgwarden.toml, or drop it if it
    is abandoned.
    """

    id = "PGW-MAP-001"
    severity = "low"
    requires = (Section.TENANCY_MAP, Section.POSTGRES)
    controls = (INVENTORY,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        assert snapshot.postgres is not None
        mapped = context.app_databases()
        # The same list on every finding: the first few show the map's naming.
        shown: dict[str, object] = {}
        put_capped(
            shown,
            "mapped_databases",
            sorted(mapped),
            len(mapped),
            "the databases of each [[server.app]] in the tenancy map",
        )
        for db in snapshot.postgres.databases:
            if db.is_template or context.is_system_database(db.name):
                continue
            if db.name in mapped:
                if context.include_passed:
                    yield Verdict(
                        resource=f"database/{db.name}",
                        app=mapped[db.name],
                        status="pass",
                        message=f"database {db.name!r} belongs to app {mapped[db.name]!r}",
                        evidence={"owner": db.owner, "app": mapped[db.name]},
                    )
                continue
            evidence: dict[str, object] = {"owner": db.owner, **shown}
            yield Verdict(
                resource=f"database/{db.name}",
                message=f"database {db.name!r} belongs to no app in the tenancy map",
                evidence=evidence,
                remediation=(
                    f"Add {db.name!r} to the databases of its app in the config, or, if it is "
                    f"abandoned: DROP DATABASE {quote_ident(db.name)};"
                ),
            )


class MissingMappedObject(Rule):
    """A database or role named in the tenancy map does not exist on the server.

    A map that names what is not there is a map nobody checks: the app may log in as
    another role than the one the map guards, or its database may live elsewhere.

    Violation: an app's database or role that the server does not have (names are
    compared exactly: PostgreSQL names are case-sensitive).

    Fix: correct the name in pgwarden.toml (mind the case), or create the role or
    database the app is meant to use.
    """

    id = "PGW-MAP-002"
    severity = "medium"
    requires = (Section.TENANCY_MAP, Section.POSTGRES)
    controls = (INVENTORY, Control(NIST_800_53, "AC-2"))

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        pg = snapshot.postgres
        assert pg is not None
        databases = {db.name for db in pg.databases}
        roles = {role.name for role in pg.roles}
        folded_dbs = {name.lower(): name for name in databases}
        folded_roles = {name.lower(): name for name in roles}
        for app in context.server.app:
            if context.include_passed:
                yield from _found(app.name, app.databases, databases, "database")
                yield from _found(app.name, app.roles, roles, "role")
            for name in app.databases:
                if name not in databases:
                    near = folded_dbs.get(name.lower())
                    yield Verdict(
                        resource=f"database/{name}",
                        app=app.name,
                        message=f"app {app.name!r} names database {name!r}, which does not exist"
                        + (f" (did you mean {near!r}?)" if near else ""),
                        evidence={"app": app.name, "similar": near},
                        remediation=(
                            f"Correct the name in the config to {near!r}"
                            if near
                            else "Correct the name in the config, or "
                            f"CREATE DATABASE {quote_ident(name)};"
                        ),
                    )
            for name in app.roles:
                if name not in roles:
                    near = folded_roles.get(name.lower())
                    yield Verdict(
                        resource=f"role/{name}",
                        principal=f"role/{name}",
                        app=app.name,
                        message=f"app {app.name!r} names role {name!r}, which does not exist"
                        + (f" (did you mean {near!r}?)" if near else ""),
                        evidence={"app": app.name, "similar": near},
                        remediation=(
                            f"Correct the name in the config to {near!r}"
                            if near
                            else "Correct the name in the config, or create the role: "
                            f"CREATE ROLE {quote_ident(name)} LOGIN CONNECTION LIMIT 20;"
                        ),
                    )


def _found(app: str, names: Iterable[str], present: set[str], kind: str) -> Iterable[Verdict]:
    """Pass records of the map's names the server has."""
    for name in names:
        if name in present:
            yield Verdict(
                resource=f"{kind}/{name}",
                app=app,
                status="pass",
                message=f"{kind} {name!r} of app {app!r} exists on the server",
                evidence={"app": app, kind: name},
            )


RULES = [UnmappedDatabase, MissingMappedObject]
