"""``az`` command-line fragments the Azure rules' remediations are built from."""

from __future__ import annotations

from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import ServerContext


def resource_group(snapshot: ServerSnapshot, context: ServerContext) -> str:
    """The server's resource group: from ARM, else the config, else a placeholder."""
    server = snapshot.azure.server if snapshot.azure else None
    if server and server.resource_group:
        return server.resource_group
    ref = context.server.azure
    return ref.resource_group if ref and ref.resource_group else "RESOURCE_GROUP"


def server_name(snapshot: ServerSnapshot, context: ServerContext) -> str:
    """The server's ARM name (which may differ from its name in the config)."""
    server = snapshot.azure.server if snapshot.azure else None
    if server:
        return server.name
    ref = context.server.azure
    return ref.server_name if ref and ref.server_name else context.name


def server_args(
    snapshot: ServerSnapshot, context: ServerContext, *, name_flag: str = "--name"
) -> str:
    """``--resource-group RG --name SERVER`` for the server."""
    group, name = resource_group(snapshot, context), server_name(snapshot, context)
    return f"--resource-group {group} {name_flag} {name}"


def set_parameter(snapshot: ServerSnapshot, context: ServerContext, name: str, value: str) -> str:
    """The ``az`` command that sets one server parameter."""
    return (
        "az postgres flexible-server parameter set "
        f"{server_args(snapshot, context, name_flag='--server-name')} --name {name} --value {value}"
    )
