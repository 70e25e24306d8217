"""PGW-AZ-002: data encrypted at rest with a customer-managed key."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import AZURE_POLICY, NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import resource_group
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict


class NoCustomerManagedKey(Rule):
    """The server's data is not encrypted with a customer-managed key while the policy asks.

    By default Azure encrypts a Flexible Server's storage with keys Microsoft manages.
    A customer-managed key in the customer's Key Vault lets the owners rotate it,
    audit its use and revoke access to every copy of the data (backups included),
    which many regulations require. Checked only when ``require_customer_managed_key``
    is true.

    Violation: ``dataEncryption.type`` is not AzureKeyVault, or the server names no
    primary key URI, while ``require_customer_managed_key`` is true.

    Fix: the encryption type is chosen when a server is created: restore (or create)
    the server with a customer-managed key, az postgres flexible-server restore …
    --key KEY_URI --identity USER_ASSIGNED_IDENTITY, and move the apps to it.
    """

    id = "PGW-AZ-002"
    severity = "medium"
    controls = (
        Control(AZURE_POLICY, "12c74c95-0efd-48da-b8d9-2a7d68470c92"),
        Control(NIST_800_53, "SC-12"),
        Control(NIST_800_53, "SC-28(1)"),
    )
    requires = (Section.AZURE_SERVER,)
    policy_switch = "require_customer_managed_key"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        azure = snapshot.azure
        assert azure is not None and azure.server is not None
        server = azure.server
        customer_key = (server.data_encryption or "").lower() == "azurekeyvault"
        if customer_key and server.customer_key_uri:
            return
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"server {server.name!r} encrypts its data with "
            + (
                "a customer-managed key setting that names no key"
                if customer_key
                else "Microsoft-managed keys"
            )
            + "; the policy requires a customer-managed key",
            evidence={
                "data_encryption": server.data_encryption or "SystemManaged",
                "primary_key_uri": server.customer_key_uri,
            },
            remediation="az postgres flexible-server restore "
            f"--resource-group {resource_group(snapshot, context)} --name NEW_SERVER "
            f"--source-server {server.name} --key KEY_URI --identity USER_ASSIGNED_IDENTITY",
        )
