"""Databases made from the same migrations share their grants' objects, and only those."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.postgres.collector import PostgresCollector

pytestmark = pytest.mark.versioned

TENANTS = {"tenant_a": "SELECT", "tenant_b": "SELECT", "tenant_c": "SELECT, INSERT"}


def test_identical_grants_are_one_object_and_different_ones_are_not(
    clean_server: LocalServer,
) -> None:
    with psycopg.connect(clean_server.dsn(), autocommit=True) as conn:
        for role in ("tenant_owner", "tenant_reader"):
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        for database in TENANTS:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER tenant_owner").format(sql.Identifier(database))
            )
    for database, privileges in TENANTS.items():
        with psycopg.connect(clean_server.dsn(dbname=database), autocommit=True) as conn:
            conn.execute("SET ROLE tenant_owner")
            conn.execute("CREATE SCHEMA app")
            conn.execute("CREATE TABLE app.orders (id int)")
            conn.execute("CREATE FUNCTION app.touch(id int) RETURNS int LANGUAGE sql AS 'SELECT 1'")
            conn.execute(f"GRANT {privileges} ON app.orders TO tenant_reader")
            conn.execute("GRANT EXECUTE ON FUNCTION app.touch(int) TO tenant_reader")

    snapshot = PostgresCollector(
        clean_server.dsn(),
        session_samples=1,
        session_window_seconds=0,
        databases=lambda db: db.name in TENANTS,
    ).collect()

    grants = {
        detail.name: {(g.name, g.grantee): g for g in detail.object_grants}
        for detail in snapshot.database_details
    }
    assert set(grants) == set(TENANTS)
    a, b, c = (grants[name] for name in TENANTS)
    # The same grant in two databases is one immutable object...
    assert a[("orders", "tenant_reader")] is b[("orders", "tenant_reader")]
    assert a[("touch", "tenant_reader")] is b[("touch", "tenant_reader")]
    assert c[("touch", "tenant_reader")] is a[("touch", "tenant_reader")]
    # ...and a grant that differs in any way is its own, with what its database holds.
    assert c[("orders", "tenant_reader")] is not a[("orders", "tenant_reader")]
    assert set(a[("orders", "tenant_reader")].privileges) == {"SELECT"}
    assert set(c[("orders", "tenant_reader")].privileges) == {"INSERT", "SELECT"}
    assert a[("touch", "tenant_reader")].arguments == "id integer"
    # Nobody holds a grant on their own objects: the owner's privileges are ownership.
    assert all(g.grantee != "tenant_owner" for detail in grants.values() for g in detail.values())
