"""PGW-KV-007 and -008: who besides the app itself can read its connection string.

The seed puts each app's DSN in the app's own vault. That placement means little when
another app's identity, or a principal nobody accounts for, can read the vault: an
RBAC role assignment at the vault, above it (resource group, subscription, management
group) or on the secret itself, or an access policy with ``get``/``list`` on secrets.
The tenancy map names each app's identities (``identities``); ``[policy]
secret_readers`` names the platform principals that may read every app's secrets
(the deployment pipeline, pgwarden itself).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pgwarden.model.context import BuiltInKey
from pgwarden.model.frameworks.catalogue import NIST_800_53
from pgwarden.model.snapshot import AppSecret, SecretReader, ServerSnapshot, VaultAccess
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict
from pgwarden.rules.control_sets import LEAST_PRIVILEGE
from pgwarden.rules.keyvault._secrets import designated_secrets, gap_message, secret_resource

MAX_GRANTS = 10


_VAULT_READERS = BuiltInKey("keyvault-readers")


@dataclass(frozen=True)
class SecretReaders:
    """Every principal that can read one app's DSN secret, with each grant that lets it."""

    item: AppSecret
    by_principal: dict[str, tuple[SecretReader, ...]]


class _VaultReaders:
    """One vault's readers, indexed by what they cover: those at the vault or above
    cover every secret; one assigned on a secret, that secret only (``covers``). Each
    app's secret is matched against its own few, not every reader of the vault: a
    vault shared by a thousand apps holds a thousand secret-scoped assignments."""

    def __init__(self, access: VaultAccess) -> None:
        self.access = access
        self._every: list[tuple[int, SecretReader]] = []
        self._by_secret: dict[str, list[tuple[int, SecretReader]]] = {}
        for n, reader in enumerate(access.readers or ()):
            if reader.scope_kind != "secret":
                self._every.append((n, reader))
                continue
            # ``covers`` asks whether the scope ends in /secrets/NAME: each name it can
            # end in follows one "/secrets/" in it (almost always the one).
            scope = reader.scope.rstrip("/").lower()
            names = scope.split("/secrets/")[1:]
            for at in range(len(names)):
                self._by_secret.setdefault("/secrets/".join(names[at:]), []).append((n, reader))

    def covering(self, secret: str) -> list[SecretReader]:
        """The readers whose grant reaches ``secret``, in the order Azure listed them."""
        own = self._by_secret.get(secret.lower(), [])
        if not own:
            return [reader for _n, reader in self._every]
        return [reader for _n, reader in sorted(self._every + own, key=lambda pair: pair[0])]


def _vault_readers(snapshot: ServerSnapshot) -> dict[str, _VaultReaders]:
    """Each vault's access by its name in lower case (the first listed, for a name
    listed twice)."""
    assert snapshot.azure is not None
    found: dict[str, _VaultReaders] = {}
    for access in snapshot.azure.vault_access or ():
        key = access.vault.lower()
        if key not in found:
            found[key] = _VaultReaders(access)
    return found


def app_secret_readers(
    snapshot: ServerSnapshot, context: ServerContext, rule_id: str
) -> Iterator[SecretReaders | Verdict]:
    """The readers of each app's designated DSN secret, or an error for a vault whose
    access could not be read (once per vault; a partly read vault gives both)."""
    reported: set[str] = set()
    # Indexed once per server for both rules that ask (PGW-KV-007 and -008).
    vaults = context.analysis(_VAULT_READERS, snapshot.azure, lambda: _vault_readers(snapshot))
    for item in designated_secrets(snapshot):
        readers = vaults.get(item.vault.lower())
        access = None if readers is None else readers.access
        if access is None or access.gap is not None:
            key = item.vault.lower()
            if key not in reported:
                reported.add(key)
                reason = (
                    gap_message(f"who can read vault {item.vault}", access.gap)
                    if access is not None and access.gap is not None
                    else f"who can read vault {item.vault} was not collected"
                )
                yield Verdict(
                    resource=f"vault/{item.vault}",
                    app=item.app,
                    status="error",
                    message=f"{rule_id}: {reason}",
                )
        if readers is None or readers.access.readers is None:
            continue
        found: dict[str, list[SecretReader]] = {}
        for reader in readers.covering(item.name):
            found.setdefault(reader.principal_id, []).append(reader)
        yield SecretReaders(item, {p: tuple(grants) for p, grants in sorted(found.items())})


def grant_evidence(reader: SecretReader) -> dict[str, object]:
    """One grant as findings show it: the role or policy, where, and what it allows."""
    return {
        "via": reader.via,
        "role": reader.role,
        "role_type": reader.role_type,
        "scope": reader.scope,
        "scope_kind": reader.scope_kind,
        "actions": list(reader.actions),
        "granted_by": list(reader.granted_by),
        "conditional": reader.conditional,
    }


def describe_grant(reader: SecretReader) -> str:
    """``Key Vault Secrets User on subscription …`` or ``an access policy (get, list)``."""
    if reader.via == "access-policy":
        return f"an access policy ({', '.join(reader.actions)}) of the vault"
    where = "the vault" if reader.scope_kind == "vault" else f"{reader.scope_kind} {reader.scope}"
    return f"role {reader.role or reader.role_definition_id!r} on {where}"


def reader_evidence(item: AppSecret, grants: tuple[SecretReader, ...]) -> dict[str, object]:
    """What the findings of both rules show about one principal's access to one secret."""
    first = grants[0]
    return {
        "principal_id": first.principal_id,
        "principal_type": next((g.principal_type for g in grants if g.principal_type), None),
        "secret": f"{item.vault}/{item.name}",
        "secret_app": item.app,
        "reads_values": any(g.reads_values for g in grants),
        "grants": [grant_evidence(g) for g in grants[:MAX_GRANTS]],
        "grants_total": len(grants),
    }


def what_it_reads(grants: tuple[SecretReader, ...]) -> str:
    if any(g.reads_values for g in grants):
        return "can read the value of"
    return "can list (names and metadata only)"


def revoke_commands(vault: str, grants: tuple[SecretReader, ...]) -> str:
    """The Azure CLI commands that remove each grant (``--file``-free: no secret in them)."""
    lines: list[str] = []
    for grant in grants:
        principal = shlex.quote(grant.principal_id)
        if grant.via == "access-policy":
            lines.append(f"az keyvault delete-policy --name {vault} --object-id {principal}")
            continue
        if grant.scope_kind != "vault" and grant.scope_kind != "secret":
            lines.append(
                f"# inherited from the {grant.scope_kind}: removing it there removes it "
                "everywhere below; grant what the principal needs on its own vault instead"
            )
        role = shlex.quote(grant.role_definition_id or grant.role or "")
        lines.append(
            f"az role assignment delete --assignee {principal} --role {role} "
            f"--scope {shlex.quote(grant.scope)}"
        )
    return "\n".join(dict.fromkeys(lines))


class ForeignAppReadsSecret(Rule):
    """Another app's identity can read this app's DSN secret.

    An app's connection string in its own vault keeps other apps out only if their
    identities cannot read that vault. A managed identity of one app with a Key Vault
    role on another app's vault — assigned there, or inherited from a resource group,
    subscription or management group both vaults sit under — logs in to the other
    app's database with its password: the isolation inside PostgreSQL no longer
    matters.

    Violation: an object id listed in another app's ``identities`` holds, on this app's
    designated secret, an RBAC role whose data actions read secrets (``getSecret``,
    ``readMetadata``, or a wildcard covering them, less ``notDataActions``) at the
    secret, the vault or any scope above it, or an access policy with ``get``,
    ``list`` or ``all`` on secrets.

    Fix: remove the grant (az role assignment delete, or az keyvault delete-policy)
    and give each app's identity Key Vault Secrets User on its own secret only: az role
    assignment create --role "Key Vault Secrets User" --assignee OBJECT_ID --scope
    VAULT_ID/secrets/NAME.
    """

    id = "PGW-KV-007"
    severity = "high"
    controls = LEAST_PRIVILEGE
    requires = (Section.TENANCY_MAP, Section.AZURE_KEYVAULT, Section.AZURE_VAULT_ACCESS)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        for found in app_secret_readers(snapshot, context, self.id):
            if isinstance(found, Verdict):
                yield found
                continue
            item = found.item
            for principal, grants in found.by_principal.items():
                other = context.app_of_identity(principal)
                if other is None or other.name == item.app:
                    continue
                yield Verdict(
                    resource=secret_resource(item.vault, item.name),
                    principal=f"entra/{principal}",
                    app=item.app,
                    message=f"app {other.name!r}'s identity {principal} {what_it_reads(grants)} "
                    f"app {item.app!r}'s connection string {item.vault}/{item.name} through "
                    f"{describe_grant(grants[0])}",
                    evidence={**reader_evidence(item, grants), "principal_app": other.name},
                    remediation=revoke_commands(item.vault, grants),
                )


class UnknownSecretReader(Rule):
    """A principal the tenancy map does not know can read an app's DSN secret.

    Every principal that can read a connection string is someone who can log in as
    the app. The map accounts for the apps' own identities and the platform's
    (``[policy] secret_readers``: the deployment pipeline, pgwarden itself); anyone
    else — a person with Key Vault Administrator on the subscription, a group, a
    forgotten service principal — is access nobody reviewed.

    Violation: a principal that is in no app's ``identities`` and not in ``[policy]
    secret_readers`` holds a grant that reads the app's designated secret (value or
    metadata), at the secret, the vault or any scope above it.

    Fix: remove the grant (az role assignment delete, or az keyvault delete-policy); if
    the principal is a platform one that must read secrets, add its object id to
    ``[policy] secret_readers`` in pgwarden.toml; if it is an app's, to that app's
    ``identities``.
    """

    id = "PGW-KV-008"
    severity = "medium"
    controls = (Control(NIST_800_53, "AC-2"), Control(NIST_800_53, "AC-6"))
    requires = (Section.TENANCY_MAP, Section.AZURE_KEYVAULT, Section.AZURE_VAULT_ACCESS)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        allowed = set(context.policy.secret_readers)
        for found in app_secret_readers(snapshot, context, self.id):
            if isinstance(found, Verdict):
                yield found
                continue
            item = found.item
            for principal, grants in found.by_principal.items():
                if principal in allowed or context.app_of_identity(principal):
                    continue
                kind = next((g.principal_type for g in grants if g.principal_type), None)
                yield Verdict(
                    resource=secret_resource(item.vault, item.name),
                    principal=f"entra/{principal}",
                    app=item.app,
                    message=f"{kind or 'principal'} {principal}, which the tenancy map does not "
                    f"know, {what_it_reads(grants)} app {item.app!r}'s connection string "
                    f"{item.vault}/{item.name} through {describe_grant(grants[0])}",
                    evidence=reader_evidence(item, grants),
                    remediation=revoke_commands(item.vault, grants)
                    + "\n# or, if it is a platform principal that must read app secrets: "
                    f'add "{principal}" to [policy] secret_readers',
                )
