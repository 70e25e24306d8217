"""The collector's SQL does not grow with roles, tables or grants.

Set-based catalog queries: a fixed number of server-wide statements, then the same
few statements (one round trip on one connection) per database, whatever the number of
roles, memberships, tables and grants. The same synthetic scenario the benchmark
builds, at two small sizes, scanned as the least-privilege auditor.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.scenario import AUDITOR, Plan, SyntheticServer
from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.postgres import queries as q
from pgwarden.collect.postgres.collector import PostgresCollector
from pgwarden.collect.postgres.scram import ScramKeyReuse
from pgwarden.model.snapshot import PostgresSnapshot
from tests.pgserver import reset_server

pytestmark = pytest.mark.versioned

# (plan, databases, roles): the larger has more of everything, tables per database too.
SMALL = (Plan(seed=3, apps=3, tables=3), 2, 30)
LARGE = (Plan(seed=3, apps=3, tables=15), 7, 150)


def _scan(server: LocalServer, plan: Plan, databases: int, roles: int) -> PostgresSnapshot:
    reset_server(server)
    synthetic = SyntheticServer(server, plan)
    synthetic.grow(databases, roles)
    collector = PostgresCollector(
        synthetic.dsn(AUDITOR),
        session_samples=2,
        session_window_seconds=0.1,
        scram_key_reuse=ScramKeyReuse(),
    )
    return collector.collect()


@pytest.fixture(scope="module")
def scans(pg_server: LocalServer) -> Iterator[tuple[PostgresSnapshot, PostgresSnapshot]]:
    small = _scan(pg_server, *SMALL)
    large = _scan(pg_server, *LARGE)
    yield small, large
    reset_server(pg_server)


def _grants(snapshot: PostgresSnapshot) -> int:
    return sum(len(d.object_grants) for d in snapshot.database_details)


def test_the_larger_scenario_really_is_larger(
    scans: tuple[PostgresSnapshot, PostgresSnapshot],
) -> None:
    small, large = scans
    assert len(large.roles) > 3 * len(small.roles)
    assert len(large.memberships) > 3 * len(small.memberships)
    assert len(large.database_details) > len(small.database_details)
    assert _grants(large) > 3 * _grants(small)
    assert all(d.collected for d in small.database_details + large.database_details)


def test_constant_statements_and_one_connection_per_database(
    scans: tuple[PostgresSnapshot, PostgresSnapshot],
) -> None:
    small, large = scans
    assert small.stats is not None and large.stats is not None
    per_database = len(q.DATABASE_OBJECTS)
    server_wide = small.stats.statements - per_database * len(small.database_details)
    assert large.stats.statements - per_database * len(large.database_details) == server_wide
    # Identity, settings, databases, roles, the databases holding column grants, Entra
    # labels, memberships, and the two session samples.
    assert server_wide == 7 + 2
    # The main session, the login checking the derived SCRAM keys, the session sampler,
    # one per database.
    assert small.stats.connections == len(small.database_details) + 3
    assert large.stats.connections == len(large.database_details) + 3


def test_phases_are_timed(scans: tuple[PostgresSnapshot, PostgresSnapshot]) -> None:
    for snapshot in scans:
        assert snapshot.stats is not None
        assert set(snapshot.stats.phase_seconds) == {"connect", "server", "databases", "sessions"}
        assert all(seconds >= 0 for seconds in snapshot.stats.phase_seconds.values())
