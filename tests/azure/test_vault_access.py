"""Who can read an app vault's secrets, read by the real SDK clients from the HTTPS fake.

Azure's own example responses (``examples/vault_access``, provenance in its
PROVENANCE.md) are served verbatim beside hand-made cases: a wildcard custom role, a
role whose not-data-actions take the secret's value away, assignments inherited from
the subscription and a management group, an assignment on one secret, an ABAC
condition, and access-policy vaults.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.collect.azure.vault_access import (
    METADATA_ACTION,
    VALUE_ACTION,
    VaultAccessCollector,
    action_matches,
    scope_kind,
)
from pgwarden.model.snapshot import Gap, KeyVault, SecretReader, VaultAccess
from tests.azure.fakes import (
    KEY_VAULT_ADMINISTRATOR,
    KEY_VAULT_READER,
    KEY_VAULT_SECRETS_USER,
    READER,
    SECRET_CANARY,
    SUBSCRIPTION,
    FakeAzure,
    FakeVault,
    role_assignment,
    role_definition,
)

EXAMPLES = Path(__file__).parent / "examples" / "vault_access"
APP_MI = "6f1b8c1e-0d7a-4d59-9a57-3f6f0f6f1a01"
OTHER_MI = "0c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
PIPELINE = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
CUSTOM = "11111111-aaaa-4bbb-8ccc-222222222222"
NO_VALUES = "33333333-aaaa-4bbb-8ccc-444444444444"


def _example(name: str) -> dict[str, Any]:
    example = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    assert isinstance(example, dict)
    return example


def _at(path: str) -> str:
    """The fake's pattern for exactly ``path``."""
    return f"^{re.escape(path)}$"


def _snapshot_vault(fake_vault: FakeVault) -> KeyVault:
    """The vault as the Key Vault collector hands it on (its ARM id known)."""
    return KeyVault(
        name=fake_vault.name, url=f"https://{fake_vault.name}.vault.azure.net", id=fake_vault.id
    )


def _collect(session: AzureSession, *vaults: KeyVault) -> tuple[VaultAccess, ...]:
    return VaultAccessCollector(session).collect(vaults)


def _by_principal(access: VaultAccess) -> dict[str, SecretReader]:
    assert access.readers is not None
    return {reader.principal_id: reader for reader in access.readers}


def test_action_patterns_are_azure_wildcards() -> None:
    assert action_matches("*", VALUE_ACTION)
    assert action_matches("Microsoft.KeyVault/vaults/*", VALUE_ACTION)
    assert action_matches("microsoft.keyvault/VAULTS/secrets/*", METADATA_ACTION)
    assert action_matches("Microsoft.KeyVault/vaults/secrets/*/action", VALUE_ACTION)
    assert not action_matches("Microsoft.KeyVault/vaults/*/read", METADATA_ACTION)
    assert not action_matches("Microsoft.KeyVault/vaults/keys/*", VALUE_ACTION)
    assert not action_matches("dataAction", VALUE_ACTION)


def test_scope_kinds() -> None:
    vault = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
    )
    assert scope_kind(vault.upper(), vault) == "vault"
    assert scope_kind(f"{vault}/secrets/database-url", vault) == "secret"
    assert scope_kind(f"{vault}/keys/cmk", vault) is None
    assert scope_kind(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/RG", vault) == "resource group"
    assert scope_kind(f"/subscriptions/{SUBSCRIPTION}", vault) == "subscription"
    assert scope_kind("/providers/Microsoft.Management/managementGroups/mg", vault) == (
        "management group"
    )
    assert scope_kind("/", vault) == "tenant root"
    assert scope_kind(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg2", vault) is None
    assert scope_kind(f"{vault}-2", vault) is None


# --- Azure's own examples, verbatim ----------------------------------------------------

EXAMPLE_SUBSCRIPTION = "a925f2f7-5c63-4b7b-8799-25a5f97bc3b2"
EXAMPLE_ROLE = (
    "/providers/Microsoft.Authorization/roleDefinitions/0b5fe924-9a61-425c-96af-cfe6e287ca2d"
)
EXAMPLE_USER = "ce2ce14e-85d7-4629-bdbc-454d0519d987"


def _example_vault(fake: FakeAzure) -> FakeVault:
    vault = fake.add_vault(
        FakeVault(name="radar-kv", resource_group="radar-rg", subscription=EXAMPLE_SUBSCRIPTION)
    )
    fake.serve_example(
        _at(f"{vault.id}/providers/Microsoft.Authorization/roleAssignments"),
        _example("RoleAssignments_ListForScope.json"),
    )
    return vault


def test_example_assignment_with_example_role_reads_no_secret(
    fake: FakeAzure, session: AzureSession
) -> None:
    vault = _example_vault(fake)
    fake.serve_example(_at(EXAMPLE_ROLE), _example("GetRoleDefinitionById.json"))
    (access,) = _collect(session, _snapshot_vault(vault))
    # "type": "roletype" and the data action "dataAction" parse; they read no secret.
    assert access == VaultAccess(vault="radar-kv", id=vault.id, mode="rbac", readers=())
    paths = [path for _host, path, _auth in fake.requests]
    assert f"{vault.id}/providers/Microsoft.Authorization/roleAssignments" in paths
    assert EXAMPLE_ROLE in paths


def test_example_assignment_inherited_from_the_subscription(
    fake: FakeAzure, session: AzureSession
) -> None:
    vault = _example_vault(fake)
    # The example's role id names no built-in role: here it is one that reads secrets.
    fake.role_definitions["0b5fe924-9a61-425c-96af-cfe6e287ca2d"] = role_definition(
        "0b5fe924-9a61-425c-96af-cfe6e287ca2d",
        "Secrets reader (custom)",
        ["Microsoft.KeyVault/vaults/secrets/*"],
        role_type="CustomRole",
    )
    (access,) = _collect(session, _snapshot_vault(vault))
    assert access.gap is None
    assert _by_principal(access)[EXAMPLE_USER] == SecretReader(
        principal_id=EXAMPLE_USER,
        principal_type="User",
        via="role",
        role="Secrets reader (custom)",
        role_definition_id=EXAMPLE_ROLE,
        role_type="CustomRole",
        scope=f"/subscriptions/{EXAMPLE_SUBSCRIPTION}",
        scope_kind="subscription",
        actions=(VALUE_ACTION, METADATA_ACTION),
        granted_by=("Microsoft.KeyVault/vaults/secrets/*",),
        reads_values=True,
    )


@pytest.mark.parametrize("example", ["getVault.json", "updateVault.json"])
def test_example_vaults_use_access_policies(
    fake: FakeAzure, session: AzureSession, example: str
) -> None:
    body = _example(example)["responses"]["200"]["body"]
    fake.serve_example(_at(body["id"]), _example(example))
    vault = KeyVault(name="sample-vault", url="https://sample-vault.vault.azure.net", id=body["id"])
    (access,) = _collect(session, vault)
    # No enableRbacAuthorization: the vault authorizes with its access policies.
    assert access == VaultAccess(
        vault="sample-vault",
        id=body["id"],
        mode="access-policy",
        readers=(
            SecretReader(
                principal_id="00000000-0000-0000-0000-000000000000",
                via="access-policy",
                scope=body["id"],
                scope_kind="vault",
                actions=("get", "list"),
                reads_values=True,
            ),
        ),
    )
    # No role assignment is asked for: RBAC does not govern this vault's data.
    assert not [p for _h, p, _a in fake.requests if "roleAssignments" in p]


# --- hand-made cases ------------------------------------------------------------------


def test_rbac_readers_at_every_scope(fake: FakeAzure, session: AzureSession) -> None:
    vault = fake.add_vault(FakeVault(name="secai-radar-kv", resource_group="secai-radar-rg"))
    sibling = fake.add_vault(FakeVault(name="zep-kv", resource_group="secai-radar-rg"))
    fake.management_groups.append("contoso-platform")
    fake.role_definitions[CUSTOM] = role_definition(
        CUSTOM, "Everything (custom)", ["*"], role_type="CustomRole"
    )
    fake.role_definitions[NO_VALUES] = role_definition(
        NO_VALUES,
        "Vault browser (custom)",
        ["Microsoft.KeyVault/vaults/*"],
        ["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
        role_type="CustomRole",
    )
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/secai-radar-rg"
    fake.role_assignments += [
        role_assignment(vault.id, APP_MI, KEY_VAULT_SECRETS_USER),
        role_assignment(f"/subscriptions/{SUBSCRIPTION}", OTHER_MI, CUSTOM),
        role_assignment(group, PIPELINE, NO_VALUES, principal_type="Group"),
        role_assignment(
            "/providers/Microsoft.Management/managementGroups/contoso-platform",
            "aaaaaaaa-0000-4000-8000-000000000001",
            KEY_VAULT_ADMINISTRATOR,
            principal_type="User",
        ),
        role_assignment(
            f"{vault.id}/secrets/openai-api-key",
            "aaaaaaaa-0000-4000-8000-000000000002",
            KEY_VAULT_SECRETS_USER,
        ),
        role_assignment(
            vault.id,
            "aaaaaaaa-0000-4000-8000-000000000003",
            KEY_VAULT_SECRETS_USER,
            condition="@Resource[Microsoft.KeyVault/vaults/secrets:name] StringEquals 'x'",
        ),
        role_assignment(vault.id, "aaaaaaaa-0000-4000-8000-000000000004", KEY_VAULT_READER),
        # Not readers: Reader has no data actions; a key's assignment; another vault's.
        role_assignment(vault.id, "aaaaaaaa-0000-4000-8000-000000000005", READER),
        role_assignment(f"{vault.id}/keys/cmk", "aaaaaaaa-0000-4000-8000-000000000006", CUSTOM),
        role_assignment(sibling.id, "aaaaaaaa-0000-4000-8000-000000000007", CUSTOM),
    ]
    (access,) = _collect(session, _snapshot_vault(vault))
    assert access.mode == "rbac" and access.gap is None
    readers = _by_principal(access)
    assert set(readers) == {
        APP_MI,
        OTHER_MI,
        PIPELINE,
        "aaaaaaaa-0000-4000-8000-000000000001",
        "aaaaaaaa-0000-4000-8000-000000000002",
        "aaaaaaaa-0000-4000-8000-000000000003",
        "aaaaaaaa-0000-4000-8000-000000000004",
    }
    app = readers[APP_MI]
    assert (app.role, app.scope_kind, app.scope, app.principal_type) == (
        "Key Vault Secrets User",
        "vault",
        vault.id,
        "ServicePrincipal",
    )
    wildcard = readers[OTHER_MI]
    assert (wildcard.scope_kind, wildcard.granted_by, wildcard.reads_values) == (
        "subscription",
        ("*",),
        True,
    )
    # notDataActions take the value away: names and metadata stay readable.
    browser = readers[PIPELINE]
    assert (browser.actions, browser.reads_values, browser.principal_type) == (
        (METADATA_ACTION,),
        False,
        "Group",
    )
    assert browser.scope_kind == "resource group"
    admin = readers["aaaaaaaa-0000-4000-8000-000000000001"]
    assert (admin.scope_kind, admin.granted_by) == (
        "management group",
        ("Microsoft.KeyVault/vaults/*",),
    )
    one_secret = readers["aaaaaaaa-0000-4000-8000-000000000002"]
    assert one_secret.scope_kind == "secret"
    assert one_secret.covers("openai-api-key") and not one_secret.covers("database-url")
    assert readers["aaaaaaaa-0000-4000-8000-000000000003"].conditional
    assert not readers["aaaaaaaa-0000-4000-8000-000000000004"].reads_values
    # Each role definition is read once, whatever the number of its assignments.
    definitions = [p for _h, p, _a in fake.requests if "roleDefinitions" in p]
    assert len(definitions) == len(set(definitions))


def test_access_policy_vault(fake: FakeAzure, session: AzureSession) -> None:
    vault = fake.add_vault(
        FakeVault(
            name="legacy-kv",
            resource_group="rg",
            rbac=False,
            access_policies=[
                {"tenantId": "t", "objectId": APP_MI.upper(), "permissions": {"secrets": ["Get"]}},
                {"tenantId": "t", "objectId": OTHER_MI, "permissions": {"secrets": ["list"]}},
                {"tenantId": "t", "objectId": PIPELINE, "permissions": {"secrets": ["all"]}},
                {"tenantId": "t", "objectId": CUSTOM, "permissions": {"secrets": ["set"]}},
                {"tenantId": "t", "objectId": NO_VALUES, "permissions": {"keys": ["get"]}},
            ],
        )
    )
    # Assignments exist but do not govern an access-policy vault's data plane.
    fake.role_assignments.append(role_assignment(vault.id, CUSTOM, KEY_VAULT_SECRETS_USER))
    (access,) = _collect(session, _snapshot_vault(vault))
    assert access.mode == "access-policy"
    readers = _by_principal(access)
    assert {k: (r.actions, r.reads_values) for k, r in readers.items()} == {
        APP_MI: (("get",), True),
        OTHER_MI: (("list",), False),
        PIPELINE: (("all",), True),
    }


# --- failures stay with the vault they concern -----------------------------------------


def test_refused_role_assignments_name_the_role_to_grant(
    fake: FakeAzure, session: AzureSession
) -> None:
    vault = fake.add_vault(FakeVault(name="secai-radar-kv", resource_group="rg"))
    other = fake.add_vault(FakeVault(name="ctxeco-kv", resource_group="rg2"))
    fake.role_assignments.append(role_assignment(other.id, APP_MI, KEY_VAULT_SECRETS_USER))
    fake.fail(
        r"/rg/providers/Microsoft\.KeyVault/vaults/secai-radar-kv/providers/",
        403,
        "AuthorizationFailed",
    )
    refused, fine = _collect(session, _snapshot_vault(vault), _snapshot_vault(other))
    assert refused.readers is None and refused.mode == "rbac"
    assert refused.gap == Gap(
        section="azure.vault_access",
        reason="Azure refused to list the role assignments of vault secai-radar-kv "
        "(HTTP 403 AuthorizationFailed)",
        fix="assign Reader on vault secai-radar-kv (Microsoft.Authorization/roleAssignments/read)",
    )
    assert [r.principal_id for r in fine.readers or ()] == [APP_MI]


def test_unreadable_role_definition_keeps_the_other_readers(
    fake: FakeAzure, session: AzureSession
) -> None:
    vault = fake.add_vault(FakeVault(name="kv", resource_group="rg"))
    fake.role_assignments += [
        role_assignment(vault.id, APP_MI, KEY_VAULT_SECRETS_USER),
        role_assignment(vault.id, OTHER_MI, "deadbeef-0000-4000-8000-000000000000"),
    ]
    (access,) = _collect(session, _snapshot_vault(vault))
    assert [r.principal_id for r in access.readers or ()] == [APP_MI]
    assert access.gap is not None
    assert access.gap.reason == (
        "Azure could not read role definition deadbeef-0000-4000-8000-000000000000 assigned "
        "on vault kv (HTTP 404 RoleDefinitionDoesNotExist)"
    )


def test_a_response_the_sdk_cannot_read_is_a_gap_without_its_body(
    fake: FakeAzure, session: AzureSession
) -> None:
    vault = fake.add_vault(FakeVault(name="kv", resource_group="rg"))
    unreadable = {"value": [{"properties": {"createdOn": f"not a date {SECRET_CANARY}"}}]}
    fake.serve_example(
        _at(f"{vault.id}/providers/Microsoft.Authorization/roleAssignments"),
        {"responses": {"200": {"body": unreadable}}},
    )
    (access,) = _collect(session, _snapshot_vault(vault))
    assert access.readers is None and access.gap is not None
    assert access.gap.reason == (
        "cannot list the role assignments of vault kv: DeserializationError"
    )
    assert SECRET_CANARY not in access.model_dump_json()


def test_vault_without_an_arm_id(session: AzureSession) -> None:
    refused = Gap(section="azure.vaults", reason="Azure refused to list the key vaults", fix="x")
    (access,) = _collect(
        session, KeyVault(name="kv", url="https://kv.vault.azure.net", properties_gap=refused)
    )
    assert access.readers is None and access.gap is not None
    assert access.gap.reason == (
        "the access of vault kv cannot be read: Azure refused to list the key vaults"
    )
    assert access.gap.fix == "x"
