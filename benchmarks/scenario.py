"""Synthetic shared servers: many apps' databases and roles, with planted violations.

Everything follows from a seed, so two runs build the same server. The layout is a
big shared server as security teams meet it:

* ``apps`` apps, each with an owner role (owns its databases and tables), a
  read-write and a read-only group, a service login (the app's DSN role) and, as the
  role count grows, teams (NOLOGIN, sometimes nested: user → team → team → group)
  and individual logins.
* Database ``i`` belongs to app ``i % apps``. It is a copy of one template database
  (``CREATE DATABASE … TEMPLATE``) holding schemas, tables with sequences, views and
  a function; a few statements in the copy then hand it to its app and grant the app's
  groups what they need.
* About one database or role in twenty carries a planted mistake pgwarden must
  report: PUBLIC CONNECT/TEMPORARY kept, another app's login granted CONNECT, a
  cross-app table grant, PUBLIC CREATE on a schema, default privileges to PUBLIC,
  cross-app memberships, privileged app roles, unlimited connections, unmapped
  databases and logins, names in the map that do not exist, and one application
  logged in as the admin during the scan.

Sizes grow in place: the roles for ``R`` roles are a prefix of those for a larger
``R``, and databases ``0..D-1`` are the same whatever ``D``, so one server is built
once per run and enlarged from size to size.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cached_property

import psycopg

from pgwarden.cli.localpg import LocalServer
from pgwarden.model.identifiers import quote_ident, quote_literal

AUDITOR = "pgwarden_auditor"
ADMIN = "bench_admin"
PLATFORM_DBA = "platform_dba"
TEMPLATE_DB = "bench_template"
TEMPLATE_OWNER = "bench_template_owner"
DSN_VARIABLE = "PGWARDEN_BENCH_DSN"
SERVER_NAME = "bench-db"

# Share of databases / roles with each planted mistake (drawn per object from the seed).
PLANTED = {
    "public_connect": 0.05,  # PGW-ISO-001 (and ISO-005: TEMPORARY stays too)
    "public_temporary": 0.03,  # PGW-ISO-005 only
    "foreign_connect": 0.03,  # PGW-ISO-002: another app's login may CONNECT
    "foreign_table_grant": 0.03,  # PGW-ISO-004: another app's login reads a table
    "public_create": 0.03,  # PGW-ISO-003: PUBLIC may CREATE in schema public
    "default_to_public": 0.02,  # PGW-ISO-006
    "unmapped_database": 0.01,  # PGW-MAP-001
    "cross_app_member": 0.01,  # PGW-ROLE-002 / ISO-002 through membership
    "privileged_service": 0.02,  # PGW-ROLE-001: CREATEROLE or CREATEDB
    "read_all_data": 0.01,  # PGW-ROLE-002: member of pg_read_all_data
    "unlimited_service": 0.05,  # PGW-ROLE-003: no connection limit
    "unmapped_login": 0.005,  # PGW-ROLE-004: a login no app claims
}
TEAM_EVERY = 12  # one in TEAM_EVERY of an app's extra roles is a team, the rest people


@dataclass(frozen=True)
class RoleSpec:
    """One role to create: its attributes, the groups it joins and the app it serves."""

    name: str
    login: bool
    app: int | None
    member_of: tuple[str, ...] = ()
    connection_limit: int = -1
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabaseSpec:
    """One app database and the mistakes planted in it."""

    index: int
    name: str
    app: int
    planted: frozenset[str] = frozenset()

    @property
    def mapped(self) -> bool:
        return "unmapped_database" not in self.planted


def app_name(app: int) -> str:
    return f"app{app:03d}"


# ``Plan.long_names``: names as a tenant on Azure spells them, near PostgreSQL's limit of
# 63 bytes, each needing quotes (spaces, capitals, a letter outside ASCII; logins of no
# app named by their Entra user principal name). The longest an app's name makes, a
# person's login at 10,000 apps, is 61 bytes.
LONG_APP_NAME = "Contoso Zürich Checkout Service Production EU {app:03d}"
LONG_STRAY_NAME = "former.employee.{n:05d}@contoso-retail.onmicrosoft.com"


@dataclass(frozen=True)
class Plan:
    """The deterministic design of a synthetic server (nothing is built here).

    The defaults are the benchmark's first shape (``benchmarks.shapes``); the others
    change how many apps share the databases, how many logins belong to no app, how
    many databases keep PUBLIC's CONNECT and how deep teams nest.

    ``unmapped_share``: share of the extra roles that are logins of no app (default:
    ``PLANTED``'s rare stray); half of them still sit in an app's team, as people do
    who left a project. ``public_connect_share``: share of databases that keep
    PUBLIC's CONNECT. ``team_every``: one extra role in so many is a team;
    ``chain_depth``: how many teams nest in each other before a chain starts again at
    the app's read-only group. ``long_names``: apps, their databases and roles, and the
    logins of no app named near PostgreSQL's 63 bytes, quoted (``LONG_APP_NAME``).
    """

    seed: int = 7
    apps: int = 100
    tables: int = 25
    unmapped_share: float | None = None
    public_connect_share: float | None = None
    team_every: int = TEAM_EVERY
    chain_depth: int = 2
    long_names: bool = False

    def app_name(self, app: int) -> str:
        """App ``app``'s name, the prefix of its databases' and roles' names."""
        return LONG_APP_NAME.format(app=app) if self.long_names else app_name(app)

    def stray_name(self, n: int) -> str:
        """The name of the ``n``-th extra role when it is a login of no app."""
        return LONG_STRAY_NAME.format(n=n) if self.long_names else f"legacy_login_{n:05d}"

    def _rng(self, *key: object) -> random.Random:
        # One generator per object: an object's fate does not depend on how many
        # objects were drawn before it, so sizes are prefixes of each other.
        return random.Random(":".join(str(k) for k in (self.seed, *key)))  # noqa: S311

    def _planted(self, kind: str, *key: object) -> frozenset[str]:
        rng = self._rng(kind, *key)
        shares = dict(PLANTED)
        if kind == "extra" and self.unmapped_share is not None:
            shares["unmapped_login"] = self.unmapped_share
        if kind == "database" and self.public_connect_share is not None:
            shares["public_connect"] = self.public_connect_share
        return frozenset(name for name, share in shares.items() if rng.random() < share)

    # -- roles -------------------------------------------------------------------

    def platform_roles(self) -> list[RoleSpec]:
        return [
            RoleSpec("azure_pg_admin", login=False, app=None),
            RoleSpec(
                ADMIN,
                login=True,
                app=None,
                member_of=("azure_pg_admin",),
                attributes=("CREATEDB", "CREATEROLE"),
            ),
            RoleSpec(AUDITOR, login=True, app=None, member_of=("pg_monitor",), connection_limit=20),
            RoleSpec(PLATFORM_DBA, login=True, app=None, connection_limit=5),
            RoleSpec(TEMPLATE_OWNER, login=False, app=None),
        ]

    def app_roles(self, app: int) -> list[RoleSpec]:
        """The four roles every app has, whatever the role count."""
        prefix = self.app_name(app)
        planted = self._planted("service", app)
        attributes: tuple[str, ...] = ()
        if "privileged_service" in planted:
            attributes = ("CREATEROLE",) if app % 2 else ("CREATEDB",)
        member_of: tuple[str, ...] = (f"{prefix}_rw",)
        if "read_all_data" in planted:
            member_of += ("pg_read_all_data",)
        return [
            RoleSpec(f"{prefix}_owner", login=False, app=app),
            RoleSpec(f"{prefix}_ro", login=False, app=app),
            RoleSpec(f"{prefix}_rw", login=False, app=app, member_of=(f"{prefix}_ro",)),
            RoleSpec(
                f"{prefix}_svc",
                login=True,
                app=app,
                member_of=member_of,
                connection_limit=-1 if "unlimited_service" in planted else 20,
                attributes=attributes,
            ),
        ]

    def fixed_role_count(self) -> int:
        return len(self.platform_roles()) + 4 * self.apps

    def extra_roles(self, count: int) -> Iterator[RoleSpec]:
        """People, teams and stray logins: the ``count`` first of an endless stream."""
        last_team: dict[int, str] = {}
        for n in range(count):
            app, ordinal = n % self.apps, n // self.apps
            prefix = self.app_name(app)
            planted = self._planted("extra", n)
            group = last_team.get(app, f"{prefix}_ro")
            if "unmapped_login" in planted:
                # Where logins of no app are many, half still sit in an app's team.
                stays = self.unmapped_share is not None and n % 2 == 0
                member_of: tuple[str, ...] = (group,) if stays else ()
                yield RoleSpec(self.stray_name(n), login=True, app=None, member_of=member_of)
                continue
            if ordinal % self.team_every == 0:
                name = f"{prefix}_team_{ordinal:03d}"
                # Teams sit inside the previous one, chain_depth deep: chains of membership.
                chained = (ordinal // self.team_every) % self.chain_depth
                parent = group if chained else f"{prefix}_ro"
                last_team[app] = name
                yield RoleSpec(name, login=False, app=app, member_of=(parent,))
                continue
            member_of = (group,)
            if "cross_app_member" in planted:
                member_of += (f"{self.app_name((app + 1 + n) % self.apps)}_ro",)
            yield RoleSpec(
                f"{prefix}_user_{ordinal:04d}",
                login=True,
                app=app,
                member_of=member_of,
                connection_limit=5,
            )

    def roles(self, total: int) -> list[RoleSpec]:
        """Every role of a server with ``total`` synthetic roles (bootstrap excluded)."""
        fixed = self.platform_roles() + [r for a in range(self.apps) for r in self.app_roles(a)]
        if total < len(fixed):
            raise ValueError(
                f"{total} roles are too few for {self.apps} apps (at least {len(fixed)})"
            )
        return fixed + list(self.extra_roles(total - len(fixed)))

    # -- databases -----------------------------------------------------------------

    def database(self, index: int) -> DatabaseSpec:
        app = index % self.apps
        return DatabaseSpec(
            index=index,
            name=f"{self.app_name(app)}_db{index:04d}",
            app=app,
            planted=self._planted("database", index),
        )

    def databases(self, count: int) -> list[DatabaseSpec]:
        return [self.database(i) for i in range(count)]

    def foreign_app(self, database: DatabaseSpec) -> int:
        """The app whose login a planted cross-app grant in ``database`` goes to."""
        return (database.app + 1 + database.index % 7) % self.apps


# -- SQL ---------------------------------------------------------------------------


def create_role_sql(role: RoleSpec, password: str | None = None) -> str:
    parts = [f"CREATE ROLE {quote_ident(role.name)}", "LOGIN" if role.login else "NOLOGIN"]
    parts += list(role.attributes)
    if role.connection_limit >= 0:
        parts.append(f"CONNECTION LIMIT {role.connection_limit}")
    if password is not None:
        parts.append(f"PASSWORD {quote_literal(password)}")
    return " ".join(parts)


def template_sql(tables: int) -> list[str]:
    """Objects of the template database, all owned by TEMPLATE_OWNER."""
    owner = quote_ident(TEMPLATE_OWNER)
    statements = [
        f"CREATE SCHEMA app AUTHORIZATION {owner}",
        f"CREATE SCHEMA audit AUTHORIZATION {owner}",
        f"SET ROLE {owner}",
    ]
    audit_tables = max(1, tables // 5)
    for t in range(tables - audit_tables):
        statements.append(
            f"CREATE TABLE app.t{t:03d} (id bigserial PRIMARY KEY, tenant int NOT NULL, "
            "body text, created_at timestamptz NOT NULL DEFAULT now())"
        )
    for t in range(audit_tables):
        statements.append(
            f"CREATE TABLE audit.log{t:03d} (id bigserial PRIMARY KEY, at timestamptz, what text)"
        )
    statements += [
        "CREATE VIEW app.recent AS SELECT id, tenant, created_at FROM app.t000",
        "CREATE MATERIALIZED VIEW app.tenants AS SELECT DISTINCT tenant FROM app.t000",
        "CREATE FUNCTION app.touch(id bigint) RETURNS bigint LANGUAGE sql AS 'SELECT id'",
        "RESET ROLE",
    ]
    return statements


def database_acl_sql(plan: Plan, db: DatabaseSpec) -> list[str]:
    """Server-side grants of one database (run from the maintenance database)."""
    name = quote_ident(db.name)
    prefix = plan.app_name(db.app)
    statements = []
    if "public_connect" not in db.planted:
        revoked = "CONNECT" if "public_temporary" in db.planted else "CONNECT, TEMPORARY"
        statements.append(f"REVOKE {revoked} ON DATABASE {name} FROM PUBLIC")
    grantees = [f"{prefix}_svc", f"{prefix}_rw", f"{prefix}_ro", AUDITOR, PLATFORM_DBA]
    if "foreign_connect" in db.planted:
        grantees.append(f"{plan.app_name(plan.foreign_app(db))}_svc")
    if db.index == 0:
        grantees.append(ADMIN)  # the admin's application session lands here
    statements.append(
        f"GRANT CONNECT ON DATABASE {name} TO {', '.join(quote_ident(g) for g in grantees)}"
    )
    return statements


def database_objects_sql(plan: Plan, db: DatabaseSpec) -> list[str]:
    """Inside one copied database: hand it to its app, grant its groups, plant mistakes."""
    prefix = plan.app_name(db.app)
    owner, ro, rw = (quote_ident(f"{prefix}_{r}") for r in ("owner", "ro", "rw"))
    statements = [
        f"REASSIGN OWNED BY {quote_ident(TEMPLATE_OWNER)} TO {owner}",
        f"GRANT USAGE ON SCHEMA app, audit TO {ro}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA app, audit TO {ro}",
        f"GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO {rw}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA app TO {rw}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA app TO {rw}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA app GRANT SELECT ON TABLES TO {ro}",
    ]
    if "foreign_table_grant" in db.planted:
        foreign = quote_ident(f"{plan.app_name(plan.foreign_app(db))}_svc")
        statements.append(f"GRANT SELECT ON app.t001 TO {foreign}")
    if "public_create" in db.planted:
        statements.append("GRANT CREATE ON SCHEMA public TO PUBLIC")
    if "default_to_public" in db.planted:
        statements.append(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA app "
            "GRANT SELECT ON TABLES TO PUBLIC"
        )
    return statements


def membership_sql(roles: Iterable[RoleSpec]) -> list[str]:
    return [
        f"GRANT {quote_ident(group)} TO {quote_ident(role.name)}"
        for role in roles
        for group in role.member_of
    ]


def _batches(statements: Sequence[str], size: int = 2000) -> Iterator[str]:
    """Many statements in few round trips (one implicit transaction each)."""
    for start in range(0, len(statements), size):
        yield ";\n".join(statements[start : start + size])


# -- the built server ----------------------------------------------------------------


@dataclass
class SyntheticServer:
    """A throwaway server being grown through the sizes of one benchmark run."""

    server: LocalServer
    plan: Plan
    passwords: dict[str, str] = field(default_factory=dict)
    roles: int = 0
    databases: int = 0
    _template_ready: bool = False

    def dsn(self, role: str = AUDITOR, dbname: str = "postgres") -> str:
        return self.server.dsn(role, self.passwords[role], dbname)

    @cached_property
    def _superuser_dsn(self) -> str:
        return self.server.dsn()

    @cached_property
    def server_version(self) -> str:
        """The server's PostgreSQL version, as ``SHOW server_version`` gives it."""
        with psycopg.connect(self._superuser_dsn) as conn:
            row = conn.execute("SELECT current_setting('server_version')").fetchone()
        return str(row[0]) if row is not None else "unknown"

    @cached_property
    def _copy_strategy(self) -> str:
        """CREATE DATABASE's clause that copies the template's files (15+: the default
        logs every block of it to the WAL; before 15 copying files is the only way)."""
        with psycopg.connect(self._superuser_dsn) as conn:
            row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
        return " STRATEGY FILE_COPY" if row is not None and row[0] >= 150000 else ""

    def _run(self, statements: Sequence[str], dbname: str = "postgres") -> None:
        with psycopg.connect(self.server.dsn(dbname=dbname), autocommit=True) as conn:
            for batch in _batches(statements):
                conn.execute(batch.encode())

    def grow(self, databases: int, roles: int) -> None:
        """Create what ``databases`` and ``roles`` add to what is already there."""
        if roles < self.roles or databases < self.databases:
            raise ValueError("sizes only grow within a run")
        if roles > self.roles:
            self._grow_roles(roles)
        if not self._template_ready:
            self._build_template()
        if databases > self.databases:
            self._grow_databases(databases)

    def _grow_roles(self, total: int) -> None:
        wanted = self.plan.roles(total)
        existing = {r.name for r in self.plan.roles(self.roles)} if self.roles else set()
        new = [r for r in wanted if r.name not in existing]
        creates = []
        for role in new:
            password = None
            if role.name in (AUDITOR, ADMIN):
                password = self.passwords.setdefault(role.name, secrets.token_urlsafe(18))
            creates.append(create_role_sql(role, password))
        self._run(creates + membership_sql(new))
        self.roles = total

    def _build_template(self) -> None:
        self._run([f"CREATE DATABASE {quote_ident(TEMPLATE_DB)}"])
        self._run(template_sql(self.plan.tables), dbname=TEMPLATE_DB)
        self._run(
            [f"ALTER DATABASE {quote_ident(TEMPLATE_DB)} IS_TEMPLATE true ALLOW_CONNECTIONS false"]
        )
        self._template_ready = True

    def _grow_databases(self, total: int) -> None:
        new = self.plan.databases(total)[self.databases :]
        strategy = self._copy_strategy
        local = threading.local()
        with ExitStack() as stack:

            def admin() -> psycopg.Connection[tuple[object, ...]]:
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = psycopg.connect(self._superuser_dsn, autocommit=True)
                    stack.callback(conn.close)
                    local.conn = conn
                return conn

            def build(db: DatabaseSpec) -> None:
                owner = quote_ident(f"{self.plan.app_name(db.app)}_owner")
                admin().execute(
                    f"CREATE DATABASE {quote_ident(db.name)} OWNER {owner} "
                    f"TEMPLATE {quote_ident(TEMPLATE_DB)}{strategy}".encode()
                )
                admin().execute(";\n".join(database_acl_sql(self.plan, db)).encode())
                statements = database_objects_sql(self.plan, db)
                with psycopg.connect(self.server.dsn(dbname=db.name), autocommit=True) as conn:
                    conn.execute(";\n".join(statements).encode())

            # Two builders keep both cores busy (one forks, one copies files).
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(build, new))
        self.databases = total

    # -- what the scanner is told --------------------------------------------------

    def config_toml(self, *, session_window_seconds: float | None = None) -> str:
        """The tenancy map of the server at its current size."""
        roles_by_app: dict[int, list[str]] = {}
        for role in self.plan.roles(self.roles):
            if role.app is not None:
                roles_by_app.setdefault(role.app, []).append(role.name)
        dbs_by_app: dict[int, list[str]] = {}
        for db in self.plan.databases(self.databases):
            if db.mapped:
                dbs_by_app.setdefault(db.app, []).append(db.name)
        lines = ["# Synthetic tenancy map written by the pgwarden benchmark.", "[policy]"]
        lines.append('fail_on = "high"')
        if session_window_seconds is not None:
            lines.append(f"session_window_seconds = {session_window_seconds}")
            if session_window_seconds == 0:
                lines.append("session_samples = 1")
        lines += [
            "",
            "[[server]]",
            f'name = "{SERVER_NAME}"',
            f'dsn = "env:{DSN_VARIABLE}"',
            f'admin_role = "{ADMIN}"',
            f'platform_roles = ["{AUDITOR}", "{PLATFORM_DBA}"]',
        ]
        for app in range(self.plan.apps):
            databases = dbs_by_app.get(app, [])
            roles = roles_by_app.get(app, [])
            if app == 1:  # names in the map that the server does not have (PGW-MAP-002)
                databases = [*databases, f"{self.plan.app_name(app)}_archive"]
                roles = [*roles, f"{self.plan.app_name(app)}_svc_old"]
            lines += [
                "",
                "[[server.app]]",
                f"name = {_toml_string(self.plan.app_name(app))}",
                f"databases = [{', '.join(_toml_string(d) for d in databases)}]",
                f"roles = [{', '.join(_toml_string(r) for r in roles)}]",
                "connection_budget = 40",
            ]
        return "\n".join(lines) + "\n"

    @contextmanager
    def app_sessions(self) -> Iterator[None]:
        """An application logged in as the admin (a violation) and an allowed psql."""
        first = self.plan.database(0).name
        with ExitStack() as stack:
            for application in ("billing-worker", "psql"):
                stack.enter_context(
                    psycopg.connect(self.dsn(ADMIN, first), application_name=application)
                )
            yield


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
