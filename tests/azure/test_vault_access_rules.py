"""PGW-KV-007 to -010 on snapshot fragments (table-driven), then end to end through the
real SDK clients, the HTTPS fake and the engine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.collect.azure.server import collect_azure
from pgwarden.engine import evaluate, missing_section, server_context
from pgwarden.model.config import parse_config
from pgwarden.model.snapshot import (
    AzureSnapshot,
    Gap,
    SecretReader,
    ServerSnapshot,
    Snapshot,
    VaultAccess,
)
from pgwarden.rules.base import Rule, Verdict
from pgwarden.rules.keyvault.exposure import VaultOpenToAllNetworks, VaultUsesAccessPolicies
from pgwarden.rules.keyvault.readers import ForeignAppReadsSecret, UnknownSecretReader
from pgwarden.rules.registry import load_rules
from tests.azure.fakes import (
    KEY_VAULT_ADMINISTRATOR,
    KEY_VAULT_SECRETS_USER,
    SECRET_CANARY,
    SUBSCRIPTION,
    FakeAzure,
    SeedAzure,
    role_assignment,
)
from tests.azure.test_rules import good_azure, vault

RADAR_MI = "6f1b8c1e-0d7a-4d59-9a57-3f6f0f6f1a01"
CTXECO_MI = "0c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
PIPELINE = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
STRANGER = "5e5e5e5e-0000-4000-8000-000000000001"
DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions"
RADAR_KV = (
    "/subscriptions/sub/resourceGroups/radar-rg/providers/Microsoft.KeyVault/vaults/secai-radar-kv"
)
CTXECO_KV = (
    "/subscriptions/sub/resourceGroups/ctxeco-rg/providers/Microsoft.KeyVault/vaults/ctxeco-kv"
)

CONFIG = """
[policy]
secret_readers = ["{pipeline}"]
{policy}

[[server]]
name = "ctxeco-db"
azure = {{ subscription_id = "sub", resource_group = "ctxeco-rg" }}

[[server.app]]
name = "secai-radar"
databases = ["secairadar"]
roles = ["secairadar_app"]
secret = "keyvault:secai-radar-kv/database-url"
identities = ["{radar}"]

[[server.app]]
name = "ctxeco"
databases = ["ctxEco", "zep"]
roles = ["ctxeco_app"]
secret = "keyvault:ctxeco-kv/ctxeco-database-url"
identities = ["{ctxeco}"]
"""


def reader(principal: str, **fields: Any) -> SecretReader:
    values: dict[str, Any] = {
        "principal_id": principal,
        "principal_type": "ServicePrincipal",
        "via": "role",
        "role": "Key Vault Secrets User",
        "role_definition_id": f"{DEFINITIONS}/{KEY_VAULT_SECRETS_USER}",
        "role_type": "BuiltInRole",
        "scope": RADAR_KV,
        "scope_kind": "vault",
        "actions": ("Microsoft.KeyVault/vaults/secrets/getSecret/action",),
        "granted_by": ("Microsoft.KeyVault/vaults/secrets/getSecret/action",),
        **fields,
    }
    return SecretReader(**values)


def well_guarded() -> AzureSnapshot:
    """Each app's identity reads its own secret, the pipeline reads both; vaults closed."""
    azure = good_azure()
    vaults = tuple(
        v.model_copy(
            update={
                "id": RADAR_KV if v.name == "secai-radar-kv" else CTXECO_KV,
                "rbac_authorization": True,
                "public_network_access": "Disabled",
            }
        )
        for v in azure.vaults or ()
    )
    return azure.model_copy(
        update={
            "vaults": vaults,
            "vault_access": (
                VaultAccess(
                    vault="secai-radar-kv",
                    id=RADAR_KV,
                    mode="rbac",
                    readers=(
                        reader(
                            RADAR_MI, scope=f"{RADAR_KV}/secrets/database-url", scope_kind="secret"
                        ),
                        reader(PIPELINE, scope="/subscriptions/sub", scope_kind="subscription"),
                    ),
                ),
                VaultAccess(
                    vault="ctxeco-kv",
                    id=CTXECO_KV,
                    mode="rbac",
                    readers=(reader(CTXECO_MI, scope=CTXECO_KV),),
                ),
            ),
        }
    )


Change = Callable[[AzureSnapshot], AzureSnapshot]


def add_readers(index: int, *readers: SecretReader) -> Change:
    def change(a: AzureSnapshot) -> AzureSnapshot:
        access = list(a.vault_access or ())
        access[index] = access[index].model_copy(
            update={"readers": (*(access[index].readers or ()), *readers)}
        )
        return a.model_copy(update={"vault_access": tuple(access)})

    return change


def access(index: int, **fields: Any) -> Change:
    def change(a: AzureSnapshot) -> AzureSnapshot:
        found = list(a.vault_access or ())
        found[index] = found[index].model_copy(update=fields)
        return a.model_copy(update={"vault_access": tuple(found)})

    return change


REFUSED = Gap(
    section="azure.vault_access",
    reason="Azure refused to list the role assignments of vault secai-radar-kv (HTTP 403)",
    fix="assign Reader on vault secai-radar-kv (Microsoft.Authorization/roleAssignments/read)",
)
RADAR_SECRET = "secret/secai-radar-kv/database-url"
CTXECO_SECRET = "secret/ctxeco-kv/ctxeco-database-url"

# (rule, change to the well-guarded snapshot, policy TOML, expected (status, resource, principal))
CASES: list[tuple[type[Rule], Change, str, list[tuple[str, str, str | None]]]] = [
    # ctxeco's identity reads secai-radar's secret: on the vault, or inherited.
    (
        ForeignAppReadsSecret,
        add_readers(0, reader(CTXECO_MI)),
        "",
        [("fail", RADAR_SECRET, f"entra/{CTXECO_MI}")],
    ),
    (
        ForeignAppReadsSecret,
        add_readers(
            0,
            reader(
                CTXECO_MI,
                role="Key Vault Administrator",
                scope="/subscriptions/sub/resourceGroups/radar-rg",
                scope_kind="resource group",
                granted_by=("Microsoft.KeyVault/vaults/*",),
            ),
        ),
        "",
        [("fail", RADAR_SECRET, f"entra/{CTXECO_MI}")],
    ),
    # Only on another secret of the vault: not this app's connection string.
    (
        ForeignAppReadsSecret,
        add_readers(
            0,
            reader(CTXECO_MI, scope=f"{RADAR_KV}/secrets/openai-api-key", scope_kind="secret"),
        ),
        "",
        [],
    ),
    # Metadata only is still reported (names and dates of another app's secrets).
    (
        ForeignAppReadsSecret,
        add_readers(
            1,
            reader(
                RADAR_MI,
                scope=CTXECO_KV,
                actions=("Microsoft.KeyVault/vaults/secrets/readMetadata/action",),
                reads_values=False,
            ),
        ),
        "",
        [("fail", CTXECO_SECRET, f"entra/{RADAR_MI}")],
    ),
    (
        ForeignAppReadsSecret,
        access(
            1,
            mode="access-policy",
            readers=(
                reader(
                    RADAR_MI,
                    via="access-policy",
                    role=None,
                    scope=CTXECO_KV,
                    actions=("get", "list"),
                ),
            ),
        ),
        "",
        [("fail", CTXECO_SECRET, f"entra/{RADAR_MI}")],
    ),
    (ForeignAppReadsSecret, add_readers(0, reader(STRANGER)), "", []),
    (
        ForeignAppReadsSecret,
        access(0, readers=None, gap=REFUSED),
        "",
        [("error", "vault/secai-radar-kv", None)],
    ),
    # Partly read: the readers found are judged, the unread role is an error.
    (
        ForeignAppReadsSecret,
        lambda a: access(0, gap=REFUSED)(add_readers(0, reader(CTXECO_MI))(a)),
        "",
        [("error", "vault/secai-radar-kv", None), ("fail", RADAR_SECRET, f"entra/{CTXECO_MI}")],
    ),
    (
        UnknownSecretReader,
        add_readers(0, reader(STRANGER, principal_type="User")),
        "",
        [("fail", RADAR_SECRET, f"entra/{STRANGER}")],
    ),
    (UnknownSecretReader, add_readers(0, reader(PIPELINE, scope=RADAR_KV)), "", []),
    (UnknownSecretReader, add_readers(0, reader(CTXECO_MI)), "", []),
    (
        UnknownSecretReader,
        lambda a: a.model_copy(update={"vault_access": (a.vault_access or ())[:1]}),
        "",
        [("error", "vault/ctxeco-kv", None)],
    ),
    (
        VaultUsesAccessPolicies,
        vault(0, rbac_authorization=False),
        "",
        [("fail", "vault/secai-radar-kv", None)],
    ),
    (
        VaultUsesAccessPolicies,
        vault(0, rbac_authorization=None),
        "",
        [("fail", "vault/secai-radar-kv", None)],
    ),
    (VaultUsesAccessPolicies, vault(0, rbac_authorization=False), "require_vault_rbac = false", []),
    (
        VaultUsesAccessPolicies,
        vault(1, properties_gap=Gap(section="azure.vaults", reason="403")),
        "",
        [("error", "vault/ctxeco-kv", None)],
    ),
    (
        VaultOpenToAllNetworks,
        vault(0, public_network_access="Enabled", network_default_action="Allow"),
        "",
        [("fail", "vault/secai-radar-kv", None)],
    ),
    # No networkAcls at all is Allow; a firewall that denies by default is closed.
    (
        VaultOpenToAllNetworks,
        vault(0, public_network_access=None, network_default_action=None),
        "",
        [("fail", "vault/secai-radar-kv", None)],
    ),
    (
        VaultOpenToAllNetworks,
        vault(0, public_network_access="Enabled", network_default_action="Deny"),
        "",
        [],
    ),
    (
        VaultOpenToAllNetworks,
        vault(0, public_network_access="Enabled"),
        "require_vault_firewall = false",
        [],
    ),
]


def check(rule: type[Rule], azure: AzureSnapshot, policy: str = "") -> list[Verdict]:
    config = parse_config(
        CONFIG.format(policy=policy, pipeline=PIPELINE, radar=RADAR_MI, ctxeco=CTXECO_MI),
        "pgwarden.toml",
    )
    snapshot = ServerSnapshot(name="ctxeco-db", azure=azure)
    return list(rule().check(snapshot, server_context(snapshot, config.server[0], config)))


@pytest.mark.parametrize(
    "rule",
    [ForeignAppReadsSecret, UnknownSecretReader, VaultUsesAccessPolicies, VaultOpenToAllNetworks],
)
def test_a_well_guarded_server_passes(rule: type[Rule]) -> None:
    assert check(rule, well_guarded()) == []


@pytest.mark.parametrize(
    ("rule", "change", "policy", "expected"),
    CASES,
    ids=[f"{c[0].id}-{i}" for i, c in enumerate(CASES)],
)
def test_rule_verdicts(
    rule: type[Rule], change: Change, policy: str, expected: list[tuple[str, str, str | None]]
) -> None:
    verdicts = check(rule, change(well_guarded()), policy)
    assert [(v.status, v.resource, v.principal) for v in verdicts] == expected
    for verdict in verdicts:
        assert verdict.message
        if verdict.status == "fail":
            assert verdict.remediation and verdict.evidence


def test_evidence_names_principal_role_and_scope() -> None:
    inherited = reader(
        CTXECO_MI,
        role="Key Vault Administrator",
        role_definition_id=f"{DEFINITIONS}/{KEY_VAULT_ADMINISTRATOR}",
        scope="/subscriptions/sub",
        scope_kind="subscription",
        granted_by=("Microsoft.KeyVault/vaults/*",),
    )
    (verdict,) = check(ForeignAppReadsSecret, add_readers(0, inherited)(well_guarded()))
    assert verdict.message == (
        f"app 'ctxeco''s identity {CTXECO_MI} can read the value of app 'secai-radar''s "
        "connection string secai-radar-kv/database-url through role 'Key Vault Administrator' "
        "on subscription /subscriptions/sub"
    )
    assert verdict.evidence == {
        "principal_id": CTXECO_MI,
        "principal_type": "ServicePrincipal",
        "principal_app": "ctxeco",
        "secret": "secai-radar-kv/database-url",
        "secret_app": "secai-radar",
        "reads_values": True,
        "grants": [
            {
                "via": "role",
                "role": "Key Vault Administrator",
                "role_type": "BuiltInRole",
                "scope": "/subscriptions/sub",
                "scope_kind": "subscription",
                "actions": ["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
                "granted_by": ["Microsoft.KeyVault/vaults/*"],
                "conditional": False,
            }
        ],
        "grants_total": 1,
    }
    assert verdict.remediation == (
        "# inherited from the subscription: removing it there removes it everywhere below; "
        "grant what the principal needs on its own vault instead\n"
        f"az role assignment delete --assignee {CTXECO_MI} --role "
        f"{DEFINITIONS}/{KEY_VAULT_ADMINISTRATOR} "
        "--scope /subscriptions/sub"
    )


def test_missing_vault_access_section_is_an_error_naming_the_role() -> None:
    azure = well_guarded().model_copy(
        update={
            "vault_access": None,
            "gaps": (Gap(section="azure.vault_access", reason="refused", fix="assign Reader"),),
        }
    )
    reason = missing_section(ServerSnapshot(name="ctxeco-db", azure=azure), "azure.vault_access")
    assert reason == "refused (fix: assign Reader)"


# --- end to end: SDK clients, fake, collector, engine ---------------------------------


def test_seed_vaults_end_to_end(fake: FakeAzure, seed: SeedAzure, session: AzureSession) -> None:
    radar, ctxeco = seed.radar_vault, seed.ctxeco_vault
    ctxeco.rbac = False
    ctxeco.access_policies = [
        {"tenantId": "t", "objectId": CTXECO_MI, "permissions": {"secrets": ["get", "list"]}},
        {"tenantId": "t", "objectId": STRANGER, "permissions": {"secrets": ["get"]}},
    ]
    radar.network_default_action = "Deny"
    fake.role_assignments += [
        role_assignment(radar.id, RADAR_MI, KEY_VAULT_SECRETS_USER),
        # ctxeco's identity is Key Vault Administrator on secai-radar's resource group.
        role_assignment(
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/secai-radar-rg",
            CTXECO_MI,
            KEY_VAULT_ADMINISTRATOR,
        ),
        role_assignment(f"/subscriptions/{SUBSCRIPTION}", PIPELINE, KEY_VAULT_SECRETS_USER),
    ]
    text = (
        seed.config()
        .replace(
            'roles = ["secairadar_app"]', f'roles = ["secairadar_app"]\nidentities = ["{RADAR_MI}"]'
        )
        .replace('roles = ["ctxeco_app"]', f'roles = ["ctxeco_app"]\nidentities = ["{CTXECO_MI}"]')
    )
    text = text.replace("[azure]", f'secret_readers = ["{PIPELINE}"]\n\n[azure]')
    config = parse_config(text, "pgwarden.toml")
    azure = collect_azure(config, config.server[0], session)
    snapshot = Snapshot(
        tool_version="test",
        collected_at=datetime.now(UTC),
        servers=(ServerSnapshot(name="ctxeco-db", azure=azure),),
    )
    assert SECRET_CANARY not in snapshot.to_json()
    results = evaluate(snapshot, config, load_rules())
    mine = {
        (f.rule_id, f.status, f.resource, f.principal)
        for f in results.findings
        if f.rule_id in ("PGW-KV-007", "PGW-KV-008", "PGW-KV-009", "PGW-KV-010")
    }
    assert mine == {
        ("PGW-KV-007", "fail", "secret/secai-radar-kv/database-url", f"entra/{CTXECO_MI}"),
        ("PGW-KV-008", "fail", "secret/ctxeco-kv/ctxeco-database-url", f"entra/{STRANGER}"),
        ("PGW-KV-009", "fail", "vault/ctxeco-kv", None),
        ("PGW-KV-010", "fail", "vault/ctxeco-kv", None),
    }
    (foreign,) = [f for f in results.findings if f.rule_id == "PGW-KV-007"]
    assert foreign.evidence["grants"][0]["scope_kind"] == "resource group"
    assert foreign.evidence["grants"][0]["role"] == "Key Vault Administrator"
    assert foreign.severity == "high"
