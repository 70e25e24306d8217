"""PGW-KV and PGW-ADM-002: the apps' connection strings in Azure Key Vault.

The Key Vault collector reads each app's designated DSN secret (and the values of
secrets named like connection strings in the same vaults), keeping only where they
point: user, host, port, database and sslmode. These rules judge that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from pgwarden.model.snapshot import AppSecret, Endpoint, Gap, KeyVault, SecretInfo, ServerSnapshot
from pgwarden.rules.azure_cli import server_args
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict

SECURE_SSLMODES = frozenset({"require", "verify-ca", "verify-full"})
CIS_SECRET_EXPIRY = ("CIS Azure Foundations v3.0 8.3", "CIS Azure Foundations v3.0 8.4")
CIS_RECOVERABLE = ("CIS Azure Foundations v3.0 8.5",)


def _resource(vault: str, name: str) -> str:
    return f"secret/{vault}/{name}"


def _gap_message(what: str, gap: Gap) -> str:
    return f"{what}: {gap.reason}" + (f" (fix: {gap.fix})" if gap.fix else "")


def _store_command(vault: str, name: str) -> str:
    # --file keeps the connection string off the command line and out of shell history.
    return f"az keyvault secret set --vault-name {vault} --name {name} --file dsn.txt"


def _app_secrets(snapshot: ServerSnapshot) -> tuple[AppSecret, ...]:
    assert snapshot.azure is not None and snapshot.azure.app_secrets is not None
    return snapshot.azure.app_secrets


def readable_app_secrets(
    snapshot: ServerSnapshot,
) -> Iterator[tuple[AppSecret, SecretInfo, Endpoint] | Verdict]:
    """Each app secret whose DSN was read, or an error Verdict for one that was not.

    A secret that does not exist is PGW-KV-001's finding and is skipped here.
    """
    for item in _app_secrets(snapshot):
        resource = _resource(item.vault, item.name)
        if not item.found:
            continue
        if item.gap is not None or item.secret is None:
            gap = item.gap or Gap(section="azure.keyvault", reason="the secret was not read")
            yield Verdict(
                resource=resource,
                app=item.app,
                status="error",
                message=_gap_message(f"secret {item.name} of app {item.app!r}", gap),
            )
            continue
        secret = item.secret
        if secret.read_error is not None:
            yield Verdict(
                resource=resource,
                app=item.app,
                status="error",
                message=_gap_message(f"secret {item.name}", secret.read_error),
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


def same_user(user: str | None, admin: str, server: str) -> bool:
    """Whether a DSN's user is the admin (also as Single Server's ``admin@server``)."""
    if user is None:
        return False
    if user == admin:
        return True
    name, _, suffix = user.partition("@")
    return name == admin and suffix.lower() == server.lower()


def _endpoint_evidence(endpoint: Endpoint) -> dict[str, object]:
    return endpoint.model_dump()


def _unknown_admin(context: ServerContext) -> Verdict:
    return Verdict(
        resource=f"server/{context.name}",
        status="error",
        message="the admin role is unknown: set admin_role for this server in the config "
        "(or let pgwarden read administratorLogin from ARM)",
    )


class AppSecretMissing(Rule):
    """An app's DSN secret is missing from its designated vault.

    The tenancy map says where each app's connection string must live. When it is
    not there, the app gets its credentials from somewhere nobody audits: an
    environment variable, a config file, or another app's vault.

    Violation: the vault answers that the secret named by the app's ``secret``
    reference does not exist.

    Fix: store the app's own connection string there: az keyvault secret set
    --vault-name VAULT --name NAME --file dsn.txt, and point the app at it.
    """

    id = "PGW-KV-001"
    severity = "high"
    requires = (Section.AZURE_KEYVAULT,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        for item in _app_secrets(snapshot):
            resource = _resource(item.vault, item.name)
            if item.gap is not None:
                yield Verdict(
                    resource=resource,
                    app=item.app,
                    status="error",
                    message=_gap_message(f"secret {item.name}", item.gap),
                )
            elif not item.found:
                yield Verdict(
                    resource=resource,
                    app=item.app,
                    message=f"app {item.app!r}'s connection string {item.name!r} does not exist "
                    f"in vault {item.vault}",
                    evidence={"reference": item.reference, "vault": item.vault},
                    remediation=_store_command(item.vault, item.name),
                )


class AppSecretUsesAdmin(Rule):
    """An app's DSN secret authenticates as the server administrator.

    The admin role can read and change every tenant's database. An app whose
    connection string logs in as the admin turns any injection or leak in that app
    into a breach of the whole server, and makes the app's own isolation rules
    meaningless. The seed's secai-radar connection string did exactly this.

    Violation: the user in an app's designated DSN secret is the admin role (ARM's
    administratorLogin unless the config names admin_role).

    Fix: create a login role for the app with only its own database's privileges,
    store its connection string in the secret (az keyvault secret set … --file
    dsn.txt), then rotate the admin password.
    """

    id = "PGW-ADM-002"
    severity = "critical"
    requires = (Section.AZURE_KEYVAULT,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        admin = context.admin_role
        if admin is None:
            yield _unknown_admin(context)
            return
        for entry in readable_app_secrets(snapshot):
            if isinstance(entry, Verdict):
                yield entry
                continue
            item, _secret, endpoint = entry
            if not same_user(endpoint.user, admin, context.name):
                continue
            roles = next((a.roles for a in context.server.app if a.name == item.app), ())
            yield Verdict(
                resource=_resource(item.vault, item.name),
                principal=f"role/{admin}",
                app=item.app,
                message=f"app {item.app!r}'s connection string {item.vault}/{item.name} logs in "
                f"as the admin role {admin!r}",
                evidence={
                    "endpoint": _endpoint_evidence(endpoint),
                    "admin_role": admin,
                    "app_roles": list(roles),
                },
                remediation=(
                    f"Point the secret at the app's own role ({', '.join(roles) or 'create one'}): "
                    f"{_store_command(item.vault, item.name)}; then rotate the admin password: "
                    f"az postgres flexible-server update {server_args(snapshot, context)} "
                    "--admin-password NEW_PASSWORD"
                ),
            )


class VaultHoldsAdminSecret(Rule):
    """An app's vault holds a connection string that authenticates as the admin.

    Everyone who may read the app's vault (the app's identity, its pipeline, its
    developers) then holds the keys to every tenant's database. Only secrets whose
    name or content type marks them as connection strings are read (configurable
    with ``[azure] dsn_secret_pattern``); the apps' designated secrets are
    PGW-ADM-002's.

    Violation: a secret other than an app's designated DSN, in a vault that holds an
    app's DSN, whose connection string's user is the admin role.

    Fix: move the admin's connection string to a vault only administrators can read,
    or delete it: az keyvault secret delete --vault-name VAULT --name NAME.
    """

    id = "PGW-KV-002"
    severity = "high"
    requires = (Section.AZURE_KEYVAULT, Section.AZURE_VAULTS)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        admin = context.admin_role
        if admin is None:
            yield _unknown_admin(context)
            return
        azure = snapshot.azure
        assert azure is not None and azure.vaults is not None
        designated = {(a.vault.lower(), a.name) for a in _app_secrets(snapshot)}
        for vault in azure.vaults:
            if vault.secrets is None:
                gap = vault.secrets_gap or Gap(section="azure.keyvault", reason="not listed")
                yield Verdict(
                    resource=f"vault/{vault.name}",
                    status="error",
                    message=_gap_message(f"vault {vault.name}", gap),
                )
                continue
            for secret in vault.secrets:
                if not secret.connection_string or (vault.name.lower(), secret.name) in designated:
                    continue
                if secret.read_error is not None:
                    yield Verdict(
                        resource=_resource(vault.name, secret.name),
                        status="error",
                        message=_gap_message(f"secret {secret.name}", secret.read_error),
                    )
                    continue
                endpoint = secret.endpoint
                if endpoint is None or not same_user(endpoint.user, admin, context.name):
                    continue
                yield Verdict(
                    resource=_resource(vault.name, secret.name),
                    principal=f"role/{admin}",
                    app=_vault_app(snapshot, vault),
                    message=f"vault {vault.name} holds {secret.name!r}, a connection string "
                    f"that logs in as the admin role {admin!r}",
                    evidence={
                        "endpoint": _endpoint_evidence(endpoint),
                        "admin_role": admin,
                        "content_type": secret.content_type,
                    },
                    remediation=f"az keyvault secret delete --vault-name {vault.name} "
                    f"--name {secret.name}",
                )


def _vault_app(snapshot: ServerSnapshot, vault: KeyVault) -> str | None:
    apps = sorted({a.app for a in _app_secrets(snapshot) if a.vault.lower() == vault.name.lower()})
    return apps[0] if len(apps) == 1 else None


def _host_key(host: str) -> str:
    """Compare hosts case-insensitively, with Azure's private DNS alias folded in."""
    host = host.lower().rstrip(".")
    return host.replace(".private.postgres.", ".postgres.")


def _server_hosts(snapshot: ServerSnapshot) -> set[str]:
    hosts: set[str] = set()
    if snapshot.azure is not None and snapshot.azure.server is not None:
        fqdn = snapshot.azure.server.fqdn
        if fqdn:
            hosts.add(_host_key(fqdn))
    if snapshot.postgres is not None and snapshot.postgres.endpoint.host:
        host = snapshot.postgres.endpoint.host
        if not host.startswith("/"):
            hosts.add(_host_key(host))
    return hosts


class AppSecretPointsElsewhere(Rule):
    """An app's DSN secret points at another server, or at a database not the app's.

    A connection string copied from another app, or left over from a migration,
    sends the app to data it must not touch, or lets its credentials work where the
    tenancy map says they should not.

    Violation: the DSN's host is not this server (its ARM FQDN, its private DNS
    alias, or the host pgwarden connected to), or its database is not one of the
    app's (another app's database is named as such).

    Fix: correct the connection string to this server and the app's own database
    and store it again (az keyvault secret set … --file dsn.txt).
    """

    id = "PGW-KV-003"
    severity = "medium"
    requires = (Section.AZURE_KEYVAULT,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        hosts = _server_hosts(snapshot)
        owners = context.app_databases()
        for entry in readable_app_secrets(snapshot):
            if isinstance(entry, Verdict):
                yield entry
                continue
            item, _secret, endpoint = entry
            resource = _resource(item.vault, item.name)
            evidence = {"endpoint": _endpoint_evidence(endpoint), "server_hosts": sorted(hosts)}
            if not hosts:
                yield Verdict(
                    resource=resource,
                    app=item.app,
                    status="error",
                    message="the server's host name is unknown (neither ARM nor a "
                    "PostgreSQL connection showed it)",
                )
                continue
            if endpoint.host is None or _host_key(endpoint.host) not in hosts:
                yield Verdict(
                    resource=resource,
                    app=item.app,
                    message=f"app {item.app!r}'s connection string points at host "
                    f"{endpoint.host or '(none)'!r}, not at server {context.name!r}",
                    evidence=evidence,
                    remediation=_store_command(item.vault, item.name),
                )
                continue
            app = next((a for a in context.server.app if a.name == item.app), None)
            database = endpoint.database
            if app is None or not app.databases or database in app.databases:
                continue
            owner = owners.get(database or "")
            whose = f"app {owner!r}'s database" if owner else "a database that is not the app's"
            yield Verdict(
                resource=resource,
                app=item.app,
                message=f"app {item.app!r}'s connection string opens {database!r}, {whose}",
                evidence={
                    **evidence,
                    "app_databases": list(app.databases),
                    "database_owner": owner,
                },
                remediation=_store_command(item.vault, item.name),
            )


class AppSecretWithoutTls(Rule):
    """An app's DSN secret does not require TLS.

    libpq's default sslmode is ``prefer``: it falls back to an unencrypted connection
    when TLS fails, and never checks whose certificate it got, so anyone on the path
    can downgrade or intercept the connection and read the password exchange.

    Violation: the DSN's sslmode is absent, disable, allow or prefer.

    Fix: add sslmode=verify-full (with the server's CA) or at least sslmode=require to
    the connection string and store it again (az keyvault secret set … --file dsn.txt).
    """

    id = "PGW-KV-004"
    severity = "medium"
    requires = (Section.AZURE_KEYVAULT,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        for entry in readable_app_secrets(snapshot):
            if isinstance(entry, Verdict):
                yield entry
                continue
            item, _secret, endpoint = entry
            mode = (endpoint.sslmode or "").lower()
            if mode in SECURE_SSLMODES:
                continue
            yield Verdict(
                resource=_resource(item.vault, item.name),
                app=item.app,
                message=f"app {item.app!r}'s connection string "
                + (f"sets sslmode={mode}" if mode else "sets no sslmode (libpq: prefer)")
                + ": the connection may be unencrypted or intercepted",
                evidence={"endpoint": _endpoint_evidence(endpoint)},
                remediation="Add sslmode=verify-full (or sslmode=require) to the DSN, then "
                + _store_command(item.vault, item.name),
            )


def dsn_secrets(snapshot: ServerSnapshot) -> Iterator[tuple[SecretInfo, str | None]]:
    """Every connection-string secret seen: designated ones first, with their app."""
    seen: set[tuple[str, str]] = set()
    for item in _app_secrets(snapshot):
        if item.secret is not None:
            seen.add((item.vault.lower(), item.name))
            yield item.secret, item.app
    for vault in snapshot.azure.vaults or () if snapshot.azure else ():
        for secret in vault.secrets or ():
            if secret.connection_string and (vault.name.lower(), secret.name) not in seen:
                yield secret, _vault_app(snapshot, vault)


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
    frameworks = CIS_SECRET_EXPIRY
    requires = (Section.AZURE_KEYVAULT,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        now = datetime.now(UTC)
        for secret, app in dsn_secrets(snapshot):
            problems = []
            if secret.enabled is False:
                problems.append("is disabled")
            if secret.expires_on is None:
                problems.append("has no expiry date")
            elif secret.expires_on <= now:
                problems.append(f"expired on {secret.expires_on.date().isoformat()}")
            if not problems:
                continue
            yield Verdict(
                resource=_resource(secret.vault, secret.name),
                app=app,
                message=f"connection string {secret.vault}/{secret.name} {' and '.join(problems)}",
                evidence={
                    "enabled": secret.enabled,
                    "expires_on": secret.expires_on.isoformat() if secret.expires_on else None,
                    "updated_on": secret.updated_on.isoformat() if secret.updated_on else None,
                },
                remediation=f"Rotate the password, then {_store_command(secret.vault, secret.name)}"
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
    frameworks = CIS_RECOVERABLE
    requires = (Section.AZURE_VAULTS,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        azure = snapshot.azure
        assert azure is not None and azure.vaults is not None
        for vault in azure.vaults:
            resource = f"vault/{vault.name}"
            if vault.properties_gap is not None:
                yield Verdict(
                    resource=resource,
                    status="error",
                    message=_gap_message(f"vault {vault.name}'s properties", vault.properties_gap),
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
                continue
            yield Verdict(
                resource=resource,
                app=_vault_app(snapshot, vault),
                message=f"vault {vault.name}, which holds app connection strings, has no "
                f"{' and no '.join(missing)}",
                evidence={
                    "soft_delete": vault.soft_delete,
                    "purge_protection": vault.purge_protection,
                    "apps": sorted(
                        {
                            a.app
                            for a in _app_secrets(snapshot)
                            if a.vault.lower() == vault.name.lower()
                        }
                    ),
                },
                remediation="\n".join(commands),
            )


RULES = [
    AppSecretMissing,
    AppSecretUsesAdmin,
    VaultHoldsAdminSecret,
    AppSecretPointsElsewhere,
    AppSecretWithoutTls,
    DsnSecretLifecycle,
    VaultNotRecoverable,
]
