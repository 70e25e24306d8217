"""PGW-ADM-002 and PGW-KV-002: connection strings that log in as the server's admin."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import server_args
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict
from pgwarden.rules.control_sets import ADMIN_FOR_APPLICATIONS, ADMIN_PRIVILEGES, AUTHENTICATORS
from pgwarden.rules.keyvault._secrets import (
    VaultApps,
    designated_secrets,
    endpoint_evidence,
    gap_message,
    readable_app_secrets,
    secret_passed,
    secret_resource,
    store_command,
    unlisted_vault,
)


def same_user(user: str | None, admin: str, server: str) -> bool:
    """Whether a DSN's user is the admin (also as Single Server's ``admin@server``)."""
    if user is None:
        return False
    if user == admin:
        return True
    name, _, suffix = user.partition("@")
    return name == admin and suffix.lower() == server.lower()


def _unknown_admin(context: ServerContext) -> Verdict:
    return Verdict(
        resource=f"server/{context.name}",
        status="error",
        message="the admin role is unknown: set admin_role for this server in the config "
        "(or let pgwarden read administratorLogin from ARM)",
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
    requires = (Section.TENANCY_MAP, Section.AZURE_KEYVAULT)
    controls = (*ADMIN_PRIVILEGES, *ADMIN_FOR_APPLICATIONS, *AUTHENTICATORS)

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
                if context.include_passed:
                    yield secret_passed(
                        secret_resource(item.vault, item.name),
                        item.app,
                        f"app {item.app!r}'s connection string logs in as {endpoint.user!r}, "
                        f"not as the admin role {admin!r}",
                        endpoint=endpoint_evidence(endpoint),
                        admin_role=admin,
                    )
                continue
            found = context.app_named(item.app)
            roles = found.roles if found is not None else ()
            yield Verdict(
                resource=secret_resource(item.vault, item.name),
                principal=f"role/{admin}",
                app=item.app,
                message=f"app {item.app!r}'s connection string {item.vault}/{item.name} logs in "
                f"as the admin role {admin!r}",
                evidence={
                    "endpoint": endpoint_evidence(endpoint),
                    "admin_role": admin,
                    "app_roles": list(roles),
                },
                remediation=(
                    f"Point the secret at the app's own role ({', '.join(roles) or 'create one'}): "
                    f"{store_command(item.vault, item.name)}; then rotate the admin password: "
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
    requires = (Section.TENANCY_MAP, Section.AZURE_KEYVAULT, Section.AZURE_VAULTS)
    controls = (*AUTHENTICATORS, *ADMIN_FOR_APPLICATIONS[1:])

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        admin = context.admin_role
        if admin is None:
            yield _unknown_admin(context)
            return
        azure = snapshot.azure
        assert azure is not None and azure.vaults is not None
        designated = {(a.vault.lower(), a.name) for a in designated_secrets(snapshot)}
        apps = VaultApps(snapshot)
        for vault in azure.vaults:
            # Anything reported about the vault's secrets (a violation, or one not read)
            # means it is not shown clean.
            reported = False
            if vault.secrets is None:
                yield unlisted_vault(vault)
                continue
            for secret in vault.secrets:
                if not secret.connection_string or (vault.name.lower(), secret.name) in designated:
                    continue
                if secret.read_error is not None:
                    reported = True
                    yield Verdict(
                        resource=secret_resource(vault.name, secret.name),
                        status="error",
                        message=gap_message(f"secret {secret.name}", secret.read_error),
                    )
                    continue
                endpoint = secret.endpoint
                if endpoint is None or not same_user(endpoint.user, admin, context.name):
                    continue
                reported = True
                yield Verdict(
                    resource=secret_resource(vault.name, secret.name),
                    principal=f"role/{admin}",
                    app=apps.app(vault),
                    message=f"vault {vault.name} holds {secret.name!r}, a connection string "
                    f"that logs in as the admin role {admin!r}",
                    evidence={
                        "endpoint": endpoint_evidence(endpoint),
                        "admin_role": admin,
                        "content_type": secret.content_type,
                    },
                    remediation=f"az keyvault secret delete --vault-name {vault.name} "
                    f"--name {secret.name}",
                )
            if context.include_passed and not reported:
                checked = sorted(
                    s.name
                    for s in vault.secrets
                    if s.connection_string and (vault.name.lower(), s.name) not in designated
                )
                yield secret_passed(
                    f"vault/{vault.name}",
                    apps.app(vault),
                    f"vault {vault.name} holds no connection string that logs in as the admin "
                    f"role {admin!r}",
                    connection_strings_checked=checked,
                    admin_role=admin,
                )
