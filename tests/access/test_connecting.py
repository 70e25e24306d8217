"""``Connecting`` is everyone who can connect to a database, without listing them per ask.

On the unmapped-logins shape (half the databases let PUBLIC connect; the others are
reached through an app's group, a group of no app and the owner), its count, its
membership test and its listing, in name order, are those of asking ``can_connect``
for every principal of the server.
"""

from __future__ import annotations

import pytest

from pgwarden.access.connecting import Connecting
from pgwarden.access.grants import can_connect
from pgwarden.access.tenancy import Tenancy
from tests.perf.shapes import only_server, unmapped_logins_config, unmapped_logins_snapshot

APPS, LOGINS = 12, 40


@pytest.fixture(scope="module")
def tenancy() -> Tenancy:
    server, context = only_server(
        unmapped_logins_snapshot(APPS, LOGINS), unmapped_logins_config(APPS)
    )
    return Tenancy.of(server, context)


@pytest.mark.parametrize("app", range(APPS))
def test_connecting_is_every_principal_that_can_connect(tenancy: Tenancy, app: int) -> None:
    db = tenancy.databases[f"app{app:04d}_db"]
    expected = [r for r in tenancy.principals if can_connect(db, r, tenancy.graph)]
    connecting = Connecting.of(tenancy, db)
    assert connecting.app == tenancy.app_databases[db.name]
    assert list(connecting) == expected
    assert len(connecting) == len(expected)
    assert {r for r in tenancy.roles if r in connecting} == set(expected)
    # Half the databases let PUBLIC connect: there it is every principal.
    assert (len(expected) == len(tenancy.principals)) == db.public_connect


def test_nobody_connects_where_connections_are_off(tenancy: Tenancy) -> None:
    db = tenancy.databases["app0000_db"].model_copy(update={"allow_connections": False})
    connecting = Connecting(tenancy, db)
    assert list(connecting) == [] and len(connecting) == 0
    assert not any(r in connecting for r in tenancy.roles)
