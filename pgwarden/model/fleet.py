"""A fleet: the servers Resource Graph finds, each turned into a ``[[server]]`` of the map.

``[fleet]`` names who to look for (subscriptions, tags, a name glob), how to log in to
each server found (``dsn_template``) and where each server's tenancy map is (a folder of
map files, one per server, named after it, or named by an Azure tag). Everything here
is pure: Resource Graph's rows come in as ``FleetServer``s, ``[[server]]`` configs come
out. A server without a map gets ``tenancy_map = false``: the rules that judge a map
are skipped on it, the others run.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from pgwarden.model.config import AzureRef, Config, FleetSettings, ServerConfig, parse_toml
from pgwarden.model.errors import TOML_LIMIT_BYTES, ConfigError, read_input
from pgwarden.model.snapshot import Snapshot

_MAP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
MAP_SUFFIX = ".toml"


@dataclass(frozen=True)
class FleetServer:
    """A Flexible Server as Resource Graph lists it."""

    id: str
    name: str
    subscription_id: str
    resource_group: str
    location: str | None = None
    fqdn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def placeholder(self, name: str) -> str | None:
        """The value of a ``dsn_template`` placeholder for this server."""
        values = {
            "fqdn": self.fqdn,
            "name": self.name,
            "resource_group": self.resource_group,
            "subscription_id": self.subscription_id,
            "location": self.location,
        }
        return values[name]


def matches(settings: FleetSettings, server: FleetServer) -> bool:
    """Whether a server passes ``[fleet]``'s filters: subscription, every tag, the name glob.

    Subscriptions and names compare case-insensitively (Azure's do); a tag's value must
    equal the configured one exactly, or be anything when the configured value is ``*``.
    """
    if settings.subscriptions and server.subscription_id.lower() not in {
        s.lower() for s in settings.subscriptions
    }:
        return False
    for key, wanted in settings.tags.items():
        value = next((v for k, v in server.tags.items() if k.lower() == key.lower()), None)
        if value is None or (wanted != "*" and value != wanted):
            return False
    return settings.name is None or fnmatch.fnmatchcase(server.name.lower(), settings.name.lower())


@dataclass(frozen=True)
class FleetMaps:
    """The tenancy maps of ``[fleet] maps``: map name (file stem) to its server block."""

    folder: Path | None
    maps: dict[str, ServerConfig]

    def for_server(self, settings: FleetSettings, server: FleetServer) -> tuple[str | None, str]:
        """The map a server uses, and why: its tag's map, else the map named after it.

        Returns ``(map name or None, note)``; a tag naming a map the folder lacks leaves
        the server without a map, and the note says so.
        """
        tagged = next(
            (v for k, v in server.tags.items() if k.lower() == settings.map_tag.lower()), None
        )
        if tagged is not None:
            if tagged in self.maps:
                return tagged, f"map {tagged!r} from tag {settings.map_tag}"
            return None, f"tag {settings.map_tag} names map {tagged!r}, which the folder lacks"
        if server.name in self.maps:
            return server.name, f"map {server.name!r}"
        return None, "no map file named after it"


def load_fleet_maps(config: Config) -> FleetMaps:
    """Read every map file of ``[fleet] maps`` (relative to the config file's folder).

    Each ``NAME.toml`` holds the keys of one ``[[server]]`` block (``[[app]]`` tables for
    its apps); ``name`` defaults to the file's stem; ``azure`` comes from discovery and
    may not be set. Any problem is one ConfigError naming the file and key.
    """
    settings = config.fleet
    if settings is None or settings.maps is None:
        return FleetMaps(None, {})
    folder = Path(settings.maps)
    if not folder.is_absolute() and config.path:
        folder = Path(config.path).parent / folder
    if not folder.is_dir():
        raise ConfigError(f"{config.path or 'config'}: fleet.maps: {folder} is not a folder")
    maps: dict[str, ServerConfig] = {}
    for path in sorted(folder.glob(f"*{MAP_SUFFIX}")):
        stem = path.name[: -len(MAP_SUFFIX)]
        if not _MAP_NAME.match(stem):
            raise ConfigError(f"{path}: a map file is named after its server, like ctxeco-db.toml")
        maps[stem] = _load_map(path, stem)
    return FleetMaps(folder, maps)


def _load_map(path: Path, stem: str) -> ServerConfig:
    data = parse_toml(read_input(path, TOML_LIMIT_BYTES), str(path))
    if "azure" in data:
        raise ConfigError(f"{path}: azure: comes from Resource Graph; remove it from the map")
    if "server" in data:
        raise ConfigError(f"{path}: server: a map file holds one server's keys, not [[server]]")
    data.setdefault("name", stem)
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{path}: {place}: {message.removeprefix('Value error, ')}") from None


@dataclass(frozen=True)
class FleetMember:
    """A discovered server as the scan will audit it, with where its map came from and,
    when it has no DSN, why its PostgreSQL side cannot be audited."""

    server: FleetServer
    config: ServerConfig
    map_note: str
    dsn_problem: str | None = None

    @property
    def map_missing(self) -> bool:
        """Its tag names a map the folder lacks: worth a warning, not just a skip."""
        return not self.config.tenancy_map and self.map_note.startswith("tag ")


def fleet_member(
    settings: FleetSettings,
    maps: FleetMaps,
    server: FleetServer,
    *,
    dsn: str | None,
    name: str | None = None,
) -> FleetMember:
    """The ``[[server]]`` a discovered server becomes: its map's apps and roles, the map's
    own ``dsn`` or else ``dsn`` (the template's), and the ARM reference Resource Graph gave.
    """
    map_name, note = maps.for_server(settings, server)
    base = maps.maps.get(map_name) if map_name is not None else None
    ref = AzureRef(
        subscription_id=server.subscription_id,
        resource_group=server.resource_group,
        server_name=server.name,
    )
    if base is None:
        config = ServerConfig(name=name or server.name, dsn=dsn, azure=ref, tenancy_map=False)
    else:
        config = base.model_copy(
            update={"name": name or server.name, "azure": ref, "dsn": base.dsn or dsn}
        )
    return FleetMember(server=server, config=config, map_note=note)


def fleet_config_for_snapshot(config: Config, snapshot: Snapshot) -> Config:
    """The config with a ``[[server]]`` for each fleet server of a collected snapshot.

    ``scan --snapshot`` evaluates offline what ``collect`` found: each server the config
    does not name takes its map as discovery would have given it (its tag's map, from
    the tags ARM showed, else the map named after it), or none.
    """
    settings = config.fleet
    if settings is None:
        return config
    maps = load_fleet_maps(config)
    named = {server.name for server in config.server}
    added: list[ServerConfig] = []
    for found in snapshot.servers:
        if found.name in named:
            continue
        arm = found.azure.server if found.azure is not None else None
        server = FleetServer(
            id=arm.id if arm else "",
            name=arm.name if arm else found.name,
            subscription_id=arm.subscription_id if arm else "",
            resource_group=arm.resource_group if arm else "",
            location=arm.location if arm else None,
            fqdn=arm.fqdn if arm else None,
            tags=dict(arm.tags) if arm else {},
        )
        member = fleet_member(settings, maps, server, dsn=None, name=found.name)
        config_ = member.config if arm else member.config.model_copy(update={"azure": None})
        added.append(config_)
    return config.model_copy(update={"server": (*config.server, *added)})
