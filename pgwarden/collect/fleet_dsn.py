"""``[fleet] dsn_template``: one auditor login for every server Resource Graph finds.

A template such as ``host={fqdn} dbname=postgres user=pgwarden-auditor password=entra
sslmode=verify-full`` becomes each server's DSN. Placeholders: ``{fqdn}``, ``{name}``,
``{resource_group}``, ``{subscription_id}``, ``{location}``.
"""

from __future__ import annotations

import re

from pgwarden.model.config import FLEET_PLACEHOLDERS
from pgwarden.model.errors import ConfigError
from pgwarden.model.fleet import FleetServer

# What a value substituted into a DSN may hold: Azure's names and host names, nothing
# that could end a libpq value or start another keyword (spaces, quotes, '=', '\').
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._()-]{0,252}$")


class UnsafeFleetValue(ValueError):
    """A server's name, host or group cannot go into a DSN as it is (it says why)."""


def render_dsn(template: str, server: FleetServer) -> str:
    """The template with the server's values in place, as a key/value DSN.

    The template is parsed first, with each placeholder standing in as a plain word, and
    the values are put into the parsed parameters before libpq quoting rebuilds the
    string: a value can only ever be the value of the parameter its placeholder sits in,
    never a keyword of its own. Values must also look like Azure names or host names
    (``UnsafeFleetValue`` otherwise), so a hostile name fails that one server.
    """
    # The driver parses and rebuilds the DSN; loaded only when a template is used.
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    marks = {name: f"pgwardenplaceholder{index}x" for index, name in enumerate(FLEET_PLACEHOLDERS)}
    text = template
    for name, mark in marks.items():
        text = text.replace("{" + name + "}", mark)
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(text).items() if v is not None}
    except ProgrammingError:
        raise UnsafeFleetValue("[fleet] dsn_template is not a valid DSN") from None
    for name, mark in marks.items():
        if not any(mark in value for value in params.values()):
            continue
        value = server.placeholder(name)
        if value is None:
            raise UnsafeFleetValue(f"Resource Graph gave no {name} for server {server.name!r}")
        if not _SAFE_VALUE.match(value):
            raise UnsafeFleetValue(
                f"server {server.name[:80]!r}: its {name} holds characters a DSN value may "
                "not take from Azure (letters, digits, '.', '_', '-', '(', ')' only)"
            )
        params = {key: v.replace(mark, value) for key, v in params.items()}
    return make_conninfo("", **params)


def check_dsn_template(template: str, where: str) -> None:
    """A ``dsn_template`` that parses as a DSN with sample values (no I/O)."""
    sample = FleetServer(
        id="/subscriptions/0/resourceGroups/rg/providers/x/flexibleServers/server",
        name="server",
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group="rg",
        location="westeurope",
        fqdn="server.postgres.database.azure.com",
    )
    try:
        render_dsn(template, sample)
    except UnsafeFleetValue as exc:
        raise ConfigError(f"{where}: {exc}") from None
