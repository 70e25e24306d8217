"""PGW-KV-009 and -010: how an app vault decides who gets in, and from where."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pgwarden.model.frameworks.catalogue import AZURE_POLICY, CIS_AZURE
from pgwarden.model.snapshot import KeyVault, ServerSnapshot
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict
from pgwarden.rules.keyvault._secrets import VaultApps, gap_message


def app_vaults(snapshot: ServerSnapshot) -> Iterator[KeyVault | Verdict]:
    """Each app vault whose properties were read, or an error for one that was not."""
    assert snapshot.azure is not None and snapshot.azure.vaults is not None
    for vault in snapshot.azure.vaults:
        if vault.properties_gap is None:
            yield vault
            continue
        yield Verdict(
            resource=f"vault/{vault.name}",
            status="error",
            message=gap_message(f"vault {vault.name}'s properties", vault.properties_gap),
        )


def accepts_all_networks(vault: KeyVault) -> bool:
    """Public network access on, and no firewall (``networkAcls.defaultAction`` not Deny).

    ARM omits ``networkAcls`` for a vault that never had a firewall: that is Allow.
    """
    public = (vault.public_network_access or "Enabled").lower() != "disabled"
    return public and (vault.network_default_action or "Allow").lower() != "deny"


class VaultUsesAccessPolicies(Rule):
    """A vault holding DSN secrets uses access policies instead of Azure RBAC.

    With access policies, anyone who may write the vault's ARM resource (Contributor,
    Key Vault Contributor) can grant themselves ``get`` on every secret; the grants
    sit outside Azure RBAC, so Privileged Identity Management, access reviews and
    deny assignments never see them, and a grant cannot be narrowed to one secret.

    Violation: ``enableRbacAuthorization`` is false or absent on a vault holding an
    app's DSN secret, while ``[policy] require_vault_rbac`` is true (the default).

    Fix: give each app's identity Key Vault Secrets User on its secret (az role
    assignment create --role "Key Vault Secrets User" --assignee OBJECT_ID --scope
    VAULT_ID/secrets/NAME), then az keyvault update --name VAULT
    --enable-rbac-authorization true (the access policies stop applying at once).
    """

    id = "PGW-KV-009"
    severity = "low"
    controls = (
        Control(CIS_AZURE, "3.3.6"),
        Control(AZURE_POLICY, "12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5"),
    )
    requires = (
        Section.TENANCY_MAP,
        Section.AZURE_VAULTS,
    )
    policy_switch = "require_vault_rbac"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        apps = VaultApps(snapshot)
        for vault in app_vaults(snapshot):
            if isinstance(vault, Verdict):
                yield vault
                continue
            if vault.rbac_authorization:
                continue
            yield Verdict(
                resource=f"vault/{vault.name}",
                app=apps.app(vault),
                message=f"vault {vault.name}, which holds app connection strings, authorizes "
                "with access policies instead of Azure RBAC",
                evidence={
                    "enable_rbac_authorization": vault.rbac_authorization,
                    "apps": apps.of(vault),
                },
                remediation='# first: az role assignment create --role "Key Vault Secrets User" '
                "--assignee APP_OBJECT_ID --scope VAULT_ID/secrets/SECRET (each app identity)\n"
                f"az keyvault update --name {vault.name} --enable-rbac-authorization true",
            )


class VaultOpenToAllNetworks(Rule):
    """A vault holding DSN secrets accepts traffic from all networks.

    A vault reachable from the whole internet lets a leaked credential of any
    principal that can read it be used from anywhere. A firewall (deny by default,
    with the apps' networks allowed) or public network access turned off behind a
    private endpoint keeps the connection strings reachable only from where the apps
    run.

    Violation: ``publicNetworkAccess`` is not Disabled and ``networkAcls.defaultAction``
    is not Deny (absent counts as Allow) on a vault holding an app's DSN secret, while
    ``[policy] require_vault_firewall`` is true (the default).

    Fix: az keyvault update --name VAULT --default-action Deny --bypass AzureServices,
    then az keyvault network-rule add --name VAULT --subnet SUBNET_ID (or --ip-address
    for the apps' addresses); or az keyvault update --name VAULT
    --public-network-access Disabled with a private endpoint.
    """

    id = "PGW-KV-010"
    severity = "medium"
    controls = (
        Control(CIS_AZURE, "3.3.7"),  # in part: whether a private endpoint is used is manual
        Control(AZURE_POLICY, "55615ac9-af46-4a59-874e-391cc3dfb490"),
    )
    requires = (
        Section.TENANCY_MAP,
        Section.AZURE_VAULTS,
    )
    policy_switch = "require_vault_firewall"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        apps = VaultApps(snapshot)
        for vault in app_vaults(snapshot):
            if isinstance(vault, Verdict):
                yield vault
                continue
            if not accepts_all_networks(vault):
                continue
            yield Verdict(
                resource=f"vault/{vault.name}",
                app=apps.app(vault),
                message=f"vault {vault.name}, which holds app connection strings, accepts "
                "traffic from all networks",
                evidence={
                    "public_network_access": vault.public_network_access,
                    "network_default_action": vault.network_default_action,
                    "apps": apps.of(vault),
                },
                remediation=f"az keyvault update --name {vault.name} --default-action Deny "
                "--bypass AzureServices\n"
                f"az keyvault network-rule add --name {vault.name} --subnet APP_SUBNET_ID",
            )
