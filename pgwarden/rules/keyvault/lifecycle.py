"""PGW-KV-005 and -006: connection strings that are never rotated, and vaults that lose them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from pgwarden.model.frameworks.catalogue import CIS_AZURE
from pgwarden.model.snapshot import SecretInfo, ServerSnapshot
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict
from pgwarden.rules.control_sets import AUTHENTICATORS
from pgwarden.rules.keyvault._secrets import (
    VaultApps,
    designated_secrets,
    gap_message,
    secret_passed,
    secret_resource,
    store_command,
    unlisted_vault,
)

_OTHERS_UNCHECKED = "; connection strings other than the apps' designated ones were not checked"


def dsn_secrets(snapshot: ServerSnapshot) -> Iterator[tuple[SecretInfo, str | None] | Verdict]:
    """Every connection-string secret seen: designated ones first, with their app; then
    an ``error`` for each vault whose secrets could not be listed (its other connection
    strings were not seen, so they are not shown clean)."""
    seen: set[tuple[str, str]] = set()
    for item in designated_secrets(snapshot):
        if item.secret is not None:
            seen.add((item.vault.lower(), item.name))
            yield item.secret, item.app
    azure = snapshot.azure
    assert azure is not None
    if azure.vaults is None:
        gap = azure.gap(Section.AZURE_VAULTS)
        if gap is not None:
            yield Verdict(
                resource=f"server/{snapshot.name}",
                status="error",
                message=gap_message("the vaults holding the apps' secrets", gap)
                + _OTHERS_UNCHECKED,
            )
        return
    apps = VaultApps(snapshot)
    for vault in azure.vaults:
        if vault.secrets is None:
            yield unlisted_vault(vault, apps.app(vault), _OTHERS_UNCHECKED)
            continue
        for secret in vault.secrets:
            if secret.connection_string and (vault.name.lower(), secret.name) not in seen:
                yield secret, apps.app(vault)


class DsnSecretLifecycle(Rule):
    """A DSN secret has no expiry date, has expired, or is disabled.

    A connection string without an expiry is never rotated by design: it outlives the
    people and pipelines that copied it. An expired or disabled one still in use means
    the app reads it from somewhere else, or is about to fail.

    Violation: a connection-string secret (an app's designated one, or one named like
    a DSN in an app's vault) without an expiry (``exp``), past it, or disabled.

    Fix: rotate the password and store the new connection string with an expiry:
    az keyvault secret set --vault-name VAULT --name NAME --file dsn.txt --expires
    2026-12-31T00:00:00Z (for a disabled one: az keyvault secret set-attributes …
    --enabled true, or delete it).
    """

    id = "PGW-KV-005"
    severity = "low"
    requires = (Section.TENANCY_MAP, Section.AZURE_KEYVAULT)
    # Secrets in vaults with RBAC (3.3.3) and with access policies (3.3.4) alike.
    controls = (Control(CIS_AZURE, "3.3.3"), Control(CIS_AZURE, "3.3.4"), *AUTHENTICATORS)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        now = datetime.now(UTC)
        for seen in dsn_secrets(snapshot):
            if isinstance(seen, Verdict):
                yield seen
                continue
            secret, app = seen
            problems = []
            if secret.enabled is False:
                problems.append("is disabled")
            if secret.expires_on is None:
                problems.append("has no expiry date")
            elif secret.expires_on <= now:
                problems.append(f"expired on {secret.expires_on.date().isoformat()}")
            if not problems:
                if context.include_passed:
                    assert secret.expires_on is not None
                    yield secret_passed(
                        secret_resource(secret.vault, secret.name),
                        app,
                        f"connection string {secret.vault}/{secret.name} is enabled and expires "
                        f"on {secret.expires_on.date().isoformat()}",
                        enabled=secret.enabled,
                        expires_on=secret.expires_on.isoformat(),
                        updated_on=secret.updated_on.isoformat() if secret.updated_on else None,
                    )
                continue
            yield Verdict(
                resource=secret_resource(secret.vault, secret.name),
                app=app,
                message=f"connection string {secret.vault}/{secret.name} {' and '.join(problems)}",
                evidence={
                    "enabled": secret.enabled,
                    "expires_on": secret.expires_on.isoformat() if secret.expires_on else None,
                    "updated_on": secret.updated_on.isoformat() if secret.updated_on else None,
                },
                remediation=f"Rotate the password, then {store_command(secret.vault, secret.name)}"
                " --expires YYYY-MM-DDT00:00:00Z",
            )


class VaultNotRecoverable(Rule):
    """A vault holding DSN secrets lacks soft delete or purge protection.

    Without soft delete, a deleted connection string is gone at once; without purge
    protection, anyone who may delete can also purge, so an attacker (or a mistaken
    script) can destroy every app's credentials beyond recovery during the retention
    period.

    Violation: a vault that holds an app's DSN secret has ``enableSoftDelete`` false
    or ``enablePurgeProtection`` not true.

    Fix: az keyvault update --name VAULT --enable-purge-protection true (soft delete
    is on for every vault created since 2020; purge protection cannot be turned off
    again).
    """

    id = "PGW-KV-006"
    severity = "medium"
    requires = (Section.TENANCY_MAP, Section.AZURE_VAULTS)
    controls = (Control(CIS_AZURE, "3.3.5"), *AUTHENTICATORS)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        azure = snapshot.azure
        assert azure is not None and azure.vaults is not None
        apps = VaultApps(snapshot)
        for vault in azure.vaults:
            resource = f"vault/{vault.name}"
            if vault.properties_gap is not None:
                yield Verdict(
                    resource=resource,
                    status="error",
                    message=gap_message(f"vault {vault.name}'s properties", vault.properties_gap),
                )
                continue
            missing = []
            commands = []
            if vault.soft_delete is False:
                missing.append("soft delete")
                commands.append(f"az keyvault update --name {vault.name} --enable-soft-delete true")
            if not vault.purge_protection:
                missing.append("purge protection")
                commands.append(
                    f"az keyvault update --name {vault.name} --enable-purge-protection true"
                )
            if not missing:
                if context.include_passed:
                    yield secret_passed(
                        resource,
                        apps.app(vault),
                        f"vault {vault.name} has soft delete and purge protection",
                        soft_delete=vault.soft_delete,
                        purge_protection=vault.purge_protection,
                    )
                continue
            yield Verdict(
                resource=resource,
                app=apps.app(vault),
                message=f"vault {vault.name}, which holds app connection strings, has no "
                f"{' and no '.join(missing)}",
                evidence={
                    "soft_delete": vault.soft_delete,
                    "purge_protection": vault.purge_protection,
                    "apps": apps.of(vault),
                },
                remediation="\n".join(commands),
            )
