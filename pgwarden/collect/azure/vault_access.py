"""Who can read each app vault's secrets: RBAC role assignments or access policies.

A vault authorizes data access one of two ways. With Azure RBAC
(``enableRbacAuthorization``) every role assignment at the vault, above it (its
resource group, subscription, management groups, the tenant root) or on one of its
secrets applies; a role reads secrets when its data actions match
``Microsoft.KeyVault/vaults/secrets/getSecret/action`` (the value) or
``.../readMetadata/action`` (names and attributes), wildcards included, less its
not-data-actions. Otherwise the vault's access policies apply: ``get`` (or ``all``)
on secrets reads values, ``list`` reads metadata.

Takes the vault's authorization mode and access policies from the subscription's
vault list when it carries them (``vaults.list_by_subscription`` does), else reads the
vault with ``azure-mgmt-keyvault`` (``vaults.get``); reads its role assignments and
role definitions with ``azure-mgmt-authorization`` (``role_assignments.list_for_scope``,
``role_definitions.get_by_id``, each definition once per run): Reader on the vault is
enough (it includes ``Microsoft.Authorization/roleAssignments/read`` and
``roleDefinitions/read``). Every failure becomes a Gap of this section, for the vault
it concerns; nothing here formats a response body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient

from pgwarden.collect.azure.cloud import AzureSession, azure_gap, enum_text, host_of
from pgwarden.collect.azure.keyvault import VaultProperties
from pgwarden.model.snapshot import Gap, KeyVault, SecretReader, VaultAccess

if TYPE_CHECKING:
    from azure.mgmt.authorization.v2022_04_01 import models as auth_models

SECTION = "azure.vault_access"
VALUE_ACTION = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
METADATA_ACTION = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
# The data actions that read a secret, and whether each reads its value.
SECRET_READS = {VALUE_ACTION: True, METADATA_ACTION: False}
# Access policy secret permissions that read, and whether each reads values.
POLICY_READS = {"get": True, "all": True, "list": False}
READER_ROLE = "Reader"


@lru_cache(maxsize=256)
def _pattern(action: str) -> re.Pattern[str]:
    # Azure matches actions case-insensitively; ``*`` stands for any run of characters.
    return re.compile(
        "^" + ".*".join(re.escape(part) for part in action.split("*")) + "$", re.IGNORECASE
    )


def action_matches(pattern: str, action: str) -> bool:
    """Whether a role's (not-)data action pattern covers ``action``."""
    return _pattern(pattern).match(action) is not None


@dataclass(frozen=True)
class RolePermissions:
    """A role definition's name, type and ``permissions`` blocks (data actions only)."""

    name: str | None
    role_type: str | None
    blocks: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]  # (dataActions, notDataActions)

    def secret_reads(self) -> tuple[dict[str, bool], tuple[str, ...]]:
        """The secret-reading data actions granted, and the patterns that grant them.

        Each ``permissions`` block grants its data actions less its own
        not-data-actions; the role grants what any block grants.
        """
        granted: dict[str, bool] = {}
        patterns: list[str] = []
        for data_actions, not_data_actions in self.blocks:
            for action, value in SECRET_READS.items():
                matching = [p for p in data_actions if action_matches(p, action)]
                if not matching or any(action_matches(p, action) for p in not_data_actions):
                    continue
                granted[action] = value
                patterns.extend(p for p in matching if p not in patterns)
        return granted, tuple(patterns)


def role_permissions(definition: auth_models.RoleDefinition) -> RolePermissions:
    """The parts of an SDK role definition that decide whether it reads secrets."""
    return RolePermissions(
        name=definition.role_name,
        role_type=definition.role_type,
        blocks=tuple(
            (tuple(p.data_actions or ()), tuple(p.not_data_actions or ()))
            for p in definition.permissions or ()
        ),
    )


def scope_kind(scope: str, vault_id: str) -> str | None:
    """Where an assignment applies relative to the vault; None when not to its secrets."""
    scope_l = scope.rstrip("/").lower()
    vault_l = vault_id.rstrip("/").lower()
    if scope_l == vault_l:
        return "vault"
    if scope_l.startswith(vault_l + "/secrets/"):
        return "secret"
    if scope_l.startswith(vault_l + "/"):
        return None  # a key or certificate of the vault
    if scope_l == "":
        return "tenant root"
    if scope_l.startswith("/providers/microsoft.management/managementgroups/"):
        return "management group"
    if not vault_l.startswith(scope_l + "/"):
        return None  # not above the vault: another resource's assignment
    parts = scope_l.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "subscriptions":
        return "subscription"
    if len(parts) == 4 and parts[2] == "resourcegroups":
        return "resource group"
    return "resource"


def _subscription_and_group(resource_id: str) -> tuple[str, str] | None:
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    try:
        subscription = parts[lowered.index("subscriptions") + 1]
        group = parts[lowered.index("resourcegroups") + 1]
    except (ValueError, IndexError):
        return None
    return subscription, group


def _failure(exc: Exception, *, action: str, role: str, host: str) -> Gap:
    """A Gap for any failure; SDK and deserialisation messages (which quote response
    bodies) are reduced to status, error code or the exception's type."""
    if isinstance(exc, AzureError):
        return azure_gap(SECTION, exc, action=action, role=role, host=host)
    return Gap(section=SECTION, reason=f"cannot {action}: {type(exc).__name__}")


@dataclass
class VaultAccessCollector:
    """Reads who can read the secrets of the apps' vaults (one instance per server).

    Role definitions are read once per run (``AzureSession.cache``, by lower-case id):
    every vault and server assigned the same role shares the answer.
    """

    session: AzureSession

    def collect(
        self, vaults: Sequence[KeyVault], listed: Iterable[VaultProperties] = ()
    ) -> tuple[VaultAccess, ...]:
        """The access of each vault; a vault that could not be read carries its Gap.

        ``listed``: the subscription's vaults as ``vaults.list_by_subscription`` gave
        them; a vault found there with its authorization mode (and access policies)
        is not read again.
        """
        by_id = {p.id.lower(): p for p in listed if p.id}
        return tuple(
            self._vault(vault, by_id.get(vault.id.lower()) if vault.id else None)
            for vault in vaults
        )

    def _vault(self, vault: KeyVault, listed: VaultProperties | None = None) -> VaultAccess:
        host = host_of(self.session.arm_endpoint)
        located = _subscription_and_group(vault.id) if vault.id else None
        if vault.id is None or located is None:
            reason = (
                vault.properties_gap.reason
                if vault.properties_gap is not None
                else "its ARM resource id is unknown"
            )
            return VaultAccess(
                vault=vault.name,
                gap=Gap(
                    section=SECTION,
                    reason=f"the access of vault {vault.name} cannot be read: {reason}",
                    fix=vault.properties_gap.fix if vault.properties_gap else None,
                ),
            )
        subscription, group = located
        role = f"{READER_ROLE} on vault {vault.name}"
        try:
            settings = _listed_settings(listed)
            if settings is None:
                with KeyVaultManagementClient(
                    self.session.credential, subscription, **self.session.arm_kwargs()
                ) as client:
                    settings = _arm_settings(client.vaults.get(group, vault.name))
            rbac, policies = settings
            if not rbac:
                return VaultAccess(
                    vault=vault.name,
                    id=vault.id,
                    mode="access-policy",
                    readers=tuple(_policy_readers(policies, vault.id)),
                )
        except Exception as exc:  # any failure is this vault's gap, never the scan's
            return VaultAccess(
                vault=vault.name,
                id=vault.id,
                gap=_failure(exc, action=f"read vault {vault.name}", role=role, host=host),
            )
        return self._rbac(vault.name, vault.id, subscription, role, host)

    def _rbac(
        self, name: str, vault_id: str, subscription: str, role: str, host: str
    ) -> VaultAccess:
        with AuthorizationManagementClient(
            self.session.credential, subscription, **self.session.arm_kwargs()
        ) as client:
            try:
                # No filter: the assignments at, above and below the vault (below: those
                # on single secrets; keys and certificates are dropped by scope_kind).
                assignments = list(client.role_assignments.list_for_scope(vault_id.lstrip("/")))
            except Exception as exc:  # any failure is this vault's gap, never the scan's
                return VaultAccess(
                    vault=name,
                    id=vault_id,
                    mode="rbac",
                    gap=_failure(
                        exc,
                        action=f"list the role assignments of vault {name}",
                        role=f"{role} (Microsoft.Authorization/roleAssignments/read)",
                        host=host,
                    ),
                )
            readers: list[SecretReader] = []
            unresolved: list[Gap] = []
            for assignment in assignments:
                kind = scope_kind(assignment.scope or "", vault_id)
                if kind is None or not assignment.role_definition_id:
                    continue
                definition = self._role(client, assignment.role_definition_id, name, role, host)
                if isinstance(definition, Gap):
                    unresolved.append(definition)
                elif (reader := _rbac_reader(assignment, definition, kind)) is not None:
                    readers.append(reader)
        gap = None
        if unresolved:
            # Readers through the roles that were read are still reported; the rest is
            # an error of the vault, so a role nobody could read never passes silently.
            first = unresolved[0]
            more = f" (and {len(unresolved) - 1} more)" if len(unresolved) > 1 else ""
            gap = first.model_copy(update={"reason": first.reason + more})
        return VaultAccess(vault=name, id=vault_id, mode="rbac", readers=tuple(readers), gap=gap)

    def _role(
        self,
        client: AuthorizationManagementClient,
        definition_id: str,
        vault: str,
        role: str,
        host: str,
    ) -> RolePermissions | Gap:
        guid = definition_id.rstrip("/").rsplit("/", 1)[-1]
        try:
            # Once per run: a refusal is kept too, and becomes each vault's own gap.
            return self.session.cache.get(
                ("role-definition", definition_id.lower()),
                lambda: role_permissions(
                    client.role_definitions.get_by_id(definition_id.lstrip("/"))
                ),
            )
        except Exception as exc:
            return _failure(
                exc,
                action=f"read role definition {guid} assigned on vault {vault}",
                role=f"{role} (Microsoft.Authorization/roleDefinitions/read)",
                host=host,
            )


def _listed_settings(listed: VaultProperties | None) -> tuple[bool, list[Any]] | None:
    """Whether the listed vault uses RBAC, and its access policies; None when the list
    did not carry what deciding needs (the vault is then read with ``vaults.get``)."""
    if listed is None:
        return None
    if listed.rbac:
        return True, []
    if listed.access_policies is None:
        return None
    return False, list(listed.access_policies)


def _arm_settings(arm: Any) -> tuple[bool, list[Any]]:
    """The same, from ``vaults.get``: a vault without the flag uses access policies."""
    props = arm.properties
    rbac = bool(props.enable_rbac_authorization) if props else False
    return rbac, list(props.access_policies or ()) if props and not rbac else []


def _rbac_reader(
    assignment: auth_models.RoleAssignment, definition: RolePermissions, kind: str
) -> SecretReader | None:
    granted, patterns = definition.secret_reads()
    if not granted:
        return None
    return SecretReader(
        principal_id=(assignment.principal_id or "").lower(),
        principal_type=enum_text(assignment.principal_type),
        via="role",
        role=definition.name,
        role_definition_id=assignment.role_definition_id,
        role_type=definition.role_type,
        scope=assignment.scope or "",
        scope_kind=kind,
        actions=tuple(granted),
        granted_by=patterns,
        reads_values=any(granted.values()),
        conditional=bool(assignment.condition),
    )


def _policy_readers(policies: Iterable[Any], vault_id: str) -> Iterable[SecretReader]:
    for policy in policies:
        permissions = policy.permissions
        secrets = (
            [str(enum_text(p)).lower() for p in (permissions.secrets or ())] if permissions else []
        )
        reads = [p for p in secrets if p in POLICY_READS]
        if not reads:
            continue
        yield SecretReader(
            principal_id=(policy.object_id or "").lower(),
            via="access-policy",
            scope=vault_id,
            scope_kind="vault",
            actions=tuple(reads),
            reads_values=any(POLICY_READS[p] for p in reads),
            application_id=policy.application_id,
        )
