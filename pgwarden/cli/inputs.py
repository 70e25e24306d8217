"""What commands read: the config (with ``--dsn`` applied), snapshots, results documents."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from pgwarden.cli.options import DEFAULT_CONFIG
from pgwarden.collect.dsn import check_dsn_source
from pgwarden.collect.endpoint import endpoint_of, server_name_of
from pgwarden.model.config import Config, ServerConfig, load_config
from pgwarden.model.context import admin_role_of
from pgwarden.model.errors import ConfigError, UsageError, read_input
from pgwarden.model.results import Results, load_results
from pgwarden.model.snapshot import AZURE_ADMIN_GROUP, Snapshot

LIBPQ_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE")


def load_scan_config(config_path: str | None, dsn: str | None) -> tuple[Config, bytes | None]:
    """The config file (``--config`` or ./pgwarden.toml), with ``--dsn`` applied."""
    path = Path(config_path) if config_path else Path(DEFAULT_CONFIG)
    raw: bytes | None = None
    if config_path or path.exists():
        config = load_config(path)
        raw = path.read_bytes()
    else:
        config = Config()
    if (
        dsn is None
        and not config.server
        and not config.azure.discover
        and config.fleet is None
        and _libpq_environment()
    ):
        # No config and no --dsn: libpq's own environment (PGHOST, PGUSER, PGPASSFILE, …)
        # says where to connect, as it does for psql.
        dsn = ""
    if dsn is not None:
        if len(config.server) > 1:
            raise UsageError("--dsn applies to a config with one server; this one has several")
        base = config.server[0] if config.server else ServerConfig(name=_server_name(dsn))
        try:
            server = ServerConfig.model_validate({**base.model_dump(), "dsn": dsn})
        except ValidationError:
            raise UsageError("--dsn: not a usable DSN") from None
        config = config.model_copy(update={"server": (server,)})
    return config, raw


def _libpq_environment() -> bool:
    return any(os.environ.get(name) for name in LIBPQ_VARIABLES)


def _server_name(dsn: str) -> str:
    """A server name from the DSN's host, without reading a secret to find it."""
    literal = check_dsn_source(dsn, "--dsn")
    if literal is None:  # keyvault: the host is inside the secret
        return "server"
    return server_name_of(endpoint_of(literal))


# Servers whose failure "nothing was collected" spells out; the rest are counted.
SHOWN_REASONS = 3


def nothing_collected(snapshot: Snapshot, done: str = "collected") -> None:
    """Refuse a collection that reached none of its servers (``scan`` and ``collect``
    alike): one line, "nothing was ``done``", with each server's reason; exit 2, and
    nothing written."""
    if snapshot.servers and all(s.postgres is None and s.azure is None for s in snapshot.servers):
        reasons = [f"{s.name}: {e.reason}" for s in snapshot.servers for e in s.errors]
        # A fleet of a thousand servers behind a closed firewall: the first few say why.
        more = f"; and {len(reasons) - SHOWN_REASONS} more" if len(reasons) > SHOWN_REASONS else ""
        raise UsageError(f"nothing was {done}: {'; '.join(reasons[:SHOWN_REASONS])}{more}")


def over_privileged(snapshot: Snapshot, config: Config) -> Iterator[str]:
    """A warning for each server read by more than a least-privilege auditor: a
    superuser, the server's admin role, or a member of Flexible Server's
    ``azure_pg_admin``. The scan is as complete (and its sessions as read-only), but
    the credentials it was given could change everything it audits."""
    configured = config.servers_by_name()
    for server in snapshot.servers:
        pg = server.postgres
        if pg is None:
            continue
        who = pg.connected_as
        role = next((r for r in pg.roles if r.name == who), None)
        if role is not None and role.superuser:
            why = "a superuser"
        elif who == admin_role_of(server, configured.get(server.name)):
            why = "the server's admin role"
        elif any(m.member == who and m.role == AZURE_ADMIN_GROUP for m in pg.memberships):
            why = f"a member of {AZURE_ADMIN_GROUP}"
        else:
            continue
        yield (
            f"{server.name}: read as {who!r}, {why}: an audit needs only a least-privilege "
            "auditor (pg_monitor and CONNECT on each database; 'pgwarden init' prints the "
            "SQL), and these credentials could change what they audit"
        )


def read_snapshot(path: Path) -> Snapshot:
    """Load a snapshot file; a bad one is one clear line.

    Parsed and validated in one pass (pydantic's own JSON parser): at 1,000 databases
    that takes under half the time of ``json.loads`` followed by validation.
    """
    text = read_input(path)
    try:
        return Snapshot.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            reason = first.get("ctx", {}).get("error") or first["msg"]
            raise ConfigError(f"{path}: not valid JSON: {reason}") from None
        place = ".".join(str(p) for p in first["loc"]) or "(top level)"
        if any(e["loc"] == ("findings",) for e in exc.errors(include_url=False)):
            raise ConfigError(
                f"{path}: a results document, not a snapshot: 'pgwarden report' renders it "
                "again, 'pgwarden collect' writes a snapshot"
            ) from None
        raise ConfigError(f"{path}: not a pgwarden snapshot: {place}: {first['msg']}") from None


def read_results(path: Path) -> Results:
    """Load a saved results document; a bad one is one clear line."""
    return load_results(read_input(path), str(path))
