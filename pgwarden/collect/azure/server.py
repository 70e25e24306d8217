"""Assemble one server's AzureSnapshot from the ARM, Key Vault and Monitor collectors,
and find the Flexible Servers that ``[azure] discover`` asks for (a server discovery
listed in full is kept for the run, so collecting it does not read it again)."""

from __future__ import annotations

from dataclasses import dataclass

from pgwarden.collect.azure.arm import ArmCollector, ArmServerData, unavailable
from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.collect.azure.identity import signed_in_identity
from pgwarden.collect.azure.keyvault import KeyVaultCollector
from pgwarden.collect.azure.monitor import collect_metric_alerts
from pgwarden.collect.azure.vault_access import VaultAccessCollector
from pgwarden.model.config import AzureRef, Config, ServerConfig
from pgwarden.model.shards import arm_server_id
from pgwarden.model.snapshot import AzureServer, AzureSnapshot, Gap


def collect_azure(config: Config, server: ServerConfig, session: AzureSession) -> AzureSnapshot:
    """Everything Azure shows about one configured (or discovered) server.

    Parts the config does not ask for stay None without a Gap (rules needing them do
    not apply); parts Azure refused or failed stay None with a Gap saying why.
    """
    where = f"{config.path or 'config'}: server[name={server.name!r}]"
    ref = server.azure
    arm = ArmServerData(None, None, None, None, ())
    alerts = None
    gaps: list[Gap] = []
    if ref is not None:
        collector = ArmCollector(session, ref.subscription_id)
        try:
            name = ref.server_name or server.name
            group = ref.resource_group or collector.locate(name, f"{where}.azure")
            arm = (
                unavailable(group)
                if isinstance(group, Gap)
                else collector.collect(
                    group,
                    name,
                    f"{where}.azure",
                    listed=_listed(session, ref.subscription_id, group, name),
                )
            )
        finally:
            collector.close()
        gaps.extend(arm.gaps)
        if arm.server is not None:
            alerts, alerts_gap = collect_metric_alerts(session, ref.subscription_id, arm.server.id)
            if alerts_gap is not None:
                gaps.append(alerts_gap)
        else:
            gaps.append(
                Gap(
                    section="azure.alerts",
                    reason="the server's ARM id is unknown, so its alerts cannot be matched",
                    fix=arm.gaps[0].fix if arm.gaps else None,
                )
            )
    app_secrets = vaults = vault_access = None
    if any(app.secret for app in server.app):
        keyvault = KeyVaultCollector(
            session,
            subscription_id=ref.subscription_id if ref else None,
            dsn_secret_pattern=config.azure.dsn_secret_pattern,
        )
        data = keyvault.collect(server.app, f"{where}.app")
        app_secrets, vaults = data.app_secrets, data.vaults
        vault_access = VaultAccessCollector(session).collect(vaults, data.listed)
    return AzureSnapshot(
        cloud=session.cloud.name,
        server=arm.server,
        firewall_rules=arm.firewall_rules,
        configurations=arm.configurations,
        administrators=arm.administrators,
        app_secrets=app_secrets,
        vaults=vaults,
        metric_alerts=alerts,
        threat_protection=arm.threat_protection,
        defender_plan=arm.defender_plan,
        diagnostic_settings=arm.diagnostic_settings,
        vault_access=vault_access,
        gaps=tuple(gaps),
        identity=signed_in_identity(session),
    )


@dataclass(frozen=True)
class DiscoveredServer:
    """A Flexible Server found by discovery that no ``[[server]]`` names."""

    config: ServerConfig
    server: AzureServer


def discover_servers(config: Config, session: AzureSession) -> list[DiscoveredServer]:
    """Flexible Servers in the ``[azure] discover`` scopes that the config does not name.

    A configured server is recognised by its ARM name, subscription and (when given)
    resource group; a discovered one whose name a configured server already uses is
    named ``RESOURCE_GROUP/NAME``.
    """
    found: list[DiscoveredServer] = []
    taken = {s.name for s in config.server}
    for scope in config.azure.discover:
        collector = ArmCollector(session, scope.subscription_id)
        try:
            servers = collector.discover(scope.resource_group)
        finally:
            collector.close()
        for arm, in_full in servers:
            if _configured(config, arm) or any(
                d.server.id.lower() == arm.id.lower() for d in found
            ):
                continue
            if in_full:
                # collect_azure takes it from here instead of reading it again.
                session.cache.put(
                    _listed_key(arm.subscription_id, arm.resource_group, arm.name), arm
                )
            name = arm.name if arm.name not in taken else f"{arm.resource_group}/{arm.name}"
            taken.add(name)
            ref = AzureRef(
                subscription_id=arm.subscription_id,
                resource_group=arm.resource_group,
                server_name=arm.name,
            )
            found.append(DiscoveredServer(ServerConfig(name=name, azure=ref), arm))
    return found


def _listed_key(subscription_id: str, resource_group: str, name: str) -> tuple[str, str]:
    return ("discovered-server", arm_server_id(subscription_id, resource_group, name))


def _listed(
    session: AzureSession, subscription_id: str, resource_group: str, name: str
) -> AzureServer | None:
    """The server as discovery listed it in full, if it was discovered (not configured)."""
    listed = session.cache.peek(_listed_key(subscription_id, resource_group, name))
    return listed if isinstance(listed, AzureServer) else None


def _configured(config: Config, arm: AzureServer) -> bool:
    for server in config.server:
        ref = server.azure
        if ref is None or ref.subscription_id.lower() != arm.subscription_id.lower():
            continue
        if (ref.server_name or server.name).lower() != arm.name.lower():
            continue
        if ref.resource_group is None or ref.resource_group.lower() == arm.resource_group.lower():
            return True
    return False
