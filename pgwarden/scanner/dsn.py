"""DSN sources and parsing: where the scanner's connection string comes from.

A DSN is a secret. It is resolved just before connecting, reduced to an ``Endpoint``
(user, host, port, database, sslmode) for everything else, and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pgwarden.scanner.errors import ConfigError
from pgwarden.scanner.model import Endpoint

ENV_PREFIX = "env:"
KEYVAULT_PREFIX = "keyvault:"


def resolve_dsn(source: str | None, where: str, environ: Mapping[str, str] | None = None) -> str:
    """Turn a config ``dsn`` value into a libpq connection string.

    ``None`` or an empty string means libpq's own environment (PGHOST, PGUSER,
    PGPASSFILE, ...). ``where`` names the config key for error messages.
    """
    env = os.environ if environ is None else environ
    if source is None or source == "":
        return ""
    if source.startswith(ENV_PREFIX):
        name = source[len(ENV_PREFIX) :]
        if not name:
            raise ConfigError(f"{where}: 'env:' needs a variable name, like env:PGWARDEN_DSN")
        value = env.get(name)
        if value is None:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        if not value.strip():
            raise ConfigError(f"{where}: environment variable {name} is empty")
        parse_dsn(value, f"{where} (from {name})")
        return value
    if source.startswith(KEYVAULT_PREFIX):
        raise ConfigError(
            f"{where}: keyvault: DSN sources need the Azure collector, not available in this build"
        )
    parse_dsn(source, where)
    return source


def parse_dsn(dsn: str, where: str) -> dict[str, str]:
    """Parse a URI or key/value DSN; a malformed one is a ConfigError without the DSN."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        # libpq's message quotes no password, but it may quote the fragment it
        # choked on; name only the kind of problem.
        reason = str(exc).splitlines()[0]
        if "=" in reason or "@" in reason or "://" in reason:
            reason = "malformed connection string"
        raise ConfigError(f"{where}: not a valid PostgreSQL DSN: {reason}") from None
    return {key: str(value) for key, value in params.items() if value is not None}


def endpoint_of(dsn: str, environ: Mapping[str, str] | None = None) -> Endpoint:
    """Where a DSN points, with libpq's environment defaults filled in; no secret."""
    env = os.environ if environ is None else environ
    params = parse_dsn(dsn, "dsn") if dsn else {}
    user = params.get("user") or env.get("PGUSER")
    host = params.get("host") or env.get("PGHOST")
    port_text = params.get("port") or env.get("PGPORT")
    database = params.get("dbname") or env.get("PGDATABASE") or user
    sslmode = params.get("sslmode") or env.get("PGSSLMODE")
    port: int | None = None
    if port_text:
        try:
            port = int(port_text.split(",")[0])
        except ValueError:
            port = None
    return Endpoint(
        user=unquote(user) if user else None,
        host=host,
        port=port,
        database=database,
        sslmode=sslmode,
    )


def describe_endpoint(endpoint: Endpoint) -> str:
    """A short, secret-free description like ``auditor@db.example.com:5432/postgres``."""
    host = endpoint.host or "local socket"
    port = f":{endpoint.port}" if endpoint.port else ""
    user = f"{endpoint.user}@" if endpoint.user else ""
    database = f"/{endpoint.database}" if endpoint.database else ""
    return f"{user}{host}{port}{database}"
