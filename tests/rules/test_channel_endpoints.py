"""Whether a libpq target is the server being scanned: table-driven over the spellings.

The real-server tests (``test_channels.py``) reach loopback addresses, Unix sockets and
other ports; these reach what a local server cannot: Azure's FQDN and its private twin,
its PgBouncer port, a VNet address, several hosts, a service file.
"""

from __future__ import annotations

import pytest

from pgwarden.model.snapshot import (
    AzureServer,
    AzureSnapshot,
    Endpoint,
    PostgresSnapshot,
    ServerSnapshot,
    Setting,
)
from pgwarden.rules.channels._endpoints import Match, resolve, server_identity

FQDN = "ctxeco-db.postgres.database.azure.com"


def _snapshot(*, azure: bool, host: str = FQDN, address: str | None = "10.1.0.4") -> ServerSnapshot:
    postgres = PostgresSnapshot(
        version="16.4",
        version_num=160004,
        connected_as="auditor",
        endpoint=Endpoint(host=host, port=5432, database="postgres"),
        settings={"port": Setting(name="port", value="5432")},
        databases=(),
        roles=(),
        memberships=(),
        sessions=None,
        database_details=(),
        server_address=address,
        server_port=5432,
    )
    server = AzureServer(
        id="x", name="ctxeco-db", subscription_id="s", resource_group="rg", fqdn=FQDN
    )
    return ServerSnapshot(
        name="ctxeco-db",
        postgres=postgres,
        azure=AzureSnapshot(cloud="AzureCloud", server=server) if azure else None,
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"host": FQDN, "dbname": "zep"}, "this server"),
        ({"host": FQDN.upper() + ".", "dbname": "zep"}, "this server"),
        ({"host": "ctxeco-db.private.postgres.database.azure.com"}, "this server"),
        ({"host": FQDN, "port": "6432"}, "this server"),  # Azure's PgBouncer
        ({"host": FQDN, "port": "5433"}, "elsewhere"),
        ({"host": "other-db.postgres.database.azure.com"}, "elsewhere"),
        ({"hostaddr": "10.1.0.4"}, "this server"),  # the address the scan reached
        ({"host": "10.1.0.9"}, "possibly this server"),
        ({"host": "172.20.0.9"}, "possibly this server"),
        ({"host": "fd00::9"}, "possibly this server"),
        ({"host": "198.51.100.7"}, "elsewhere"),
        ({"host": "::1"}, "this server"),
        ({"host": "127.0.0.2", "port": "5432"}, "this server"),
        ({"host": "localhost", "port": "6543"}, "elsewhere"),
        ({}, "this server"),  # libpq's default: the local socket and port 5432
        ({"host": "/var/run/postgresql"}, "this server"),
        ({"host": "replica.example,localhost", "port": "5432,5432"}, "this server"),
        ({"host": "replica.example,localhost", "port": "5432"}, "this server"),
        ({"service": "reporting"}, "possibly this server"),
        ({"host": FQDN, "port": "not-a-port"}, "elsewhere"),
    ],
)
def test_targets_on_azure(options: dict[str, str], expected: Match) -> None:
    identity = server_identity(_snapshot(azure=True))
    assert resolve(options, identity).match == expected


def test_pgbouncer_port_is_azure_only() -> None:
    identity = server_identity(_snapshot(azure=False, host="db.internal", address="10.1.0.4"))
    assert resolve({"host": "db.internal", "port": "6432"}, identity).match == "elsewhere"
    assert resolve({"host": "DB.internal"}, identity).match == "this server"
    # The DSN's host names an Azure server even without an ARM reference.
    identity = server_identity(_snapshot(azure=False))
    assert resolve({"host": FQDN, "port": "6432"}, identity).match == "this server"


def test_the_database_and_why_are_kept() -> None:
    identity = server_identity(_snapshot(azure=True))
    target = resolve({"host": "10.1.0.9", "dbname": "zep"}, identity)
    assert target.database == "zep"
    assert "private address" in target.why
    assert resolve({"host": FQDN}, identity).database is None
