"""``pgwarden demo``: a throwaway server shaped like the seed's shared Azure server.

One server hosting ``ctxEco``, ``zep``, ``temporal``, ``temporal_visibility`` and
``secairadar`` beside Azure's own roles and databases (``flexible_server``); the admin
``ctxecoadmin`` (CREATEDB CREATEROLE, member of ``azure_pg_admin``, no SUPERUSER, as on
Flexible Server), who created the apps' roles; ``secairadar_app`` set up as the seed
recommends; and the mistakes such servers really have. An application stays logged in
as the admin while pgwarden scans as a least-privilege auditor.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from pgwarden.cli.flexible_server import as_admin, create_flexible_server
from pgwarden.cli.listing import print_compliance, print_findings
from pgwarden.cli.localpg import LocalServer, throwaway_server
from pgwarden.cli.options import FORMAT_NAMES
from pgwarden.cli.terminal import Console
from pgwarden.collect.run import collect
from pgwarden.engine import evaluate
from pgwarden.gate.chain import apply_gate
from pgwarden.model.config import parse_config
from pgwarden.model.errors import EnvironmentNotReady, one_line
from pgwarden.reports.registry import RENDERERS
from pgwarden.rules.registry import load_rules

ADMIN = "ctxecoadmin"
AUDITOR = "pgwarden_auditor"
APP_DATABASES = ("ctxEco", "zep", "temporal", "temporal_visibility", "secairadar")
APP_ROLES = ("ctxeco_app", "zep_app", "temporal_app", "secairadar_app")
DEMO_DSN_VARIABLE = "PGWARDEN_DEMO_DSN"
# secai-radar's managed identity, a Microsoft Entra principal (a made-up object id).
RADAR_IDENTITY = "5ec0a1da-0000-4000-8000-00000000a001"

DEMO_SERVER_SETTINGS = {"log_connections": "on"}

DEMO_CONFIG = f"""\
# Tenancy map of the demo server: what its owners meant.
[policy]
fail_on = "high"
admin_application_names = ["psql", "pgAdmin*", "azdata*"]

[[server]]
name = "ctxeco-db"
dsn = "env:{DEMO_DSN_VARIABLE}"
admin_role = "{ADMIN}"
platform_roles = ["{AUDITOR}"]

[[server.app]]
name = "ctxeco"
databases = ["ctxEco"]
roles = ["ctxeco_app"]

[[server.app]]
name = "zep"
databases = ["zep"]
roles = ["zep_app"]

[[server.app]]
name = "temporal"
databases = ["temporal", "temporal_visibility"]
roles = ["temporal_app"]

[[server.app]]
name = "secai-radar"
databases = ["secairadar"]
roles = ["secairadar_app"]
identities = ["{RADAR_IDENTITY}"]
connection_budget = 30
"""


@dataclass(frozen=True)
class SeedServer:
    """Credentials of the seed-shaped server's roles (kept in memory only)."""

    server: LocalServer
    passwords: dict[str, str]

    def dsn(self, role: str, dbname: str = "postgres") -> str:
        return self.server.dsn(role, self.passwords[role], dbname)


def _exec(
    conn: psycopg.Connection[tuple[object, ...]], statements: list[sql.Composed | sql.SQL]
) -> None:
    for statement in statements:
        conn.execute(statement)


def build_seed_server(server: LocalServer) -> SeedServer:
    """Create the seed's databases, roles and mistakes (as the bootstrap superuser)."""
    passwords = {role: secrets.token_urlsafe(18) for role in (ADMIN, AUDITOR, *APP_ROLES)}
    ident = sql.Identifier
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        create_flexible_server(conn, ADMIN, passwords[ADMIN])
        conn.execute(
            sql.SQL(
                "CREATE ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT 10 IN ROLE pg_monitor"
            ).format(ident(AUDITOR), passwords[AUDITOR])
        )
        for db in APP_DATABASES:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(ident(db), ident(ADMIN)))
        limits = {"ctxeco_app": 40, "zep_app": 20, "temporal_app": -1, "secairadar_app": 20}
        with as_admin(conn, ADMIN):
            for role in APP_ROLES:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT {}").format(
                        ident(role), passwords[role], limits[role]
                    )
                )
        _exec(
            conn,
            [
                # secai-radar as the seed recommends: only its own role may connect.
                sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE secairadar FROM PUBLIC"),
                sql.SQL("GRANT CONNECT ON DATABASE secairadar TO secairadar_app, {}").format(
                    ident(AUDITOR)
                ),
                # ctxEco locked down too, but zep's role was let in "for a migration".
                sql.SQL('REVOKE CONNECT, TEMPORARY ON DATABASE "ctxEco" FROM PUBLIC'),
                sql.SQL('GRANT CONNECT ON DATABASE "ctxEco" TO ctxeco_app, zep_app, {}').format(
                    ident(AUDITOR)
                ),
                # zep, temporal and temporal_visibility keep PostgreSQL's default: PUBLIC CONNECT.
                # A reporting group may read secai-radar, and temporal's role joined it.
                sql.SQL("CREATE ROLE reporting NOLOGIN"),
                sql.SQL("GRANT CONNECT ON DATABASE secairadar TO reporting"),
                sql.SQL("GRANT reporting TO temporal_app"),
                # temporal's role was made a member of ctxEco's role, and of pg_read_all_data.
                sql.SQL("GRANT ctxeco_app TO temporal_app"),
                sql.SQL("GRANT pg_read_all_data TO temporal_app"),
                # zep's role can create roles.
                sql.SQL("ALTER ROLE zep_app CREATEROLE"),
                # A login nobody owns.
                sql.SQL("CREATE ROLE legacy_etl LOGIN"),
                # secai-radar's managed identity got its Entra role, but the app still
                # logs in with its password role. On Azure pgaadauth labels the role;
                # here the superuser writes the same catalog row.
                sql.SQL('CREATE ROLE "secai-radar-mi" LOGIN CONNECTION LIMIT 10'),
                sql.SQL(
                    "INSERT INTO pg_shseclabel (objoid, classoid, provider, label) VALUES "
                    "({}::regrole, 'pg_authid'::regclass, 'pgaadauth', {})"
                ).format(
                    sql.Literal('"secai-radar-mi"'),
                    sql.Literal(f"aadauth,oid={RADAR_IDENTITY},type=service"),
                ),
                sql.SQL('GRANT CONNECT ON DATABASE secairadar TO "secai-radar-mi"'),
            ],
        )
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('port')").fetchone()
        port = str(row[0]) if row else str(server.port)
        # Builds without the contrib modules (the [demo] extra's) have no postgres_fdw:
        # the demo then plants no channel rather than failing.
        has_fdw = bool(
            conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'postgres_fdw'"
            ).fetchone()
        )
    channel: list[sql.Composed | sql.SQL] = [
        # A postgres_fdw channel from zep into ctxEco on this very server, which
        # zep's role may use (one CREATE USER MAPPING away from ctxEco's data).
        sql.SQL("CREATE EXTENSION postgres_fdw"),
        sql.SQL(
            "CREATE SERVER ctxeco_link FOREIGN DATA WRAPPER postgres_fdw "
            "OPTIONS (host 'localhost', port {}, dbname 'ctxEco')"
        ).format(sql.Literal(port)),
        sql.SQL("GRANT USAGE ON FOREIGN SERVER ctxeco_link TO zep_app"),
    ]
    per_database: dict[str, list[sql.Composed | sql.SQL]] = {
        "secairadar": [
            sql.SQL("CREATE SCHEMA radar AUTHORIZATION secairadar_app"),
            sql.SQL("SET ROLE secairadar_app"),
            sql.SQL("CREATE TABLE radar.findings (id bigint PRIMARY KEY, body text)"),
            # A table of secai-radar granted to ctxEco's role.
            sql.SQL("GRANT SELECT ON radar.findings TO ctxeco_app"),
            # Done right: its own SECURITY DEFINER routine, search_path pinned, for itself.
            sql.SQL(
                "CREATE FUNCTION radar.finding_count() RETURNS bigint LANGUAGE sql "
                "SECURITY DEFINER SET search_path = radar, pg_temp "
                "AS 'SELECT count(*) FROM radar.findings'"
            ),
            sql.SQL("REVOKE EXECUTE ON FUNCTION radar.finding_count() FROM PUBLIC"),
            sql.SQL("RESET ROLE"),
        ],
        "zep": [
            sql.SQL("GRANT CREATE ON SCHEMA public TO zep_app"),
            sql.SQL("SET ROLE zep_app"),
            sql.SQL("CREATE TABLE public.memories (id bigint PRIMARY KEY, body text)"),
            sql.SQL("RESET ROLE"),
            # Anyone may create objects in zep's public schema.
            sql.SQL("GRANT CREATE ON SCHEMA public TO PUBLIC"),
            *(channel if has_fdw else []),
        ],
        "temporal": [
            # The admin's SECURITY DEFINER routine with its caller's search_path, which
            # every role may call (temporal keeps PUBLIC CONNECT and EXECUTE).
            sql.SQL("SET ROLE {}").format(ident(ADMIN)),
            sql.SQL(
                "CREATE FUNCTION public.purge_history() RETURNS void LANGUAGE sql "
                "SECURITY DEFINER AS 'SELECT NULL'"
            ),
            sql.SQL("RESET ROLE"),
            sql.SQL("GRANT CREATE ON SCHEMA public TO temporal_app"),
            # Tables temporal creates from now on are readable by everyone.
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE temporal_app IN SCHEMA public "
                "GRANT SELECT ON TABLES TO PUBLIC"
            ),
        ],
        "ctxEco": [
            sql.SQL("GRANT CREATE ON SCHEMA public TO ctxeco_app"),
            sql.SQL("SET ROLE ctxeco_app"),
            sql.SQL("CREATE TABLE public.documents (id bigint PRIMARY KEY, body text)"),
            sql.SQL("RESET ROLE"),
        ],
    }
    for db, statements in per_database.items():
        with psycopg.connect(server.dsn(dbname=db), autocommit=True) as conn:
            _exec(conn, statements)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        # New passwords will be hashed with MD5 (existing ones stay SCRAM).
        conn.execute("ALTER SYSTEM SET password_encryption = 'md5'")
        conn.execute("SELECT pg_reload_conf()")
    return SeedServer(server, passwords)


@contextmanager
def app_sessions(seed: SeedServer) -> Iterator[None]:
    """Keep an application logged in as the admin, and an admin psql session, open."""
    with ExitStack() as stack:
        stack.enter_context(
            psycopg.connect(seed.dsn(ADMIN, "ctxEco"), application_name="ctxeco-api")
        )
        stack.enter_context(psycopg.connect(seed.dsn(ADMIN, "secairadar"), application_name="psql"))
        stack.enter_context(
            psycopg.connect(
                seed.dsn("secairadar_app", "secairadar"), application_name="secai-radar"
            )
        )
        yield


def run_demo(output_dir: Path, console: Console, pg_bin: Path | None = None) -> int:
    """Build, scan, report, tear down; the exit code is 0 when the demo ran.

    ``pg_bin``: the PostgreSQL ``bin`` folder to start the server from (else found).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    console.note("starting a throwaway PostgreSQL server…")
    try:
        return _run_demo(output_dir, console, pg_bin)
    except psycopg.Error as exc:
        raise EnvironmentNotReady(f"the demo server misbehaved: {one_line(exc)}") from None


def _run_demo(output_dir: Path, console: Console, pg_bin: Path | None) -> int:
    with throwaway_server(DEMO_SERVER_SETTINGS, pg_bin) as server:
        console.note(f"server up ({server.how}); building a server shaped like ctxeco-db…")
        seed = build_seed_server(server)
        config_path = output_dir / "pgwarden.toml"
        config_path.write_text(DEMO_CONFIG, encoding="utf-8")
        config = parse_config(DEMO_CONFIG, str(config_path))
        os.environ[DEMO_DSN_VARIABLE] = seed.dsn(AUDITOR)
        try:
            with app_sessions(seed):
                console.note(
                    f"scanning as the non-superuser auditor {AUDITOR!r} (member of pg_monitor)…"
                )
                started = datetime.now(UTC)
                snapshot = collect(config)
        finally:
            os.environ.pop(DEMO_DSN_VARIABLE, None)
    outcome = apply_gate(
        evaluate(
            snapshot, config, load_rules(), started_at=started, config_bytes=DEMO_CONFIG.encode()
        ),
        fail_on=config.policy.fail_on,
    )
    results = outcome.results
    (output_dir / "snapshot.json").write_text(snapshot.to_json(), encoding="utf-8")
    written = [("tenancy map", str(config_path)), ("snapshot", str(output_dir / "snapshot.json"))]
    for name, (renderer, filename) in RENDERERS.items():
        target = output_dir / filename
        content = renderer(results)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
        written.append((FORMAT_NAMES.get(name, name), str(target)))
    print_findings(console, results, written)
    print_compliance(console, results)
    console.print(f"\nThe throwaway server is gone; the files above are in {output_dir}/.")
    console.print(
        f"\nAs a CI gate (fail_on = {config.policy.fail_on!r}) this scan would exit "
        f"{outcome.exit_code}. Re-run offline: pgwarden scan --config {config_path} "
        f"--snapshot {output_dir / 'snapshot.json'}"
    )
    return 0
