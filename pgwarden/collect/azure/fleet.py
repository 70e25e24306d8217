"""``[fleet]`` discovery: every Flexible Server Resource Graph shows, as ``[[server]]``s.

One paged Resource Graph query lists the servers across subscriptions (or only the
``subscriptions`` given); ``tags`` and the ``name`` glob filter them; servers a
``[[server]]`` block already names are left to that block. Each server found logs in
with ``dsn_template`` (or its map's own ``dsn``) and takes its tenancy map from the
``maps`` folder: the file its ``map_tag`` tag names, else the one named after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.collect.azure.resource_graph import GraphQuery, GraphStats, ResourceGraphClient
from pgwarden.collect.fleet_dsn import UnsafeFleetValue, render_dsn
from pgwarden.model.config import Config, FleetSettings
from pgwarden.model.errors import ConfigError
from pgwarden.model.fleet import FleetMaps, FleetMember, FleetServer, fleet_member, matches
from pgwarden.model.shards import arm_server_id

PG_TYPE = "microsoft.dbforpostgresql/flexibleservers"
# The type is a constant; nothing from the config is ever written into the KQL text
# (filters are applied to the rows), so no value can change what the query asks.
FLEET_QUERY = (
    f"resources | where type =~ '{PG_TYPE}' "
    "| project id, name, subscriptionId, resourceGroup, location, tags, "
    "fqdn = tostring(properties.fullyQualifiedDomainName)"
)


@dataclass(frozen=True)
class FleetDiscovery:
    """What discovery found: the servers to audit, and what it took to find them."""

    members: tuple[FleetMember, ...]
    listed: int
    stats: GraphStats
    seconds: float


def fleet_server(row: dict[str, Any]) -> FleetServer | None:
    """A Resource Graph row as a FleetServer; a row missing its id or name is skipped."""
    resource_id, name = row.get("id"), row.get("name")
    if not isinstance(resource_id, str) or not isinstance(name, str) or not name:
        return None
    tags, fqdn, location = row.get("tags"), row.get("fqdn"), row.get("location")
    return FleetServer(
        id=resource_id,
        name=name,
        subscription_id=str(row.get("subscriptionId") or ""),
        resource_group=str(row.get("resourceGroup") or ""),
        location=location if isinstance(location, str) and location else None,
        fqdn=fqdn if isinstance(fqdn, str) and fqdn else None,
        tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
    )


def list_fleet(
    settings: FleetSettings, session: AzureSession
) -> tuple[list[FleetServer], GraphStats]:
    """Every Flexible Server the identity can read in the ``subscriptions`` (or tenant)."""
    query = GraphQuery(FLEET_QUERY, tuple(settings.subscriptions))
    with ResourceGraphClient(session) as graph:
        servers = [s for row in graph.rows(query) if (s := fleet_server(row)) is not None]
        return servers, graph.stats


def discover_fleet(config: Config, maps: FleetMaps, session: AzureSession) -> FleetDiscovery:
    """The fleet's servers as ``[[server]]`` blocks, sorted by name.

    Servers a ``[[server]]`` block names (by subscription, resource group and name)
    are left out: the block audits them. A server whose name or host cannot go into
    ``dsn_template`` keeps no DSN (``FleetMember.dsn_problem`` says why).
    """
    settings = config.fleet
    if settings is None:
        raise ConfigError(f"{config.path or 'config'}: no [fleet] table")
    started = time.perf_counter()
    listed, stats = list_fleet(settings, session)
    configured = {
        server.shard_key()
        for server in config.server
        if server.azure and server.azure.resource_group
    }
    taken = {server.name for server in config.server}
    seen: set[str] = set()
    members: list[FleetMember] = []
    for server in sorted(listed, key=lambda s: (s.name.lower(), s.id.lower())):
        key = server.id.lower()
        if key in seen or not matches(settings, server):
            continue
        seen.add(key)
        if arm_server_id(server.subscription_id, server.resource_group, server.name) in configured:
            continue
        name = server.name if server.name not in taken else f"{server.resource_group}/{server.name}"
        taken.add(name)
        members.append(_member(settings, maps, server, name))
    return FleetDiscovery(
        members=tuple(members),
        listed=len(listed),
        stats=stats,
        seconds=time.perf_counter() - started,
    )


def _member(
    settings: FleetSettings, maps: FleetMaps, server: FleetServer, name: str
) -> FleetMember:
    problem: str | None = None
    dsn: str | None = None
    if settings.dsn_template is not None:
        try:
            dsn = render_dsn(settings.dsn_template, server)
        except UnsafeFleetValue as exc:
            problem = str(exc)
    member = fleet_member(settings, maps, server, dsn=dsn, name=name)
    if member.config.dsn is not None:
        problem = None  # the map's own dsn stands in for the template
    else:
        problem = problem or (
            "found by [fleet] discover: no dsn_template and no dsn in its map, so its "
            "PostgreSQL side was not audited"
        )
    return FleetMember(
        server=member.server, config=member.config, map_note=member.map_note, dsn_problem=problem
    )
