"""PGW-KV-001, -003 and -004: each app's own connection string is there, points home, uses TLS."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict
from pgwarden.rules.control_sets import AUTHENTICATORS, ENCRYPTED_TRANSPORT, TLS_CONFIGURED
from pgwarden.rules.keyvault._secrets import (
    designated_secrets,
    endpoint_evidence,
    gap_message,
    readable_app_secrets,
    secret_passed,
    secret_resource,
    store_command,
)

SECURE_SSLMODES = frozenset({"require", "verify-ca", "verify-full"})


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
    requires = (Section.TENANCY_MAP, Section.AZURE_KEYVAULT)
    controls = AUTHENTICATORS

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        for item in designated_secrets(snapshot):
            resource = secret_resource(item.vault, item.name)
            if item.gap is not None:
                yield Verdict(
                    resource=resource,
                    app=item.app,
                    status="error",
                    message=gap_message(f"secret {item.name}", item.gap),
                )
            elif not item.found:
                yield Verdict(
                    resource=resource,
                    app=item.app,
                    message=f"app {item.app!r}'s connection string {item.name!r} does not exist "
                    f"in vault {item.vault}",
                    evidence={"reference": item.reference, "vault": item.vault},
                    remediation=store_command(item.vault, item.name),
                )
            elif context.include_passed:
                yield secret_passed(
                    resource,
                    item.app,
                    f"app {item.app!r}'s connection string {item.name!r} is in vault {item.vault}",
                    reference=item.reference,
                    vault=item.vault,
                )


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
    requires = (Section.TENANCY_MAP, Section.AZURE_KEYVAULT)
    controls = (*AUTHENTICATORS, Control(NIST_800_53, "AC-3"))

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        hosts = _server_hosts(snapshot)
        owners = context.app_databases()
        for entry in readable_app_secrets(snapshot):
            if isinstance(entry, Verdict):
                yield entry
                continue
            item, _secret, endpoint = entry
            resource = secret_resource(item.vault, item.name)
            evidence = {"endpoint": endpoint_evidence(endpoint), "server_hosts": sorted(hosts)}
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
                    remediation=store_command(item.vault, item.name),
                )
                continue
            app = context.app_named(item.app)
            database = endpoint.database
            if app is None or not app.databases or database in app.databases:
                if context.include_passed:
                    yield secret_passed(
                        resource,
                        item.app,
                        f"app {item.app!r}'s connection string points at server "
                        f"{context.name!r}, database {database!r}",
                        **evidence,
                    )
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
                remediation=store_command(item.vault, item.name),
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
    requires = (Section.TENANCY_MAP, Section.AZURE_KEYVAULT)
    controls = (*TLS_CONFIGURED, *ENCRYPTED_TRANSPORT)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        for entry in readable_app_secrets(snapshot):
            if isinstance(entry, Verdict):
                yield entry
                continue
            item, _secret, endpoint = entry
            mode = (endpoint.sslmode or "").lower()
            if mode in SECURE_SSLMODES:
                if context.include_passed:
                    yield secret_passed(
                        secret_resource(item.vault, item.name),
                        item.app,
                        f"app {item.app!r}'s connection string requires TLS (sslmode={mode})",
                        endpoint=endpoint_evidence(endpoint),
                    )
                continue
            yield Verdict(
                resource=secret_resource(item.vault, item.name),
                app=item.app,
                message=f"app {item.app!r}'s connection string "
                + (f"sets sslmode={mode}" if mode else "sets no sslmode (libpq: prefer)")
                + ": the connection may be unencrypted or intercepted",
                evidence={"endpoint": endpoint_evidence(endpoint)},
                remediation="Add sslmode=verify-full (or sslmode=require) to the DSN, then "
                + store_command(item.vault, item.name),
            )
