"""Databases made alike share their grants in the snapshot, however many there are.

A server's databases made from the same migrations (an app's, or its tenants') hold
the same grants: the snapshot holds each once, every database refers to it, and a
grant costs a slotted record, not a model. On a server of 1,000 databases of 200
tables each that took the scan's peak RSS from 206 MB to 108 MB: the old cache stopped
taking grants at a fixed count, a little over half-way through the apps. Here the
cache's room is earned by the grants found again, so a small start (``ROOM``) still
ends with every database sharing; and the owner's own ACL items, which are ownership,
not grants, are left out without being parsed, also where the owner's name needs
quotes in them.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from benchmarks.scenario import AUDITOR, Plan, SyntheticServer
from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.postgres.catalog import KnownGrants
from pgwarden.collect.postgres.collector import PostgresCollector
from pgwarden.collect.postgres.scram import ScramKeyReuse
from pgwarden.model.snapshot import DatabaseDetail, ObjectGrant, PostgresSnapshot
from tests.pgserver import reset_server

APPS = 3
DATABASES = 12  # four per app
TABLES = 10

# Each table's, sequence's and routine's ACL items other than its owner's, one per
# grantee and grantor, as the catalog holds them.
ACL_ITEMS = """
SELECT count(DISTINCT (o.oid, a.grantee, a.grantor))
FROM (
    SELECT c.oid, c.relnamespace AS ns, c.relowner AS owner, c.relacl AS acl FROM pg_class c
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT p.oid, p.pronamespace, p.proowner, p.proacl FROM pg_proc p
) o
JOIN pg_namespace n ON n.oid = o.ns, aclexplode(o.acl) a
WHERE n.nspname IN ('app', 'audit') AND a.grantee <> o.owner
"""


def _collect(synthetic: SyntheticServer) -> PostgresSnapshot:
    # One job: the databases are read in one order, so the cache's room grows the same
    # way on every run.
    collector = PostgresCollector(
        synthetic.dsn(AUDITOR),
        jobs=1,
        session_samples=1,
        session_window_seconds=0.0,
        scram_key_reuse=ScramKeyReuse(),
    )
    return collector.collect()


@pytest.fixture(scope="module", params=[False, True], ids=["short names", "long names"])
def server(request: pytest.FixtureRequest, pg_server: LocalServer) -> Iterator[SyntheticServer]:
    reset_server(pg_server)
    synthetic = SyntheticServer(
        pg_server, Plan(seed=3, apps=APPS, tables=TABLES, long_names=request.param)
    )
    synthetic.grow(DATABASES, 40)
    yield synthetic
    reset_server(pg_server)


def _apps(snapshot: PostgresSnapshot, plan: Plan) -> dict[int, list[DatabaseDetail]]:
    """Each app's databases' details, in the order the snapshot lists them."""
    by_app: dict[int, list[DatabaseDetail]] = {}
    for index in range(DATABASES):
        spec = plan.database(index)
        detail = next(d for d in snapshot.database_details if d.name == spec.name)
        by_app.setdefault(spec.app, []).append(detail)
    return by_app


def _key(grant: ObjectGrant) -> tuple[object, ...]:
    """What a grant says, but for its owner (an app's databases share theirs)."""
    return (
        grant.schema_name,
        grant.name,
        grant.kind,
        grant.grantee,
        grant.grantor,
        grant.privileges,
        grant.arguments,
    )


def test_room_earned_by_grants_found_again_ends_with_every_database_sharing(
    server: SyntheticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    roomy = _collect(server)
    # Room for fewer keys than one database's grants: a cache that stopped there would
    # share them only.
    monkeypatch.setattr(KnownGrants, "ROOM", 5)
    tight = _collect(server)
    # Sharing never changes what the snapshot says.
    assert tight.database_details == roomy.database_details
    for app, details in _apps(tight, server.plan).items():
        # The app's last database shares every grant it has in common with the one
        # before (they were made alike; a planted mistake may add one to either).
        before = {_key(g): g for g in details[-2].object_grants}
        common = [g for g in details[-1].object_grants if _key(g) in before]
        assert len(common) > 4 * KnownGrants.ROOM, app
        assert all(before[_key(g)] is g for g in common), app
    total = sum(len(d.object_grants) for d in tight.database_details)
    distinct = len({id(g) for d in tight.database_details for g in d.object_grants})
    assert distinct < total / 2


def test_the_owners_own_privileges_are_never_a_grant(server: SyntheticServer) -> None:
    snapshot = _collect(server)
    for detail in snapshot.database_details:
        if detail.name not in {s.name for s in server.plan.databases(DATABASES)}:
            continue
        assert all(g.grantee != g.owner for g in detail.object_grants)
        with psycopg.connect(server.server.dsn(dbname=detail.name)) as conn:
            row = conn.execute(ACL_ITEMS).fetchone()
        assert row is not None
        assert len(detail.object_grants) == row[0], detail.name
