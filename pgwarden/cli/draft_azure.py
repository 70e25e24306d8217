"""What Azure says about a server for ``pgwarden init``: ARM's admin and the apps' DSN secrets.

ARM's ``administratorLogin`` names the admin outright. The vaults (those named with
``--vault``, else every vault of the subscription the identity can list) are read as
a scan reads an app's vault: secret metadata, and for connection strings only where
they point (user, host, database), each value dropped at once. A DSN that points at
this server says which role an app logs in as, and where its ``secret`` lives.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from pgwarden.cli.draft_evidence import DsnSecret
from pgwarden.collect.azure.arm import ArmCollector
from pgwarden.collect.azure.cloud import AzureSession, host_of
from pgwarden.collect.azure.keyvault import KeyVaultCollector
from pgwarden.model.config import AzureRef
from pgwarden.model.snapshot import AzureServer, Gap, KeyVault


@dataclass(frozen=True)
class AzureFacts:
    """ARM's view of the server, the DSN secrets for it, and what could not be read."""

    server: AzureServer | None
    secrets: tuple[DsnSecret, ...]
    arm_problem: str | None = None
    vault_problems: tuple[str, ...] = ()


def _line(gap: Gap) -> str:
    return gap.reason + (f" ({gap.fix})" if gap.fix else "")


def secret_reference(vault: KeyVault, secret: str, keyvault_suffix: str) -> str:
    """The ``secret`` line of a map: ``keyvault:VAULT/SECRET`` when the vault has its
    cloud DNS name, else the full secret URI (private endpoints, custom DNS)."""
    host = host_of(vault.url).lower()
    if host == f"{vault.name}.{keyvault_suffix}".lower():
        return f"keyvault:{vault.name}/{secret}"
    return f"keyvault:{vault.url.rstrip('/')}/secrets/{secret}"


def points_here(host: str | None, hosts: Collection[str], server_name: str | None) -> bool:
    """Whether a DSN's host is this server: its FQDN, the address init used, or a name
    whose first label is the server's (a private-link alias)."""
    if not host:
        return False
    host = host.lower()
    return host in hosts or (server_name is not None and host.split(".")[0] == server_name.lower())


def read_azure_facts(
    session: AzureSession,
    ref: AzureRef,
    server_name: str,
    *,
    vaults: Sequence[str],
    hosts: Collection[str],
    dsn_secret_pattern: str,
) -> AzureFacts:
    """ARM's server (found by name when no resource group is given) and the DSN
    secrets in the vaults that point at it. A server ARM does not know is a
    ConfigError; every other failure is a problem for the review list."""
    where = "pgwarden init: --azure-subscription"
    arm = ArmCollector(session, ref.subscription_id)
    try:
        name = ref.server_name or server_name
        located = ref.resource_group or arm.locate(name, where)
        # A subscription that cannot be listed leaves the server unknown: a review item.
        data = arm.collect(located, name, where) if isinstance(located, str) else None
    finally:
        arm.close()
    if data is None:
        assert isinstance(located, Gap)
        arm_gap: Gap | None = located
        server = None
    else:
        arm_gap = next((gap for gap in data.gaps if gap.section == "azure.server"), None)
        server = data.server
    known = {h.lower() for h in hosts}
    if server is not None and server.fqdn:
        known.add(server.fqdn.lower())
    keyvault = KeyVaultCollector(
        session, subscription_id=ref.subscription_id, dsn_secret_pattern=dsn_secret_pattern
    )
    listed, listing_gap = keyvault.collect_vaults(vaults)
    problems: list[str] = []
    if listing_gap is not None and not vaults:
        problems.append(_line(listing_gap))
    secrets: list[DsnSecret] = []
    for vault in listed:
        if vault.secrets_gap is not None:
            problems.append(_line(vault.secrets_gap))
        for info in vault.secrets or ():
            if info.read_error is not None:
                problems.append(_line(info.read_error))
                continue
            endpoint = info.endpoint
            if endpoint is None or not points_here(endpoint.host, known, name):
                continue
            # Single Server's user@server form: the role is the part before the @.
            user = (endpoint.user or "").split("@")[0] or None
            secrets.append(
                DsnSecret(
                    reference=secret_reference(vault, info.name, session.cloud.keyvault_suffix),
                    vault=vault.name,
                    name=info.name,
                    user=user,
                    database=endpoint.database,
                )
            )
    return AzureFacts(
        server=server,
        secrets=tuple(secrets),
        arm_problem=_line(arm_gap) if arm_gap is not None else None,
        vault_problems=tuple(dict.fromkeys(problems)),
    )
