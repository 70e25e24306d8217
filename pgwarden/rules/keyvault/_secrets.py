"""What the Key Vault rules share: the apps' secrets as read, and how findings name and fix them.

The Key Vault collector reads each app's designated DSN secret (and the values of
secrets named like connection strings in the same vaults), keeping only where they
point: user, host, port, database and sslmode. These rules judge that.
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.model.snapshot import AppSecret, Endpoint, Gap, KeyVault, SecretInfo, ServerSnapshot
from pgwarden.rules.base import Verdict


def secret_resource(vault: str, name: str) -> str:
    """The resource a finding about secret ``name`` of ``vault`` is reported on."""
    return f"secret/{vault}/{name}"


def gap_message(what: str, gap: Gap) -> str:
    """Why ``what`` could not be read, with the fix when one is known."""
    return f"{what}: {gap.reason}" + (f" (fix: {gap.fix})" if gap.fix else "")


def unlisted_vault(vault: KeyVault, app: str | None = None, consequence: str = "") -> Verdict:
    """The ``error`` for a vault whose secrets could not be listed (``consequence``
    says what the rule could then not check)."""
    gap = vault.secrets_gap or Gap(section="azure.keyvault", reason="not listed")
    return Verdict(
        resource=f"vault/{vault.name}",
        app=app,
        status="error",
        message=gap_message(f"vault {vault.name}", gap) + consequence,
    )


def store_command(vault: str, name: str) -> str:
    """The Azure CLI command that stores a corrected connection string as the secret."""
    # --file keeps the connection string off the command line and out of shell history.
    return f"az keyvault secret set --vault-name {vault} --name {name} --file dsn.txt"


def designated_secrets(snapshot: ServerSnapshot) -> tuple[AppSecret, ...]:
    """Each app's designated DSN secret, as collected (the rules require the section)."""
    assert snapshot.azure is not None and snapshot.azure.app_secrets is not None
    return snapshot.azure.app_secrets


def readable_app_secrets(
    snapshot: ServerSnapshot,
) -> Iterator[tuple[AppSecret, SecretInfo, Endpoint] | Verdict]:
    """Each app secret whose DSN was read, or an error Verdict for one that was not.

    A secret that does not exist is PGW-KV-001's finding and is skipped here.
    """
    for item in designated_secrets(snapshot):
        resource = secret_resource(item.vault, item.name)
        if not item.found:
            continue
        if item.gap is not None or item.secret is None:
            gap = item.gap or Gap(section="azure.keyvault", reason="the secret was not read")
            yield Verdict(
                resource=resource,
                app=item.app,
                status="error",
                message=gap_message(f"secret {item.name} of app {item.app!r}", gap),
            )
            continue
        secret = item.secret
        if secret.read_error is not None:
            yield Verdict(
                resource=resource,
                app=item.app,
                status="error",
                message=gap_message(f"secret {item.name}", secret.read_error),
            )
            continue
        if secret.endpoint is None:
            yield Verdict(
                resource=resource,
                app=item.app,
                status="error",
                message=f"secret {item.name} of app {item.app!r} in vault {item.vault}: "
                f"{secret.dsn_error or 'its value could not be parsed'}",
            )
            continue
        yield item, secret, secret.endpoint


def endpoint_evidence(endpoint: Endpoint) -> dict[str, object]:
    """Where a connection string points, as findings show it (never its password)."""
    return endpoint.model_dump()


def secret_passed(resource: str, app: str | None, message: str, **evidence: object) -> Verdict:
    """The pass record of a secret found as it should be, with what shows it."""
    return Verdict(resource=resource, app=app, status="pass", message=message, evidence=evidence)


class VaultApps:
    """The apps whose designated secret lives in each vault, gathered once, on first use
    (a rule asks per vault, or per secret of a vault: a thousand apps' secrets in one
    vault are not searched for each)."""

    def __init__(self, snapshot: ServerSnapshot) -> None:
        self._snapshot = snapshot
        self._by_vault: dict[str, list[str]] | None = None

    def of(self, vault: KeyVault) -> list[str]:
        """The apps whose designated secret is in ``vault``, sorted (a new list)."""
        if self._by_vault is None:
            found: dict[str, set[str]] = {}
            for item in designated_secrets(self._snapshot):
                found.setdefault(item.vault.lower(), set()).add(item.app)
            self._by_vault = {name: sorted(apps) for name, apps in found.items()}
        return list(self._by_vault.get(vault.name.lower(), ()))

    def app(self, vault: KeyVault) -> str | None:
        """The one app whose designated secret lives in ``vault``, or None (no app, or
        several)."""
        apps = self.of(vault)
        return apps[0] if len(apps) == 1 else None
