"""PGW-AZ-003: private endpoint connections, and their approval."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import AZURE_POLICY
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import resource_group
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict
from pgwarden.rules.control_sets import BOUNDARY


class NoPrivateEndpoint(Rule):
    """The server has no approved private endpoint connection while the policy asks for one.

    A private endpoint gives the server an address in the apps' virtual network, so
    their traffic never crosses the internet and public network access can be turned
    off. A connection that is pending, rejected or disconnected carries no traffic.
    Servers integrated into a virtual network (a delegated subnet) have no public
    endpoint and cannot have private endpoints: they pass. Checked only when
    ``require_private_endpoint`` is true.

    Violation: no private endpoint connection of the server has the status Approved,
    the server is not in a delegated subnet, and ``require_private_endpoint`` is true.

    Fix: az network private-endpoint create --resource-group RG --name NAME --vnet-name
    VNET --subnet SUBNET --private-connection-resource-id SERVER_ID --group-id
    postgresqlServer --connection-name NAME; approve a pending one with az network
    private-endpoint-connection approve --id CONNECTION_ID.
    """

    id = "PGW-AZ-003"
    severity = "medium"
    controls = (Control(AZURE_POLICY, "5375a5bb-22c6-46d7-8a43-83417cfb4460"), *BOUNDARY)
    requires = (Section.AZURE_SERVER,)
    policy_switch = "require_private_endpoint"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        azure = snapshot.azure
        assert azure is not None and azure.server is not None
        server = azure.server
        if server.delegated_subnet_id:
            return
        endpoints = server.private_endpoints
        if any((e.status or "").lower() == "approved" for e in endpoints):
            return
        states = {e.name: e.status or "unknown" for e in endpoints}
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"server {server.name!r} has "
            + (
                f"no approved private endpoint connection ({len(endpoints)} not approved)"
                if endpoints
                else "no private endpoint connection"
            )
            + "; the policy requires one",
            evidence={
                "private_endpoint_connections": dict(sorted(states.items())[:10]),
                "total": len(states),
                "public_network_access": server.public_network_access,
            },
            remediation=(
                "\n".join(
                    "az network private-endpoint-connection approve --id "
                    f"{server.id}/privateEndpointConnections/{name}"
                    for name in sorted(states)[:10]
                )
                if endpoints
                else "az network private-endpoint create "
                f"--resource-group {resource_group(snapshot, context)} "
                f"--name {server.name}-pe --vnet-name VNET --subnet SUBNET "
                f"--private-connection-resource-id {server.id} --group-id postgresqlServer "
                f"--connection-name {server.name}-pe"
            ),
        )
