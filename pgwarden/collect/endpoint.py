"""Where a DSN points, as secret-free data: parsing a connection string into an Endpoint.

No I/O: libpq parses the string; nothing connects.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

from pgwarden.model.errors import ConfigError
from pgwarden.model.snapshot import Endpoint


def parse_dsn(dsn: str, where: str) -> dict[str, str]:
    """Parse a URI or key/value DSN; a malformed one is a ConfigError without the DSN."""
    # The driver is loaded when a DSN is read, not when the module is: commands that
    # never connect (report, diff, merge) need not pay for it.
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

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
        user=user or None,  # libpq already decoded a URI's escapes; never twice
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


def server_name_of(endpoint: Endpoint) -> str:
    """A server name from where a DSN points: the host's first label, or the address.

    ``ctxeco-db.postgres.database.azure.com`` gives ``ctxeco-db`` (the name Azure knows
    the server by); an IP address stays whole; a Unix socket is ``localhost``.
    """
    host = (endpoint.host or "localhost").split(",")[0]
    if host.startswith("/"):
        return "localhost"
    return host if is_address(host) else host.split(".")[0]


def is_address(host: str) -> bool:
    """An IP address rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
