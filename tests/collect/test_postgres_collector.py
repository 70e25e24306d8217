"""The PostgreSQL collector against a real server, as a non-superuser pg_monitor auditor."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from pgwarden.cli.demo import ADMIN, AUDITOR, SeedServer, app_sessions
from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.postgres import collector as collector_module
from pgwarden.collect.postgres import queries as q
from pgwarden.collect.postgres.catalog import reported_kinds as catalog_kinds
from pgwarden.collect.postgres.collector import PostgresCollector
from pgwarden.collect.postgres.scram import ScramKeyReuse
from pgwarden.collect.postgres.session import connect
from pgwarden.model.errors import CollectorError
from pgwarden.model.snapshot import PostgresSnapshot

pytestmark = pytest.mark.versioned


@pytest.fixture(scope="module")
def snapshot(seed_server: SeedServer) -> PostgresSnapshot:
    with app_sessions(seed_server):
        return PostgresCollector(
            seed_server.dsn(AUDITOR),
            session_samples=2,
            session_window_seconds=0.2,
            scram_key_reuse=ScramKeyReuse(),
        ).collect()


def test_server_identity_and_read_only(snapshot: PostgresSnapshot) -> None:
    assert snapshot.connected_as == AUDITOR
    assert snapshot.version_num >= 110000
    assert snapshot.endpoint.user == AUDITOR
    assert snapshot.settings["password_encryption"].value == "md5"


def test_database_acls_make_the_default_explicit(snapshot: PostgresSnapshot) -> None:
    dbs = {db.name: db for db in snapshot.databases}
    zep = dbs["zep"]
    assert zep.acl_is_default
    public = [item for item in zep.acl if item.is_public]
    assert public and {"CONNECT", "TEMPORARY"} <= set(public[0].privileges)
    radar = dbs["secairadar"]
    assert not radar.acl_is_default
    assert not any(item.is_public for item in radar.acl)
    grantees = {item.grantee for item in radar.acl if "CONNECT" in item.privileges}
    assert {"secairadar_app", AUDITOR, "reporting"} <= grantees
    assert dbs["ctxEco"].owner == ADMIN


def test_roles_and_memberships(snapshot: PostgresSnapshot) -> None:
    roles = {role.name: role for role in snapshot.roles}
    assert roles["zep_app"].createrole and roles["zep_app"].login
    assert roles["secairadar_app"].connection_limit == 20
    assert roles["temporal_app"].connection_limit == -1
    assert not roles[ADMIN].superuser and roles[ADMIN].createrole
    edges = {(m.member, m.role) for m in snapshot.memberships}
    assert {
        ("temporal_app", "reporting"),
        ("temporal_app", "ctxeco_app"),
        ("temporal_app", "pg_read_all_data"),
        (ADMIN, "azure_pg_admin"),
        (AUDITOR, "pg_monitor"),
    } <= edges
    assert all(m.inherit_option for m in snapshot.memberships if m.member == "temporal_app")


def test_sessions_are_sampled_and_own_sessions_excluded(snapshot: PostgresSnapshot) -> None:
    assert snapshot.sessions is not None
    assert snapshot.session_samples == 2
    by_app = {(s.user, s.application_name, s.database) for s in snapshot.sessions}
    assert (ADMIN, "ctxeco-api", "ctxEco") in by_app
    assert (ADMIN, "psql", "secairadar") in by_app
    assert not any(s.application_name == "pgwarden" for s in snapshot.sessions)
    api = next(s for s in snapshot.sessions if s.application_name == "ctxeco-api")
    assert api.client_visible and api.client_addr == "127.0.0.1"
    assert api.samples == 2


def test_database_details(snapshot: PostgresSnapshot) -> None:
    radar = snapshot.detail("secairadar")
    assert radar is not None and radar.collected
    assert {s.name for s in radar.schemas} >= {"public", "radar"}
    grant = next(g for g in radar.object_grants if g.name == "findings")
    assert (grant.schema_name, grant.grantee, grant.privileges, grant.kind) == (
        "radar",
        "ctxeco_app",
        ("SELECT",),
        "table",
    )
    zep = snapshot.detail("zep")
    assert zep is not None
    public_schema = next(s for s in zep.schemas if s.name == "public")
    assert any(i.is_public and "CREATE" in i.privileges for i in public_schema.acl)
    temporal = snapshot.detail("temporal")
    assert temporal is not None
    default = temporal.default_privileges[0]
    assert (default.role, default.schema_name, default.object_type) == (
        "temporal_app",
        "public",
        "table",
    )
    assert any(i.is_public and i.privileges == ("SELECT",) for i in default.acl)
    assert snapshot.detail("postgres") is None  # system databases are not detailed


def test_only_the_reported_relation_kinds_are_read(seed_server: SeedServer) -> None:
    # Indexes, TOAST tables and composite types stay on the server: a table with a
    # primary key and a text column is four relations, and a database of 100,000
    # tables would send 400,000 rows for the 100,000 reported.
    assert set(q.RELATION_KINDS) == {k for k in catalog_kinds() if not k.startswith("routine:")}
    kinds = ", ".join(f"'{kind}'" for kind in q.RELATION_KINDS)
    assert f"relkind IN ({kinds})" in q.DATABASE_OBJECTS[1]
    with psycopg.connect(seed_server.dsn(AUDITOR, "secairadar")) as conn:
        every = {row[0] for row in conn.execute("SELECT relkind FROM pg_class WHERE oid >= 16384")}
        read = {row[4] for row in conn.execute(q.DATABASE_OBJECTS[1].encode())}
    assert {"i", "t"} <= every  # the seed's tables have keys and TOAST tables
    assert "r" in read and read <= set(q.RELATION_KINDS)


def test_statement_count_is_constant_per_database(seed_server: SeedServer) -> None:
    """Set-based collection: statements grow with databases, not with roles or tables."""
    collector = PostgresCollector(
        seed_server.dsn(AUDITOR),
        session_samples=1,
        session_window_seconds=0,
        scram_key_reuse=ScramKeyReuse(),
    )
    pg = collector.collect()
    detailed = len(pg.database_details)
    # info, settings, databases, roles, databases holding column grants, Entra labels,
    # memberships
    server_wide = 7
    per_database = len(q.DATABASE_OBJECTS)  # sent in one round trip
    # A database with foreign servers (zep) reads their user mappings too.
    with_servers = sum(1 for d in pg.database_details if d.foreign_servers)
    assert with_servers == 1
    assert collector.stats.statements == server_wide + 1 + per_database * detailed + with_servers
    # The main session, the login checking the derived SCRAM keys, the sampler's, one
    # per database.
    assert collector.stats.derived_keys
    assert collector.stats.connections == 3 + detailed


def test_sessions_are_read_only_with_timeouts(seed_server: SeedServer) -> None:
    with connect(seed_server.dsn(AUDITOR)) as conn:
        row = conn.execute(
            "SELECT current_setting('transaction_read_only') AS ro,"
            " current_setting('statement_timeout') AS st,"
            " current_setting('lock_timeout') AS lt,"
            " current_setting('application_name') AS app"
        ).fetchone()
        assert row == {"ro": "on", "st": "15s", "lt": "3s", "app": "pgwarden"}
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE should_not_exist (id int)")


def test_auditor_without_connect_records_a_gap(seed_server: SeedServer) -> None:
    server = seed_server.server
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute("CREATE ROLE blind_auditor LOGIN PASSWORD 'blind-pw' IN ROLE pg_monitor")
    try:
        pg = PostgresCollector(
            server.dsn("blind_auditor", "blind-pw"), session_samples=1, session_window_seconds=0
        ).collect()
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("DROP ROLE blind_auditor")
    radar = pg.detail("secairadar")
    assert radar is not None and not radar.collected
    assert "permission denied for database" in (radar.error or "")
    gap = pg.gap("database:secairadar")
    assert gap is not None and gap.fix == "GRANT CONNECT ON DATABASE secairadar TO blind_auditor"
    assert pg.detail("zep") is not None and pg.detail("zep").collected  # type: ignore[union-attr]


@pytest.fixture
def tight_auditor(seed_server: SeedServer) -> Iterator[str]:
    """An auditor whose role may hold few sessions: ``ALTER ROLE ... CONNECTION LIMIT``
    is set by each test."""
    server = seed_server.server
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute("CREATE ROLE tight_auditor LOGIN PASSWORD 'tight-pw' IN ROLE pg_monitor")
        for db in ("secairadar", "zep", "temporal", "ctxEco"):
            conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO tight_auditor')
    try:
        yield server.dsn("tight_auditor", "tight-pw")
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("DROP OWNED BY tight_auditor")
            conn.execute("DROP ROLE tight_auditor")


def _limit(seed_server: SeedServer, sessions: int) -> None:
    with psycopg.connect(seed_server.server.dsn(), autocommit=True) as conn:
        conn.execute(f"ALTER ROLE tight_auditor CONNECTION LIMIT {sessions}")


def test_databases_refused_for_want_of_slots_are_read_again(
    seed_server: SeedServer, tight_auditor: str
) -> None:
    # Two sessions for the role: the server-wide one leaves one for eight parallel
    # readers; the databases refused are read again, one at a time.
    _limit(seed_server, 2)
    pg = PostgresCollector(
        tight_auditor, jobs=8, session_samples=0, session_window_seconds=0
    ).collect()
    assert pg.details_by_name(), "no database was read"
    refused = [d.name for d in pg.database_details if not d.collected]
    assert refused == [], [pg.detail(name).error for name in refused]  # type: ignore[union-attr]
    assert not [gap for gap in pg.gaps if gap.section.startswith("database:")]


def test_a_server_without_slots_is_not_waited_on_forever(
    seed_server: SeedServer, tight_auditor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One session: the server-wide one holds it, so no database can ever be read. Each
    # is tried again a bounded number of times, then reported with its error and fix.
    monkeypatch.setattr(collector_module, "SLOT_RETRY_WAITS", (0.01, 0.02))
    _limit(seed_server, 1)
    pg = PostgresCollector(
        tight_auditor, jobs=2, session_samples=1, session_window_seconds=0
    ).collect()
    radar = pg.detail("secairadar")
    assert radar is not None and not radar.collected
    assert "too many connections for role" in (radar.error or "")
    assert radar.error is not None and radar.error.endswith(
        "(refused again 2 time(s), one read at a time)"
    )
    gap = pg.gap("database:secairadar")
    assert gap is not None and "scan with fewer parallel connections (--jobs)" in (gap.fix or "")


def test_unreachable_and_wrong_password_are_one_line(pg_server: LocalServer) -> None:
    with pytest.raises(CollectorError) as wrong:
        PostgresCollector(pg_server.dsn("postgres", "not-the-password")).collect()
    assert "password authentication failed" in str(wrong.value)
    assert "not-the-password" not in str(wrong.value)
    assert "\n" not in str(wrong.value)
    closed = pg_server.dsn().replace(f"port={pg_server.port}", "port=1")
    with pytest.raises(CollectorError) as unreachable:
        PostgresCollector(closed).collect()
    assert "cannot connect to postgres@127.0.0.1:1/postgres" in str(unreachable.value)
    assert "\n" not in str(unreachable.value)


def _pgwarden_sessions(server: LocalServer) -> list[int]:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgwarden'"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    return [row[0] for row in rows]


def _pgwarden_sessions_after_closing(server: LocalServer, seconds: float = 10.0) -> list[int]:
    """pgwarden's sessions once those it closed are gone: a backend leaves
    pg_stat_activity a moment after its client closes (or it is terminated)."""
    deadline = time.monotonic() + seconds
    while (left := _pgwarden_sessions(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_the_server_summary_comes_before_any_database(seed_server: SeedServer) -> None:
    """The databases are read while the server-wide work finishes; progress says the
    server's size first, and every database is read exactly once."""
    said: list[str] = []
    collector = PostgresCollector(
        seed_server.dsn(AUDITOR), session_samples=1, session_window_seconds=0, progress=said.append
    )
    pg = collector.collect()
    assert said[0].endswith(f"{len(pg.databases)} databases, {len(pg.roles)} roles")
    read = [line.removeprefix("database ") for line in said[1:]]
    assert sorted(read) == sorted(d.name for d in pg.database_details)
    assert pg.stats is not None and {"server", "databases"} <= set(pg.stats.phase_seconds)
    assert len(pg.memberships) > 0


def test_a_server_wide_read_failing_while_databases_are_read_fails_closed(
    seed_server: SeedServer,
) -> None:
    """The main session dies just as the databases start being read: the collection
    fails with one line, and no session pgwarden opened is left behind."""
    server = seed_server.server

    def kill_main_session(line: str) -> None:
        if line.endswith(" roles"):  # the summary: only the main session is open
            with psycopg.connect(server.dsn(), autocommit=True) as conn:
                for pid in _pgwarden_sessions(server):
                    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))

    collector = PostgresCollector(
        seed_server.dsn(AUDITOR),
        session_samples=3,
        session_window_seconds=30,  # a sampler left running would hold its session
        progress=kill_main_session,
        scram_key_reuse=ScramKeyReuse(),
    )
    with pytest.raises(CollectorError) as failed:
        collector.collect()
    assert "reading the catalogs failed" in str(failed.value)
    assert "\n" not in str(failed.value)
    assert _pgwarden_sessions_after_closing(server) == []
