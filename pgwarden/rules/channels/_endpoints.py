"""Whether a libpq target (a foreign server's options, a pg_cron job's node) is this server.

A channel only crosses tenants when it comes back to the server being scanned. What
"this server" answers to is read from the snapshot:

* host names: the DSN's host and, on Azure, the server's FQDN (with its
  ``.private.`` twin, the name a VNet-integrated server has in its private DNS zone);
* addresses: the server's address on the scanner's connection
  (``inet_server_addr()``) and the DSN's host when it is an address;
* ports: the server's ``port`` setting and its port on the scanner's connection; over
  a name or address also the DSN's port, and 6432 on Azure (the built-in PgBouncer
  in front of the same server).

A target is ``this server`` when one of its hosts matches on one of those ports; a
host left out (libpq's default), a Unix socket path or ``localhost``/loopback address
is the server's own machine, so it is this server on the server's own port (another
port there is another cluster). A private address that matches nothing may still be
this server (its VNet address, which the scanner may not have connected through):
``possibly this server``. A ``service`` reads the server's own service file, which
no role can see: ``possibly`` too. Anything else is ``elsewhere``. libpq's default
port is 5432, and its default database the remote user's name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pgwarden.model.snapshot import ServerSnapshot

Match = Literal["this server", "possibly this server", "elsewhere"]
DEFAULT_PORT = 5432
AZURE_PGBOUNCER_PORT = 6432
AZURE_SUFFIX = ".postgres.database.azure.com"
_RANK: dict[Match, int] = {"elsewhere": 0, "possibly this server": 1, "this server": 2}
# Private networks a VNet or a private endpoint gives a server an address in (RFC 1918,
# RFC 6598 shared space, IPv6 unique local). Not ipaddress's is_private, which counts
# the documentation ranges too.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


@dataclass(frozen=True)
class ServerIdentity:
    """What this server answers to: host names, addresses, and ports."""

    names: frozenset[str]
    addresses: frozenset[str]
    local_ports: frozenset[int]
    ports: frozenset[int]

    def evidence(self) -> dict[str, object]:
        return {
            "names": sorted(self.names),
            "addresses": sorted(self.addresses),
            "ports": sorted(self.ports),
        }


@dataclass(frozen=True)
class Target:
    """Where a libpq target leads, and why pgwarden thinks so."""

    match: Match
    why: str
    database: str | None


def _name(host: str) -> str:
    return host.strip().rstrip(".").lower()


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def server_identity(snapshot: ServerSnapshot) -> ServerIdentity:
    """What the server of ``snapshot`` answers to (see the module docstring)."""
    pg = snapshot.postgres
    names: set[str] = set()
    addresses: set[str] = set()
    local_ports: set[int] = set()
    ports: set[int] = set()
    azure = snapshot.azure is not None and snapshot.azure.server is not None
    if pg is not None:
        port_setting = pg.setting("port")
        if port_setting is not None and port_setting.value.isdigit():
            local_ports.add(int(port_setting.value))
        if pg.server_port is not None:
            local_ports.add(pg.server_port)
        if pg.server_address is not None and (found := _address(pg.server_address)):
            addresses.add(str(found))
        host = pg.endpoint.host
        if host and not host.startswith("/"):
            if (found := _address(host)) is not None:
                addresses.add(str(found))
            else:
                names.add(_name(host))
                azure = azure or _name(host).endswith(AZURE_SUFFIX)
        if pg.endpoint.port is not None:
            ports.add(pg.endpoint.port)
    if snapshot.azure is not None and snapshot.azure.server is not None:
        fqdn = snapshot.azure.server.fqdn
        if fqdn:
            names.add(_name(fqdn))
    for name in list(names):
        if name.endswith(AZURE_SUFFIX) and ".private." not in name:
            names.add(name.removesuffix(AZURE_SUFFIX) + ".private" + AZURE_SUFFIX)
    if azure:
        ports.add(AZURE_PGBOUNCER_PORT)
    return ServerIdentity(
        names=frozenset(names),
        addresses=frozenset(addresses),
        local_ports=frozenset(local_ports or {DEFAULT_PORT}),
        ports=frozenset(ports | local_ports or {DEFAULT_PORT}),
    )


def _port(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return DEFAULT_PORT
    return int(text) if text.isdigit() else None


def _one_host(host: str, port: int | None, identity: ServerIdentity) -> tuple[Match, str]:
    """Where one host of a (possibly multi-host) target leads."""
    where = f"{host or '(no host)'}:{port if port is not None else '?'}"
    if not host or host.startswith(("/", "@")) or _name(host) == "localhost":
        kind = "no host (a Unix socket)" if not host else f"{host!r}"
        if port in identity.local_ports:
            return "this server", f"{kind} is the server's own machine, on its port {port}"
        return "elsewhere", f"{kind} on port {port}: another cluster on the server's machine"
    address = _address(host)
    if address is not None:
        if address.is_loopback:
            if port in identity.local_ports:
                return "this server", f"{host} is the server's loopback, on its port {port}"
            return "elsewhere", f"{where}: another cluster on the server's machine"
        if str(address) in identity.addresses:
            if port in identity.ports:
                return "this server", f"{host} is this server's address"
            return "elsewhere", f"{where}: this server's address, but not one of its ports"
        if any(address in network for network in PRIVATE_NETWORKS):
            return (
                "possibly this server",
                f"{where} is a private address pgwarden cannot tie to this server or "
                "rule out (it may be the server's own VNet address)",
            )
        return "elsewhere", f"{where} is not this server's address"
    if _name(host) in identity.names:
        if port in identity.ports:
            return "this server", f"{host!r} is this server's host name"
        return "elsewhere", f"{where}: this server's name, but not one of its ports"
    return "elsewhere", f"{where} is not a name this server is known by"


def resolve(options: Mapping[str, str], identity: ServerIdentity) -> Target:
    """Where a foreign server (or any libpq target) with ``options`` leads."""
    database = options.get("dbname") or None
    hosts = (options.get("hostaddr") or options.get("host") or "").split(",")
    ports = (options.get("port") or "").split(",")
    if options.get("service") and not (options.get("host") or options.get("hostaddr")):
        return Target(
            "possibly this server",
            f"service {options['service']!r} is read from the server's own service file",
            database,
        )
    # libpq tries each host in turn (with the port in the same place, or the one port):
    # the channel comes back here if any of them does.
    found = [
        _one_host(host.strip(), _port(ports[i] if i < len(ports) else ports[-1]), identity)
        for i, host in enumerate(hosts)
    ]
    match, why = max(found, key=lambda one: _RANK[one[0]])
    return Target(match, why, database)
