"""What a scan will collect: the configured servers, the ones discovery finds, this shard's.

``plan_scan`` checks every DSN source and map file first (a config mistake stops the
run before any I/O), opens the Azure session when something needs Azure, runs the
discoveries (``[azure] discover`` per subscription, ``[fleet]`` through Resource Graph)
and keeps the servers of ``--shard I/N``. The plan's config holds every server it will
collect as a ``[[server]]``, so evaluation finds each one's tenancy map by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pgwarden.collect.azure.secret_ref import KEYVAULT_PREFIX
from pgwarden.collect.dsn import check_dsn_source
from pgwarden.collect.fleet_dsn import check_dsn_template
from pgwarden.model.config import Config, ServerConfig
from pgwarden.model.errors import ConfigError
from pgwarden.model.fleet import FleetMaps, load_fleet_maps
from pgwarden.model.shards import Shard

if TYPE_CHECKING:
    # The Azure SDK is imported only when a scan needs Azure: it costs a second of
    # start-up that plain PostgreSQL scans should not pay.
    from pgwarden.collect.azure.cloud import AzureSession
    from pgwarden.collect.azure.fleet import FleetDiscovery

# Servers collected at the same time (``--servers-parallel``).
DEFAULT_SERVER_JOBS = 4
DISCOVERED_WITHOUT_DSN = (
    "found by [azure] discover: no dsn is configured, so its PostgreSQL side was not audited"
)


@dataclass(frozen=True)
class Target:
    """One server to collect; ``without_postgres`` says why its inside is not read.

    A ``discovered`` server's problems are its own, even those that would be config
    errors for a configured one (ARM no longer knowing it, say): the others go on.
    """

    config: ServerConfig
    without_postgres: str | None = None
    fix: str | None = None
    discovered: bool = False


@dataclass(frozen=True)
class ScanPlan:
    """The servers a scan collects, with the config that maps each of them."""

    config: Config
    targets: tuple[Target, ...]
    azure: AzureSession | None = None
    shard: Shard | None = None
    servers_before_shard: int = 0
    fleet: FleetDiscovery | None = None


def plan_scan(
    config: Config, *, azure: AzureSession | None = None, shard: Shard | None = None
) -> ScanPlan:
    """Every server this run collects (``shard``'s part of them when given).

    ``azure`` defaults to a session for ``[azure]`` with DefaultAzureCredential, opened
    only when some server or a discovery needs Azure.
    """
    where = config.path or "config"
    if not config.server and not config.azure.discover and config.fleet is None:
        raise ConfigError(f"{where}: no [[server]] is configured (or pass --dsn)")
    for server in config.server:
        check_dsn_source(
            server.dsn, f"{where}: server[name={server.name!r}].dsn", azure=config.azure
        )
    maps = FleetMaps(None, {})
    if config.fleet is not None:
        if config.fleet.dsn_template is not None:
            check_dsn_template(config.fleet.dsn_template, f"{where}: fleet.dsn_template")
        maps = load_fleet_maps(config)
    needs_azure = (
        bool(config.azure.discover)
        or config.fleet is not None
        or any(s.wants_azure() or (s.dsn or "").startswith(KEYVAULT_PREFIX) for s in config.server)
    )
    if azure is None and needs_azure:
        from pgwarden.collect.azure.cloud import open_session

        azure = open_session(config.azure)
    targets = [Target(server) for server in config.server]
    if azure is not None and config.azure.discover:
        from pgwarden.collect.azure.server import discover_servers

        targets += [
            Target(
                found.config,
                DISCOVERED_WITHOUT_DSN,
                "add a [[server]] for it with a dsn",
                discovered=True,
            )
            for found in discover_servers(config, azure)
        ]
    fleet = None
    if azure is not None and config.fleet is not None:
        from pgwarden.collect.azure.fleet import discover_fleet

        fleet = discover_fleet(
            config.model_copy(update={"server": tuple(t.config for t in targets)}), maps, azure
        )
        targets += [
            Target(
                member.config,
                member.dsn_problem,
                "set [fleet] dsn_template, or a dsn in its map" if member.dsn_problem else None,
                discovered=True,
            )
            for member in fleet.members
        ]
        # A fleet's servers are listed by name, so every shard and the merge agree.
        targets.sort(key=lambda t: t.config.name)
    total = len(targets)
    if not targets:
        raise ConfigError(f"{where}: discovery found no Flexible Server")
    if shard is not None:
        targets = [t for t in targets if shard.holds(t.config.shard_key())]
    return ScanPlan(
        config=config.model_copy(update={"server": tuple(t.config for t in targets)}),
        targets=tuple(targets),
        azure=azure,
        shard=shard,
        servers_before_shard=total,
        fleet=fleet,
    )
