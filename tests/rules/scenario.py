"""Scenarios for the rule tests: a real server set up as a tenancy map describes, scanned.

A scenario resets the shared test server, recreates Azure's own roles and databases
with an admin shaped like Azure's (CREATEDB CREATEROLE, member of ``azure_pg_admin``,
no SUPERUSER), a non-superuser auditor in ``pg_monitor``, the apps' databases (owned
by the admin) and roles (created by the admin, as on Azure), then runs the scenario's
own SQL as the bootstrap superuser. Scans go through the same path
as ``pgwarden scan``: ``collect`` then ``evaluate`` with every registered rule.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgwarden.cli.flexible_server import as_admin, create_flexible_server
from pgwarden.cli.localpg import SUPERUSER, LocalServer
from pgwarden.collect.run import collect
from pgwarden.engine import evaluate
from pgwarden.model.config import Config, parse_config
from pgwarden.model.results import Finding, Results
from pgwarden.model.snapshot import DatabaseDetail, Snapshot
from pgwarden.rules.registry import load_rules
from tests.pgserver import reset_server

ADMIN = "pgw_admin"
AUDITOR = "pgw_auditor"
SERVER = "shared-db"

# The rule ids this pack owns; other engineers' rules run too but are not judged here.
OWN_RULES = (
    "PGW-ADM-001",
    "PGW-ISO-001",
    "PGW-ISO-002",
    "PGW-ISO-003",
    "PGW-ISO-004",
    "PGW-ISO-005",
    "PGW-ISO-006",
    "PGW-ROLE-001",
    "PGW-ROLE-002",
    "PGW-ROLE-003",
    "PGW-ROLE-004",
    "PGW-AUTH-001",
)

Key = tuple[str, str, str | None]

# server_version_num of the releases whose semantics the expected findings follow.
PG14 = 140000
PG15 = 150000
PG16 = 160000
PG17 = 170000
PG18 = 180000


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, \\uXXXX included)."""
    return json.dumps(value)


@dataclass(frozen=True)
class App:
    """One app of the scenario's tenancy map."""

    name: str
    databases: tuple[str, ...]
    roles: tuple[str, ...]
    connection_budget: int | None = None
    identities: tuple[str, ...] = ()


@dataclass
class Scenario:
    """A set-up server, its tenancy map and the passwords of its login roles."""

    server: LocalServer
    apps: tuple[App, ...]
    passwords: dict[str, str]
    platform_roles: tuple[str, ...] = (AUDITOR,)
    policy: str = "session_samples = 1\nsession_window_seconds = 0"
    _config: Config | None = field(default=None, repr=False)

    def dsn(self, role: str, dbname: str = "postgres") -> str:
        return self.server.dsn(role, self.passwords[role], dbname)

    def superuser(self, dbname: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.server.dsn(dbname=dbname), autocommit=True)

    def execute(self, dbname: str, statements: Iterable[str | sql.Composed | sql.SQL]) -> None:
        with self.superuser(dbname) as conn:
            for statement in statements:
                conn.execute(statement)

    @property
    def config_text(self) -> str:
        lines = [
            "[policy]",
            self.policy,
            "",
            "[[server]]",
            f"name = {toml_string(SERVER)}",
            f"dsn = {toml_string(self.dsn(AUDITOR))}",
            f"admin_role = {toml_string(ADMIN)}",
            f"platform_roles = [{', '.join(toml_string(r) for r in self.platform_roles)}]",
        ]
        for app in self.apps:
            lines += [
                "",
                "[[server.app]]",
                f"name = {toml_string(app.name)}",
                f"databases = [{', '.join(toml_string(d) for d in app.databases)}]",
                f"roles = [{', '.join(toml_string(r) for r in app.roles)}]",
            ]
            if app.connection_budget is not None:
                lines.append(f"connection_budget = {app.connection_budget}")
            if app.identities:
                lines.append(f"identities = [{', '.join(toml_string(i) for i in app.identities)}]")
        return "\n".join(lines) + "\n"

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = parse_config(self.config_text, "scenario.toml")
        return self._config

    def collect(self) -> Snapshot:
        return collect(self.config)

    def evaluate(self, snapshot: Snapshot) -> Results:
        return evaluate(snapshot, self.config, load_rules())

    def scan(self) -> tuple[Snapshot, Results]:
        snapshot = self.collect()
        return snapshot, self.evaluate(snapshot)

    def scan_refused(self, dbname: str, catalog: str) -> tuple[Snapshot, Results, DatabaseDetail]:
        """Scan with SELECT on ``catalog`` revoked from PUBLIC in ``dbname`` (granted back
        after): the snapshot, the results and what was read of that database."""
        try:
            self.execute(
                dbname, [sql.SQL("REVOKE SELECT ON {} FROM PUBLIC").format(sql.Identifier(catalog))]
            )
            snapshot, results = self.scan()
        finally:
            self.execute(
                dbname, [sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(sql.Identifier(catalog))]
            )
        pg = snapshot.servers[0].postgres
        assert pg is not None
        [detail] = [d for d in pg.database_details if d.name == dbname]
        return snapshot, results, detail


def build_scenario(
    server: LocalServer,
    apps: Sequence[App],
    *,
    roles: Mapping[str, str] | None = None,
    server_sql: Sequence[str | sql.Composed | sql.SQL] = (),
    database_sql: Mapping[str, Sequence[str | bytes | sql.Composed | sql.SQL]] | None = None,
    platform_roles: Sequence[str] = (AUDITOR,),
    public_connect: Sequence[str] = (),
    created_elsewhere: Sequence[str] = (),
    sql_ascii: Sequence[str] = (),
) -> Scenario:
    """Reset the server and build the scenario.

    Every app role is a LOGIN role with a password (``roles`` maps a role to extra
    CREATE ROLE options, e.g. ``"NOINHERIT"`` or ``"CONNECTION LIMIT -1"``; by default
    the limit is 10), created by the admin, except those in ``created_elsewhere``
    (created by the bootstrap superuser, as another administrator would: from
    PostgreSQL 16 the admin is no member of those). Every app database is created
    owned by the admin with PUBLIC's CONNECT and TEMPORARY revoked, CONNECT granted to
    the app's roles and the auditor — unless it is listed in ``public_connect``, which
    keeps the default ACL — and encoded in UTF-8, or in SQL_ASCII when listed in
    ``sql_ascii`` (its ``database_sql`` may then be bytes, stored as they are).
    """
    reset_server(server)
    ident = sql.Identifier
    options = dict(roles or {})
    app_roles = [r for app in apps for r in app.roles]
    logins = [ADMIN, AUDITOR, *app_roles]
    passwords = {role: secrets.token_urlsafe(16) for role in logins}
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        create_flexible_server(conn, ADMIN, passwords[ADMIN])
        conn.execute(
            sql.SQL(
                "CREATE ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT 20 IN ROLE pg_monitor"
            ).format(ident(AUDITOR), passwords[AUDITOR])
        )
        for role in app_roles:
            extra = options.get(role, "CONNECTION LIMIT 10")
            create = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} " + extra).format(
                ident(role), passwords[role]
            )
            if role in created_elsewhere:
                conn.execute(create)
                continue
            with as_admin(conn, ADMIN):
                conn.execute(create)
        for app in apps:
            for db in app.databases:
                create = sql.SQL("CREATE DATABASE {} OWNER {}").format(ident(db), ident(ADMIN))
                if db in sql_ascii:
                    create += sql.SQL(
                        " ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
                    )
                conn.execute(create)
                if db in public_connect:
                    continue
                conn.execute(
                    sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                        ident(db)
                    )
                )
                conn.execute(
                    sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                        ident(db), sql.SQL(", ").join(ident(r) for r in (*app.roles, AUDITOR))
                    )
                )
        for statement in server_sql:
            conn.execute(statement)
    for db, statements in (database_sql or {}).items():
        with psycopg.connect(server.dsn(dbname=db), autocommit=True) as conn:
            for command in statements:
                conn.execute(command)
    return Scenario(server, tuple(apps), passwords, tuple(platform_roles))


def keys(results: Results, status: str = "fail", rules: Iterable[str] = OWN_RULES) -> set[Key]:
    """(rule, resource, principal) of the findings of ``rules`` with ``status``."""
    wanted = set(rules)
    return {
        (f.rule_id, f.resource, f.principal)
        for f in results.findings
        if f.status == status and f.rule_id in wanted
    }


def version_of(snapshot: Snapshot) -> int:
    """The ``server_version_num`` of a scenario's (one-server) snapshot."""
    pg = snapshot.servers[0].postgres
    assert pg is not None
    return pg.version_num


def granted_by(version_num: int, grantor: str = SUPERUSER) -> str:
    """How the REVOKE of a membership ends: from PostgreSQL 16 a membership is one grant
    per grantor, each revoked as its grantor's (the scenarios' grants are the bootstrap
    superuser's); before 16 there is one grant and the plain REVOKE removes it."""
    return f" GRANTED BY {grantor}" if version_num >= PG16 else ""


def old_public_schemas(version_num: int, databases: Iterable[str]) -> set[Key]:
    """PGW-ISO-003 on the ``public`` schema of each of ``databases`` before PostgreSQL 15,
    which gave PUBLIC CREATE there in every new database (15 gives USAGE only)."""
    if version_num >= PG15:
        return set()
    return {("PGW-ISO-003", f"schema/{db}.public", "PUBLIC") for db in databases}


def family(found: set[Key], prefix: str) -> set[Key]:
    return {k for k in found if k[0].startswith(prefix)}


def finding(results: Results, rule: str, resource: str, principal: str | None) -> Finding:
    for f in results.findings:
        if (f.rule_id, f.resource, f.principal) == (rule, resource, principal):
            return f
    raise AssertionError(f"no finding {rule} {resource} {principal}")


def comparable(results: Results) -> list[tuple[object, ...]]:
    """Everything a finding says, in a stable order (for live vs. snapshot comparisons)."""
    return sorted(
        (
            f.rule_id,
            f.status,
            f.resource,
            f.principal or "",
            f.app or "",
            f.message,
            json.dumps(f.evidence, sort_keys=True, default=str),
            f.remediation or "",
            f.fingerprint,
        )
        for f in results.findings
        if f.rule_id in OWN_RULES
    )


def assert_round_trip(scenario: Scenario, snapshot: Snapshot, live: Results) -> None:
    """The rules say exactly the same about the snapshot after a JSON round trip."""
    again = Snapshot.model_validate_json(snapshot.model_dump_json())
    assert again == snapshot
    assert comparable(scenario.evaluate(again)) == comparable(live)


def apply_remediation(scenario: Scenario, found: Finding) -> None:
    """Run a finding's remediation script as the superuser, in the database it names."""
    assert found.remediation
    database = found.evidence.get("database")
    with scenario.superuser(str(database) if database else "postgres") as conn:
        conn.execute(found.remediation)
