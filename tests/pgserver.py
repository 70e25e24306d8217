"""Test servers: a real PostgreSQL for every test that needs one.

``PGWARDEN_TEST_DSN`` (a superuser DSN of a disposable server: the tests drop every
database and role on it) when set; else a throwaway cluster started
with the same code ``pgwarden demo`` uses (local binaries, or testcontainers where a
Docker engine answers). ``reset_server`` returns it to an empty state between
scenarios: every non-system database and role dropped, settings reset.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pgwarden.cli.localpg import LocalServer, throwaway_server

KEEP_DATABASES = ("postgres", "template0", "template1")


@contextlib.contextmanager
def running_server() -> Iterator[LocalServer]:
    """The server the test session runs against."""
    dsn = os.environ.get("PGWARDEN_TEST_DSN")
    if dsn:
        params = conninfo_to_dict(dsn)
        yield LocalServer(
            host=str(params.get("host", "127.0.0.1")),
            port=int(str(params.get("port", 5432))),
            superuser=str(params.get("user", "postgres")),
            password=str(params.get("password", "")),
            how="PGWARDEN_TEST_DSN",
        )
        return
    with throwaway_server({"max_connections": "300"}) as server:
        yield server


def reset_server(server: LocalServer) -> None:
    """Drop every database and role a scenario made; reset server settings."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        databases = conn.execute(
            "SELECT datname, datistemplate FROM pg_database WHERE NOT datname = ANY(%s)",
            (list(KEEP_DATABASES),),
        ).fetchall()
        for name, template in databases:
            # A template database (the benchmark scenario's) cannot be dropped as one.
            if template:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name))
                )
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        # Named on the server: a role made from a SQL_ASCII database may have a name
        # that is not UTF-8, which this session could not send back.
        conn.execute(
            "DO $$ DECLARE r record; BEGIN"
            " FOR r IN SELECT rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%'"
            " AND rolname <> current_user AND oid <> 10 LOOP"
            " EXECUTE format('DROP OWNED BY %I CASCADE', r.rolname);"
            " EXECUTE format('DROP ROLE %I', r.rolname);"
            " END LOOP; END $$"
        )
        conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        conn.execute("ALTER SYSTEM RESET ALL")
        conn.execute("SELECT pg_reload_conf()")
