"""Azure flexible server's own roles and databases, recreated on a throwaway server.

A flexible server is not a bare PostgreSQL: Microsoft's superuser ``azuresu`` runs it
(and may own databases made through ARM), the customer's admin is ``NOSUPERUSER
CREATEDB CREATEROLE`` and a member of ``azure_pg_admin``, a ``replication`` login serves
high availability, and the databases ``azure_maintenance`` (closed to customers) and
``azure_sys`` (the query store's) sit beside the apps'. ``pgwarden demo`` and the tests
recreate them so the rules see the roles and databases they see on Azure.

The admin creates the apps' roles there, since nobody else may: from PostgreSQL 16 that
makes it a member of each one with ADMIN only, granted by the bootstrap superuser
(``createrole_self_grant`` is empty). ``as_admin`` creates roles the same way.

Unlike on Azure, ``azuresu`` is not the bootstrap superuser (OID 10): that stays the
throwaway server's own, which builds everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from pgwarden.model.snapshot import AZURE_ADMIN_GROUP

AZURE_SUPERUSER = "azuresu"
AZURE_REPLICATION = "replication"
AZURE_MAINTENANCE_DATABASE = "azure_maintenance"
AZURE_QUERY_STORE_DATABASE = "azure_sys"


def create_flexible_server(conn: psycopg.Connection[Any], admin: str, password: str) -> None:
    """Azure's roles and databases, and the customer's admin ``admin`` with ``password``.

    ``conn`` is the bootstrap superuser's, in autocommit mode (CREATE DATABASE).
    """
    ident = sql.Identifier
    statements = [
        # Microsoft's superuser logs in with credentials no customer has: none at all here.
        sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(ident(AZURE_SUPERUSER)),
        sql.SQL("CREATE ROLE {} NOLOGIN").format(ident(AZURE_ADMIN_GROUP)),
        sql.SQL("CREATE ROLE {} LOGIN REPLICATION").format(ident(AZURE_REPLICATION)),
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} CREATEDB CREATEROLE IN ROLE {}").format(
            ident(admin), password, ident(AZURE_ADMIN_GROUP)
        ),
        sql.SQL("CREATE DATABASE {} OWNER {}").format(
            ident(AZURE_MAINTENANCE_DATABASE), ident(AZURE_SUPERUSER)
        ),
        sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
            ident(AZURE_MAINTENANCE_DATABASE)
        ),
        sql.SQL("CREATE DATABASE {} OWNER {}").format(
            ident(AZURE_QUERY_STORE_DATABASE), ident(AZURE_SUPERUSER)
        ),
    ]
    for statement in statements:
        conn.execute(statement)


@contextmanager
def as_admin(conn: psycopg.Connection[Any], admin: str) -> Iterator[None]:
    """Within the block, ``conn`` (the bootstrap superuser's) acts as ``admin``.

    Roles created meanwhile are created by the admin, as on Azure.
    """
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(admin)))
    try:
        yield
    finally:
        conn.execute("RESET ROLE")
