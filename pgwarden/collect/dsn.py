"""DSN sources and parsing: where the scanner's connection string comes from.

A DSN is a secret. It is resolved just before connecting, reduced to an ``Endpoint``
(user, host, port, database, sslmode) for everything else, and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pgwarden.collect.azure.secret_ref import KEYVAULT_PREFIX, parse_secret_ref
from pgwarden.collect.endpoint import parse_dsn
from pgwarden.collect.failure import describe_failure
from pgwarden.model.config import AzureSettings
from pgwarden.model.errors import ConfigError, ConnectError

if TYPE_CHECKING:
    from pgwarden.collect.azure.cloud import AzureSession

ENV_PREFIX = "env:"
# ``password=entra`` in a DSN: log in with a Microsoft Entra token instead.
ENTRA_PASSWORD = "entra"  # noqa: S105 - a marker, not a password


def resolve_dsn(
    source: str | None,
    where: str,
    environ: Mapping[str, str] | None = None,
    *,
    azure: AzureSettings | None = None,
    session: AzureSession | None = None,
) -> str:
    """Turn a config ``dsn`` value into a libpq connection string.

    ``None`` or an empty string means libpq's own environment (PGHOST, PGUSER,
    PGPASSFILE, ...). ``where`` names the config key for error messages. A
    ``keyvault:`` source is read from Key Vault; ``password=entra`` is replaced by an
    Entra token for the cloud's PostgreSQL scope. The result is a secret: connect with
    it, never print it.
    """
    dsn = check_dsn_source(source, where, environ, azure=azure)
    if dsn is None:
        from pgwarden.collect.azure.cloud import open_session
        from pgwarden.collect.azure.keyvault import read_secret_value

        assert source is not None
        session = session or open_session(azure or AzureSettings())
        dsn = read_secret_value(session, source, where)
        try:
            parse_dsn(dsn, where)
        except ConfigError:
            # libpq's reason may quote part of the secret's value: say only what it is.
            raise ConfigError(
                f"{where}: the secret's value is not a PostgreSQL connection string"
            ) from None
    return with_entra_token(dsn, where, azure, session)


def check_dsn_source(
    source: str | None,
    where: str,
    environ: Mapping[str, str] | None = None,
    *,
    azure: AzureSettings | None = None,
) -> str | None:
    """Validate a ``dsn`` value without network I/O; the DSN, or None for ``keyvault:``."""
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
        from pgwarden.collect.azure.cloud import cloud_named

        cloud = cloud_named((azure or AzureSettings()).cloud)
        parse_secret_ref(source, cloud.keyvault_suffix, where)
        return None
    parse_dsn(source, where)
    return source


def with_entra_token(
    dsn: str,
    where: str,
    azure: AzureSettings | None = None,
    session: AzureSession | None = None,
) -> str:
    """The DSN with ``password=entra`` replaced by an Entra access token (else unchanged)."""
    if not dsn or parse_dsn(dsn, where).get("password") != ENTRA_PASSWORD:
        return dsn
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    from pgwarden.collect.azure.cloud import cloud_named, credential_hint, entra_token

    cloud = session.cloud if session else cloud_named((azure or AzureSettings()).cloud)
    try:
        token = entra_token(cloud, session.credential if session else None)
    except AzureError as exc:
        reason = (
            credential_hint(exc) if isinstance(exc, ClientAuthenticationError) else ""
        ) or describe_failure(exc)
        raise ConnectError(
            f"{where}: password=entra: no Entra token for {cloud.postgres_scope}: {reason} "
            "(sign in with 'az login' or use a managed or workload identity)"
        ) from None
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, password=token)
