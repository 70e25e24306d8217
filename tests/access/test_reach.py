"""``DatabaseReach`` answers per source of CONNECT what asking every database would answer.

Random role graphs (grants with and without INHERIT or SET, as PostgreSQL 16 records
them), databases with PUBLIC's CONNECT or not, closed to connections or not, owned and
granted to random roles: for every role, the databases it reaches other than through
PUBLIC are exactly those where it is, or inherits (along grants that all have
INHERIT), the owner or a CONNECT grantee — worked out here database by database with
a walk of its own — and the count of PUBLIC's is the same for everyone.
"""

from __future__ import annotations

import random

import pytest

from pgwarden.access.graph import RoleGraph
from pgwarden.access.reach import DatabaseReach
from pgwarden.model.snapshot import AclItem, Database, Membership


def _inherited(role: str, memberships: list[Membership]) -> set[str]:
    """``role`` and every role it inherits: PostgreSQL's has_privs_of_role, walked here."""
    found, queue = {role}, [role]
    while queue:
        member = queue.pop()
        for grant in memberships:
            if grant.member == member and grant.inherit_option and grant.role not in found:
                found.add(grant.role)
                queue.append(grant.role)
    return found


def _server(seed: int) -> tuple[list[Membership], dict[str, Database], list[str]]:
    rng = random.Random(seed)
    roles = [f"r{n}" for n in range(30)]
    memberships = [
        Membership(
            member=member,
            role=role,
            inherit_option=rng.random() < 0.7,
            set_option=rng.random() < 0.8,
        )
        for member in roles
        for role in rng.sample(roles, 2)
        if role != member
    ]
    databases: dict[str, Database] = {}
    for n in range(25):
        owner = rng.choice(roles)
        acl = [AclItem(grantee=owner, grantor=owner, privileges=("CONNECT", "CREATE"))]
        acl += [
            AclItem(grantee=grantee, grantor=owner, privileges=("CONNECT",))
            for grantee in rng.sample(roles, rng.randrange(4))
        ]
        if rng.random() < 0.4:
            acl.append(AclItem(grantee=None, grantor=owner, privileges=("CONNECT", "TEMPORARY")))
        databases[f"db{n:02d}"] = Database(
            name=f"db{n:02d}",
            owner=owner,
            allow_connections=rng.random() < 0.9,
            acl=tuple(acl),
        )
    return memberships, databases, roles


@pytest.mark.parametrize("seed", range(8))
def test_reach_is_what_asking_every_database_would_say(seed: int) -> None:
    memberships, databases, roles = _server(seed)
    reach = DatabaseReach(RoleGraph(memberships), databases)
    public = sum(1 for db in databases.values() if db.allow_connections and db.public_connect)
    for role in roles:
        inherited = _inherited(role, memberships)
        expected = sorted(
            name
            for name, db in databases.items()
            if db.allow_connections
            and (
                db.owner in inherited
                or any(i.grantee in inherited and "CONNECT" in i.privileges for i in db.acl)
            )
        )
        found = reach.of(role, limit=5)
        assert found.first == tuple(expected[:5]), role
        assert found.total == len(expected), role
        assert found.through_public == public
