"""The ARM collector: a Flexible Server as Azure Resource Manager describes it.

Reads the server's properties (encryption, private endpoints), firewall rules,
server parameters, Entra administrators and threat protection setting with
``azure-mgmt-postgresqlflexibleservers``, its diagnostic settings and the
subscription's Defender plan through the same client's pipeline (``rest``); Reader on
the server is enough, and Reader on the subscription for the Defender plan. It also
discovers every Flexible Server of a subscription or resource group (a server listed
in full is not read again). Any failure of a call (refused, throttled, unreadable,
unexpected) becomes a Gap of its section only; a configured server that ARM does not
know is a config error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient

from pgwarden.collect.azure import rest
from pgwarden.collect.azure.cloud import AzureSession, azure_gap, enum_text, error_code, host_of
from pgwarden.model.errors import ConfigError
from pgwarden.model.snapshot import (
    AzureServer,
    DefenderPlan,
    DiagnosticSetting,
    EntraAdministrator,
    FirewallRule,
    Gap,
    PrivateEndpoint,
    ServerParameter,
    ThreatProtection,
)

if TYPE_CHECKING:
    from azure.mgmt.postgresqlflexibleservers import models

T = TypeVar("T")


@dataclass(frozen=True)
class ArmServerData:
    """What ARM showed of one server; a None part has its Gap in ``gaps``."""

    server: AzureServer | None
    firewall_rules: tuple[FirewallRule, ...] | None
    configurations: dict[str, ServerParameter] | None
    administrators: tuple[EntraAdministrator, ...] | None
    gaps: tuple[Gap, ...]
    threat_protection: ThreatProtection | None = None
    diagnostic_settings: tuple[DiagnosticSetting, ...] | None = None
    defender_plan: DefenderPlan | None = None


# The sections this collector fills (each may carry its own Gap).
ARM_SECTIONS = (
    "azure.server",
    "azure.firewall",
    "azure.configurations",
    "azure.administrators",
    "azure.threat_protection",
    "azure.diagnostic_settings",
    "azure.defender_plan",
)


def unavailable(gap: Gap) -> ArmServerData:
    """ARM data of a server that could not be read at all: every section has the gap."""
    return ArmServerData(
        None,
        None,
        None,
        None,
        tuple(gap.model_copy(update={"section": section}) for section in ARM_SECTIONS),
    )


def resource_group_of(resource_id: str) -> str:
    """The resource group named in an ARM id (ids are case-insensitive; keep ARM's case)."""
    parts = resource_id.split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower() == "resourcegroups":
            return parts[index + 1]
    return ""


def server_from_arm(server: models.Server, subscription_id: str) -> AzureServer:
    """The snapshot's view of an ARM server; the admin password field is never read."""
    props = server.properties
    backup = props.backup if props else None
    network = props.network if props else None
    ha = props.high_availability if props else None
    auth = props.auth_config if props else None
    encryption = props.data_encryption if props else None
    resource_id = server.id or ""
    return AzureServer(
        id=resource_id,
        name=server.name or "",
        subscription_id=subscription_id,
        resource_group=resource_group_of(resource_id),
        location=server.location,
        administrator_login=props.administrator_login if props else None,
        version=enum_text(props.version) if props else None,
        state=enum_text(props.state) if props else None,
        fqdn=props.fully_qualified_domain_name if props else None,
        backup_retention_days=backup.backup_retention_days if backup else None,
        geo_redundant_backup=enum_text(backup.geo_redundant_backup) if backup else None,
        high_availability_mode=enum_text(ha.mode) if ha else None,
        public_network_access=enum_text(network.public_network_access) if network else None,
        delegated_subnet_id=network.delegated_subnet_resource_id if network else None,
        private_endpoint_connections=len(props.private_endpoint_connections or ()) if props else 0,
        entra_auth=enum_text(auth.active_directory_auth) if auth else None,
        password_auth=enum_text(auth.password_auth) if auth else None,
        data_encryption=enum_text(encryption.type) if encryption else None,
        customer_key_uri=encryption.primary_key_uri if encryption else None,
        customer_key_status=enum_text(encryption.primary_encryption_key_status)
        if encryption
        else None,
        private_endpoints=tuple(
            _private_endpoint(c) for c in (props.private_endpoint_connections or ())
        )
        if props
        else (),
        tags={str(k): str(v) for k, v in (server.tags or {}).items()},
    )


def listed_in_full(server: models.Server) -> bool:
    """Whether a listed server holds what ``servers.get`` would: its properties, and
    its private endpoint connections (a server in a VNet has none to give)."""
    props = server.properties
    if props is None:
        return False
    network = props.network
    return props.private_endpoint_connections is not None or bool(
        network and network.delegated_subnet_resource_id
    )


def _private_endpoint(connection: models.PrivateEndpointConnection) -> PrivateEndpoint:
    props = connection.properties
    state = props.private_link_service_connection_state if props else None
    return PrivateEndpoint(
        name=connection.name or (connection.id or "").rsplit("/", 1)[-1],
        status=enum_text(state.status) if state else None,
        provisioning_state=enum_text(props.provisioning_state) if props else None,
    )


class ArmCollector:
    """Reads Flexible Servers of one subscription."""

    def __init__(self, session: AzureSession, subscription_id: str) -> None:
        self._session = session
        self._subscription = subscription_id
        self._client = PostgreSQLManagementClient(
            session.credential, subscription_id, **session.arm_kwargs()
        )

    def close(self) -> None:
        self._client.close()

    def list_servers(self, resource_group: str | None) -> list[AzureServer]:
        """Every Flexible Server of the subscription (or of one resource group); raises."""
        return [server for server, _full in self._list(resource_group)]

    def _list(self, resource_group: str | None) -> list[tuple[AzureServer, bool]]:
        """The listed servers, each with whether the list gave it in full."""
        pages: Iterable[models.Server] = (
            self._client.servers.list_by_resource_group(resource_group)
            if resource_group
            else self._client.servers.list_by_subscription()
        )
        return [(server_from_arm(s, self._subscription), listed_in_full(s)) for s in pages]

    def discover(self, resource_group: str | None) -> list[tuple[AzureServer, bool]]:
        """``[azure] discover``: each server with whether the list gave it in full
        (``collect`` then need not read it again); a scope that cannot be listed is a
        config error."""
        where = f"resource group {resource_group}" if resource_group else "the subscription"
        try:
            return self._list(resource_group)
        except ResourceNotFoundError as exc:
            raise ConfigError(
                f"[azure] discover: {where} of subscription {self._subscription} "
                f"does not exist ({error_code(exc)})"
            ) from None
        except Exception as exc:
            gap = self._list_gap(exc, where)
            raise ConfigError(f"[azure] discover: {gap.reason}" + _fix(gap)) from None

    def locate(self, name: str, where: str) -> str | Gap:
        """The resource group of a server named without one (searches the subscription).

        A server the subscription does not have is a config error; a subscription that
        cannot be listed is a Gap (the server's ARM side is then unavailable).
        """
        try:
            servers = self.list_servers(None)
        except Exception as exc:
            return self._list_gap(exc, "the subscription")
        for server in servers:
            if server.name.lower() == name.lower():
                return server.resource_group
        raise ConfigError(
            f"{where}: no Flexible Server {name!r} in subscription {self._subscription}"
        )

    def _list_gap(self, exc: BaseException, where: str) -> Gap:
        return azure_gap(
            "azure.server",
            exc,
            action=f"list the Flexible Servers of {where}",
            role=f"Reader on {where} of subscription {self._subscription}",
            host=host_of(self._session.arm_endpoint),
        )

    def collect(
        self, resource_group: str, name: str, where: str, listed: AzureServer | None = None
    ) -> ArmServerData:
        """Everything ARM shows of one server, each part read on its own.

        ``listed``: the server as ``[azure] discover`` listed it in full; its
        properties are then not read again (``servers.get``). A 404 for the server is
        a ConfigError (the config names a server that is not there); every other
        failure, of any kind, is a Gap of the part that failed.
        """
        role = f"Reader on the server {name} (or on its resource group {resource_group})"
        host = host_of(self._session.arm_endpoint)
        gaps: list[Gap] = []
        fatal: Gap | None = None

        def attempt(
            section: str,
            action: str,
            call: Callable[[], T],
            *,
            absent: Callable[[], T] | None = None,
            section_role: str | None = None,
        ) -> T | None:
            """``call()``, or None with a Gap of ``section`` whatever went wrong.

            ``absent`` answers a 404 of a part that may legitimately not exist.
            """
            nonlocal fatal
            if fatal is not None:
                gaps.append(fatal.model_copy(update={"section": section}))
                return None
            try:
                return call()
            except ResourceNotFoundError as exc:
                if section == "azure.server":
                    raise ConfigError(
                        f"{where}: Azure has no Flexible Server {name!r} in resource group "
                        f"{resource_group!r} of subscription {self._subscription} "
                        f"({error_code(exc)})"
                    ) from None
                if absent is not None:
                    return absent()
                gaps.append(
                    azure_gap(section, exc, action=action, role=section_role or role, host=host)
                )
                return None
            except Exception as exc:
                # SDK errors, responses it could not read (DeserializationError is a
                # ValueError), network failures, values pgwarden did not expect: only
                # this part of the server is lost.
                gap = azure_gap(section, exc, action=action, role=section_role or role, host=host)
                gaps.append(gap)
                # No credential or no network: every further call would fail the same
                # way after its retries; record the same reason for the other parts.
                if _fails_everywhere(exc):
                    fatal = gap
                return None

        ops = self._client
        arm = (
            listed
            if listed is not None
            else attempt(
                "azure.server",
                f"read server {name}",
                lambda: server_from_arm(ops.servers.get(resource_group, name), self._subscription),
            )
        )
        rules = attempt(
            "azure.firewall",
            f"list the firewall rules of server {name}",
            lambda: [
                FirewallRule(
                    name=r.name or "",
                    start_ip=r.properties.start_ip_address if r.properties else "",
                    end_ip=r.properties.end_ip_address if r.properties else "",
                )
                for r in ops.firewall_rules.list_by_server(resource_group, name)
            ],
        )
        parameters = attempt(
            "azure.configurations",
            f"list the server parameters of server {name}",
            lambda: {
                c.name: ServerParameter(
                    name=c.name,
                    value=c.properties.value if c.properties else None,
                    default_value=c.properties.default_value if c.properties else None,
                    source=c.properties.source if c.properties else None,
                    read_only=c.properties.is_read_only if c.properties else None,
                )
                for c in ops.configurations.list_by_server(resource_group, name)
                if c.name
            },
        )
        admins = attempt(
            "azure.administrators",
            f"list the Microsoft Entra administrators of server {name}",
            lambda: [
                EntraAdministrator(
                    principal_name=a.properties.principal_name if a.properties else a.name,
                    principal_type=enum_text(a.properties.principal_type) if a.properties else None,
                    object_id=a.properties.object_id if a.properties else None,
                )
                for a in ops.administrators_microsoft_entra.list_by_server(resource_group, name)
            ],
        )
        threat = attempt(
            "azure.threat_protection",
            f"read the advanced threat protection setting of server {name}",
            lambda: ThreatProtection(
                state=enum_text(
                    _threat_state(
                        ops.advanced_threat_protection_settings.get(resource_group, name, "Default")
                    )
                )
            ),
            absent=ThreatProtection,
        )
        server_id = (
            arm.id if arm is not None else _server_id(self._subscription, resource_group, name)
        )
        diagnostics = attempt(
            "azure.diagnostic_settings",
            f"list the diagnostic settings of server {name}",
            lambda: rest.diagnostic_settings(ops, server_id),
        )
        plan = attempt(
            "azure.defender_plan",
            f"read the Microsoft Defender plans of subscription {self._subscription}",
            lambda: self._session.cache.get(
                ("defender-plan", self._subscription.lower()),
                lambda: rest.defender_plan(
                    ops, self._subscription, rest.OPEN_SOURCE_DATABASES_PLAN
                ),
            ),
            section_role=f"Reader (or Security Reader) on subscription {self._subscription}",
        )
        return ArmServerData(
            server=arm,
            firewall_rules=tuple(rules) if rules is not None else None,
            configurations=parameters,
            administrators=tuple(admins) if admins is not None else None,
            gaps=tuple(gaps),
            threat_protection=threat,
            diagnostic_settings=tuple(diagnostics) if diagnostics is not None else None,
            defender_plan=plan,
        )


def _threat_state(setting: models.AdvancedThreatProtectionSettingsModel) -> object:
    props = setting.properties
    return props.state if props else None


def _server_id(subscription: str, resource_group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}"
    )


def _fails_everywhere(exc: BaseException) -> bool:
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        return False
    return isinstance(exc, ClientAuthenticationError | ServiceRequestError)


def _fix(gap: Gap) -> str:
    return f" ({gap.fix})" if gap.fix else ""
