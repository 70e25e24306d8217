"""The simulated fleet of ``python -m benchmarks.fleet``: Azure's fake and local clusters.

Resource Graph (the HTTPS fake of the tests) lists 5,000 Flexible Servers; 200 of them,
tagged ``bench = "local"``, point at local PostgreSQL. A 2-core machine cannot run 200
clusters, so a few clusters stand in for them: each listens on many loopback addresses
(``127.K.0.1`` … on Linux every 127/8 address is this machine) on one shared port, and
each address is one "server" — a whole cluster with several app databases, audited on
its own. Servers of one cluster see the same databases; that is the simplification.
Half the servers take a map through their ``pgwarden-map`` tag; the others have none.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from pgwarden.cli.localpg import LocalServer, pg_ctl, throwaway_server
from tests.azure.fakes import FakeAzure, FakeFlexibleServer, TlsFixture, graph_row

AUDITOR = "pgwarden_auditor"
SUBSCRIPTIONS = (
    "00000000-0000-0000-0000-00000000c0de",
    "33333333-3333-3333-3333-333333333333",
)


@dataclass(frozen=True)
class Cluster:
    """One local cluster and the loopback addresses it answers on (one server each)."""

    server: LocalServer
    addresses: tuple[str, ...]
    port: int

    def dsn(self, user: str | None = None, password: str | None = None) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.addresses[0],
            port=self.port,
            user=user or self.server.superuser,
            password=password or self.server.password,
            dbname="postgres",
            sslmode="disable",
        )


@dataclass(frozen=True)
class SimulatedFleet:
    """Where everything is: the fake, the clusters, the config, and the auditor's secret."""

    fake: FakeAzure
    tls: TlsFixture
    clusters: tuple[Cluster, ...]
    config: Path
    auditor_password: str
    listed: int
    local: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# PostgreSQL listens on at most 64 addresses (MAXLISTEN).
MAX_ADDRESSES = 64


@contextlib.contextmanager
def local_clusters(count: int, servers: int, port: int) -> Iterator[list[Cluster]]:
    """``count`` clusters, ``servers`` loopback addresses among them, one port (no more
    than ``MAX_ADDRESSES`` a cluster: ``python -m benchmarks.fleet`` refuses more)."""
    per = [servers // count + (1 if i < servers % count else 0) for i in range(count)]
    assert max(per) <= MAX_ADDRESSES, "more servers than the clusters can listen on"
    with contextlib.ExitStack() as stack:
        clusters: list[Cluster] = []
        for index, many in enumerate(per):
            addresses = tuple(f"127.{index + 1}.0.{n}" for n in range(1, many + 1))
            server = stack.enter_context(
                throwaway_server(
                    {
                        "listen_addresses": "'" + ",".join(addresses) + "'",
                        "port": str(port),
                        "max_connections": "100",
                        "shared_buffers": "32MB",
                    }
                )
            )
            hba = server.data_dir / "pg_hba.conf" if server.data_dir else None
            if hba is not None:
                # initdb trusts 127.0.0.1 only; the aliases connect from their own address.
                hba.write_text("host all all 127.0.0.0/8 scram-sha-256\n" + hba.read_text())
                pg_ctl(server, "reload")
            clusters.append(Cluster(server, addresses, port))
        yield clusters


def populate(cluster: Cluster, databases: int, auditor_password: str) -> None:
    """App databases with their roles; app 0 left open to PUBLIC (a violation to find)."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(AUDITOR), sql.Literal(auditor_password)
            )
        )
        conn.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(AUDITOR)))
        for index in range(databases):
            name = f"app{index}"
            role = sql.Identifier(f"{name}_app")
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 10").format(role))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), role))
            if index:
                conn.execute(
                    sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                        sql.Identifier(name)
                    )
                )
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(name), sql.Identifier(AUDITOR)
                )
            )


def cluster_map(databases: int) -> str:
    """The tenancy map every server of a cluster shares (named by its tag)."""
    lines = [f'platform_roles = ["{AUDITOR}"]', ""]
    for index in range(databases):
        lines += [
            "[[app]]",
            f'name = "app{index}"',
            f'databases = ["app{index}"]',
            f'roles = ["app{index}_app"]',
            "",
        ]
    return "\n".join(lines)


def fleet_config(workdir: Path, fake: FakeAzure, port: int, clusters: int, databases: int) -> Path:
    """The fleet's config and maps folder, as the README describes them."""
    (workdir / "maps").mkdir(parents=True, exist_ok=True)
    for index in range(clusters):
        (workdir / "maps" / f"cluster-{index + 1}.toml").write_text(cluster_map(databases))
    config = workdir / "fleet.toml"
    config.write_text(
        f"""[policy]
session_samples = 1
session_window_seconds = 0

[azure]
arm_endpoint = "{fake.arm_url}"

[fleet]
discover = "resource-graph"
tags = {{ bench = "local" }}
dsn_template = "host={{fqdn}} port={port} dbname=postgres user={AUDITOR} sslmode=disable"
maps = "maps"
server_timeout_seconds = 120
"""
    )
    return config


def register(fake: FakeAzure, clusters: list[Cluster], listed: int) -> int:
    """The ARM and Resource Graph side: one Flexible Server per loopback address (the
    local ones) and lightweight rows for the rest of the ``listed`` servers."""
    local = 0
    for index, cluster in enumerate(clusters):
        for number, address in enumerate(cluster.addresses):
            tags = {"bench": "local"}
            if number % 2 == 0:
                tags["pgwarden-map"] = f"cluster-{index + 1}"
            fake.add_server(
                FakeFlexibleServer(
                    name=f"pg-{index + 1}-{number:03d}",
                    resource_group=f"fleet-rg-{index + 1}",
                    subscription=SUBSCRIPTIONS[number % 2],
                    properties={
                        "administratorLogin": "fleetadmin",
                        "version": "16",
                        "state": "Ready",
                        "fullyQualifiedDomainName": address,
                        "backup": {"backupRetentionDays": 14, "geoRedundantBackup": "Disabled"},
                        "network": {"publicNetworkAccess": "Disabled"},
                    },
                    configurations={
                        "require_secure_transport": "on",
                        "ssl_min_protocol_version": "TLSv1.2",
                        "log_connections": "on",
                        "log_disconnections": "on",
                        "log_checkpoints": "on",
                        "logfiles.retention_days": "7",
                    },
                    tags=tags,
                )
            )
            local += 1
    fake.graph_rows.extend(
        graph_row(
            f"remote-{n:05d}",
            subscription=SUBSCRIPTIONS[n % 2],
            resource_group=f"rg-{n % 40}",
            tags={"bench": "remote"},
        )
        for n in range(listed - local)
    )
    return local


@contextlib.contextmanager
def simulated_fleet(
    workdir: Path, *, clusters: int, servers: int, databases: int, listed: int
) -> Iterator[SimulatedFleet]:
    """Start the fake and the clusters, fill them, write the config; stop all on exit."""
    tls = TlsFixture(workdir)
    fake = FakeAzure(tls, page_size=50)
    fake.start()
    try:
        port = _free_port()
        with local_clusters(clusters, servers, port) as running:
            password = secrets.token_urlsafe(18)
            for cluster in running:
                populate(cluster, databases, password)
            local = register(fake, running, listed)
            yield SimulatedFleet(
                fake=fake,
                tls=tls,
                clusters=tuple(running),
                config=fleet_config(workdir, fake, port, clusters, databases),
                auditor_password=password,
                listed=listed,
                local=local,
            )
    finally:
        fake.stop()
