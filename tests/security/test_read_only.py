"""A scan changes nothing on the server it audits: same WAL position, same catalogs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pgwarden.cli.demo import (
    AUDITOR,
    DEMO_CONFIG,
    DEMO_DSN_VARIABLE,
    app_sessions,
    build_seed_server,
)
from pgwarden.cli.localpg import LocalServer, throwaway_server
from pgwarden.collect.run import collect
from pgwarden.engine import evaluate
from pgwarden.model.config import parse_config
from pgwarden.rules.registry import load_rules

pytestmark = pytest.mark.versioned

# Catalog state an audit must never touch, per database and server-wide.
CATALOG_DIGEST = """
SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
  SELECT format('db %s %s %s %s', datname, datdba, datacl, datconnlimit) FROM pg_database
  UNION ALL SELECT format('role %s %s %s %s %s', rolname, rolsuper, rolcreaterole, rolconnlimit,
                          rolcanlogin) FROM pg_roles
  UNION ALL SELECT format('member %s %s %s', roleid, member, admin_option) FROM pg_auth_members
  UNION ALL SELECT format('rel %s %s %s %s', oid, relname, relacl, relowner) FROM pg_class
  UNION ALL SELECT format('ns %s %s %s', nspname, nspowner, nspacl) FROM pg_namespace
  UNION ALL SELECT format('defacl %s %s', defaclrole, defaclacl) FROM pg_default_acl
  UNION ALL SELECT format('set %s %s', name, setting) FROM pg_settings
    WHERE context NOT IN ('internal')
) AS t(x)
"""


@pytest.fixture(scope="module")
def quiet_server() -> Iterator[LocalServer]:
    """A cluster of its own, with nothing else writing: no autovacuum, no checkpoints."""
    with throwaway_server({"autovacuum": "off", "checkpoint_timeout": "1h"}) as server:
        yield server


def _state(server: LocalServer) -> tuple[str, str]:
    digests: list[str] = []
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        lsn = str(conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0])  # type: ignore[index]
        names = [
            r[0]
            for r in conn.execute("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
        ]
    for name in names:
        with psycopg.connect(server.dsn(dbname=name), autocommit=True) as conn:
            digests.append(f"{name}:{conn.execute(CATALOG_DIGEST).fetchone()[0]}")  # type: ignore[index]
    return lsn, hashlib.sha256("\n".join(digests).encode()).hexdigest()


def test_a_full_scan_writes_nothing(
    quiet_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = build_seed_server(quiet_server)
    with psycopg.connect(quiet_server.dsn(), autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datallowconn")]
    for name in names:
        # Settle the catalogs first: a read may otherwise prune dead catalog tuples
        # left by the scenario's DDL, which is the server's housekeeping, not ours.
        with psycopg.connect(quiet_server.dsn(dbname=name), autocommit=True) as conn:
            conn.execute(sql.SQL("VACUUM (FREEZE)"))
    with psycopg.connect(quiet_server.dsn(), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    monkeypatch.setenv(DEMO_DSN_VARIABLE, seed.dsn(AUDITOR))
    config = parse_config(DEMO_CONFIG, "pgwarden.toml")
    with app_sessions(seed):
        before = _state(quiet_server)
        snapshot = collect(config)
        results = evaluate(snapshot, config, load_rules())
        after = _state(quiet_server)
    assert results.findings  # the scan did look
    assert before[1] == after[1]  # every catalog as it was
    assert _written_between(quiet_server, before[0], after[0]) == []


# What a read may make the server log by itself: with data checksums (initdb's default
# from PostgreSQL 18) the first hint bit set on a page after a checkpoint is logged as
# a full-page image, and the background writer logs standby snapshots. Neither is a
# change of any row or catalog.
HOUSEKEEPING = {("XLOG", "FPI_FOR_HINT"), ("Standby", "RUNNING_XACTS")}


def _written_between(server: LocalServer, start: str, end: str) -> list[tuple[str, str]]:
    """The WAL records between two positions that are not the server's housekeeping."""
    if start == end:
        return []
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_walinspect'"
        ).fetchone()
        if available is None:  # PostgreSQL 14: no way to tell, so nothing may be written
            return [("WAL", f"{start} -> {end}")]
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        rows = conn.execute(
            "SELECT resource_manager, record_type FROM pg_get_wal_records_info(%s, %s)",
            (start, end),
        ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows if (r[0], r[1]) not in HOUSEKEEPING]
