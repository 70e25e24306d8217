"""How many Azure requests a scan of several servers makes: answers that are the same for
every server of a subscription (the vault list, vault access settings, role
definitions, a discovered server's properties) are read once per run, not per server.

Counted from the HTTPS fake's request log (``FakeAzure.requests``), which records every
request the real SDK clients send, pages and Key Vault challenges included.
"""

from __future__ import annotations

import re

import pytest

from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.collect.azure.server import collect_azure, discover_servers
from pgwarden.collect.azure.vault_access import VaultAccessCollector
from pgwarden.collect.plan import plan_scan
from pgwarden.collect.run import collect_plan
from pgwarden.model.config import Config, parse_config
from pgwarden.model.snapshot import AzureSnapshot
from tests.azure.conftest import make_session
from tests.azure.fakes import (
    FQDN,
    KEY_VAULT_READER,
    KEY_VAULT_SECRETS_USER,
    READER,
    SECRET_CANARY,
    SUBSCRIPTION,
    FakeAzure,
    FakeFlexibleServer,
    FakeSecret,
    FakeVault,
    StaticCredential,
    TlsFixture,
    role_assignment,
    role_definition,
)

pytestmark = pytest.mark.azure

CUSTOM = "11111111-aaaa-4bbb-8ccc-222222222222"
APP_MI = "6f1b8c1e-0d7a-4d59-9a57-3f6f0f6f1a01"
OTHER_MI = "0c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
FILLER_VAULTS = 10  # other teams' vaults the subscription's vault list also returns
ROLE_DEFINITION_IDS = 4  # distinct role definition ids assigned on the RBAC vault

VAULT_LIST = re.compile(r"^/subscriptions/[^/]+/providers/Microsoft\.KeyVault/vaults$", re.I)
VAULT_GET = re.compile(r"/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/[^/]+$", re.I)
ROLE_DEFINITION = re.compile(r"/providers/Microsoft\.Authorization/roleDefinitions(/|$)", re.I)
SERVER_GET = re.compile(r"/providers/Microsoft\.DBforPostgreSQL/flexibleServers/[^/]+$", re.I)


def _server(name: str) -> FakeFlexibleServer:
    return FakeFlexibleServer(
        name=name,
        resource_group="fleet-rg",
        properties={
            "version": "16",
            "state": "Ready",
            "fullyQualifiedDomainName": f"{name}.postgres.database.azure.com",
            "backup": {"backupRetentionDays": 14, "geoRedundantBackup": "Disabled"},
            "network": {"publicNetworkAccess": "Disabled"},
            "privateEndpointConnections": [],
        },
        configurations={"require_secure_transport": "on"},
    )


def _vaults(fake: FakeAzure) -> tuple[FakeVault, FakeVault]:
    """A shared RBAC vault and a shared access-policy vault, and other teams' vaults."""
    dsn = FakeSecret(f"postgresql://app:{SECRET_CANARY}@{FQDN}:5432/app?sslmode=require")
    rbac = fake.add_vault(
        FakeVault(name="platform-kv", resource_group="kv-rg", secrets={"database-url": dsn})
    )
    policies = fake.add_vault(
        FakeVault(
            name="legacy-kv",
            resource_group="kv-rg",
            rbac=False,
            secrets={"database-url": dsn},
            access_policies=[
                {"tenantId": "t", "objectId": APP_MI, "permissions": {"secrets": ["get", "list"]}},
                {"tenantId": "t", "objectId": OTHER_MI, "permissions": {"secrets": ["list"]}},
            ],
        )
    )
    for index in range(FILLER_VAULTS):
        # Listed by ARM only: no app refers to them, so no data-plane server is needed.
        filler = FakeVault(name=f"other-kv-{index}", resource_group="other-rg")
        filler.server = fake.arm
        fake.vaults.append(filler)
    fake.role_definitions[CUSTOM] = role_definition(
        CUSTOM, "Secret Peeker", ["Microsoft.KeyVault/vaults/secrets/*"], role_type="CustomRole"
    )
    fake.role_assignments += [
        role_assignment(rbac.id, APP_MI, KEY_VAULT_SECRETS_USER),
        role_assignment(rbac.id, OTHER_MI, CUSTOM),
        role_assignment(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/kv-rg", OTHER_MI, READER),
        role_assignment(f"/subscriptions/{SUBSCRIPTION}", OTHER_MI, KEY_VAULT_READER),
    ]
    return rbac, policies


def _fleet_config(fake: FakeAzure, servers: int) -> Config:
    rbac, policies = _vaults(fake)
    blocks = []
    for index in range(servers):
        name = f"db-{index}"
        fake.add_server(_server(name))
        blocks.append(
            f"""
[[server]]
name = "{name}"
azure = {{ subscription_id = "{SUBSCRIPTION}", resource_group = "fleet-rg" }}

[[server.app]]
name = "app-{index}"
secret = "keyvault:{rbac.url}/secrets/database-url"

[[server.app]]
name = "legacy-{index}"
secret = "keyvault:{policies.url}/secrets/database-url"
"""
        )
    text = f'[azure]\narm_endpoint = "{fake.arm_url}"\n' + "".join(blocks)
    return parse_config(text, "pgwarden.toml")


def _count(fake: FakeAzure, pattern: re.Pattern[str]) -> int:
    return sum(1 for _host, path, _auth in fake.requests if pattern.search(path))


def _scan(
    fake: FakeAzure, session: AzureSession, servers: int, *, refused: str | None = None
) -> list[AzureSnapshot]:
    """Each server of a fleet of ``servers`` collected; requests whose path matches
    ``refused`` are answered 403."""
    fake.reset()
    config = _fleet_config(fake, servers)
    if refused is not None:
        fake.fail(refused, 403, "AuthorizationFailed")
    return [collect_azure(config, server, session) for server in config.server]


@pytest.mark.parametrize("servers", [1, 4])
def test_vaults_and_role_definitions_are_read_once_per_run(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential, servers: int
) -> None:
    session = make_session(fake, tls, credential)
    snapshots = _scan(fake, session, servers)
    vaults = 2 + FILLER_VAULTS
    # One listing of the subscription's vaults (paged), whatever the number of servers.
    assert _count(fake, VAULT_LIST) == -(-vaults // fake.page_size)
    # The list carries enableRbacAuthorization and accessPolicies: no vault is read again.
    assert _count(fake, VAULT_GET) == 0
    # Each role definition is read once for the run.
    assert _count(fake, ROLE_DEFINITION) == ROLE_DEFINITION_IDS
    for snapshot in snapshots:
        assert snapshot.gaps == ()
        assert [v.name for v in snapshot.vaults or ()] == ["platform-kv", "legacy-kv"]
        assert all(a.gap is None for a in snapshot.vault_access or ())
        assert snapshot.vault_access == snapshots[0].vault_access
        assert SECRET_CANARY not in snapshot.model_dump_json()


def test_vault_access_from_the_list_is_what_reading_each_vault_gives(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    session = make_session(fake, tls, credential)
    (snapshot,) = _scan(fake, session, 1)
    assert snapshot.vaults is not None and snapshot.vault_access is not None
    # Without the list's answers the collector reads each vault (vaults.get).
    fresh = make_session(fake, tls, credential)
    fake.requests.clear()
    read_one_by_one = VaultAccessCollector(fresh).collect(snapshot.vaults)
    assert _count(fake, VAULT_GET) == 2
    assert read_one_by_one == snapshot.vault_access
    platform, legacy = snapshot.vault_access
    assert platform.mode == "rbac" and legacy.mode == "access-policy"
    assert {r.principal_id for r in legacy.readers or ()} == {APP_MI, OTHER_MI}
    assert {(r.principal_id, r.role) for r in platform.readers or ()} == {
        (APP_MI, "Key Vault Secrets User"),
        (OTHER_MI, "Secret Peeker"),
        (OTHER_MI, "Key Vault Reader"),
    }


def test_a_vault_list_failure_is_read_once_and_each_server_keeps_its_gap(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    session = make_session(fake, tls, credential)
    snapshots = _scan(fake, session, 3, refused=VAULT_LIST.pattern)
    assert _count(fake, VAULT_LIST) == 1
    for snapshot in snapshots:
        # Unlisted, the vault is named after its host; its properties carry the gap.
        vault = (snapshot.vaults or ())[0]
        assert vault.properties_gap is not None
        assert vault.properties_gap.reason.startswith(
            f"Azure refused to list the key vaults of subscription {SUBSCRIPTION} (HTTP 403"
        )
        assert vault.properties_gap.fix == (
            f"assign Reader on subscription {SUBSCRIPTION} (pgwarden finds the apps' vaults "
            "by listing them)"
        )
        # Without the list's id the access cannot be read: the vault's gap says why.
        (access, _legacy) = snapshot.vault_access or ()
        assert access.gap is not None and "cannot be read" in access.gap.reason


def test_a_role_definition_failure_names_each_vault_it_concerns(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    session = make_session(fake, tls, credential)
    snapshots = _scan(fake, session, 2, refused=f"/roleDefinitions/{CUSTOM}$")
    # Read (and refused) once for the run; every server still records the gap.
    assert _count(fake, re.compile(f"/roleDefinitions/{CUSTOM}$")) == 1
    for snapshot in snapshots:
        (platform, _legacy) = snapshot.vault_access or ()
        assert platform.gap is not None
        assert platform.gap.reason.startswith(
            f"Azure refused to read role definition {CUSTOM} assigned on vault platform-kv"
        )
        assert {r.role for r in platform.readers or ()} == {
            "Key Vault Secrets User",
            "Key Vault Reader",
        }


@pytest.mark.parametrize("servers", [1, 4])
def test_discovered_servers_are_not_read_again(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential, servers: int
) -> None:
    session = make_session(fake, tls, credential)
    fake.reset()
    for name in ["named-db", *(f"db-{index}" for index in range(servers))]:
        fake.add_server(_server(name))
    # named-db is a [[server]] of the config: discovery leaves it to its block.
    text = (
        f'[azure]\narm_endpoint = "{fake.arm_url}"\n'
        f'discover = [{{ subscription_id = "{SUBSCRIPTION}" }}]\n\n'
        f'[[server]]\nname = "named-db"\n'
        f'azure = {{ subscription_id = "{SUBSCRIPTION}", resource_group = "fleet-rg" }}\n'
    )
    config = parse_config(text, "pgwarden.toml")
    found = discover_servers(config, session)
    assert len(found) == servers
    fake.requests.clear()
    snapshots = [collect_azure(config, d.config, session) for d in found]
    # The list gave each discovered server in full: no servers.get for any of them.
    assert _count(fake, SERVER_GET) == 0
    for discovered, snapshot in zip(found, snapshots, strict=True):
        assert snapshot.server == discovered.server
        assert snapshot.gap("azure.server") is None
        assert snapshot.firewall_rules == () and snapshot.configurations is not None
    # The server named in the config is still read with servers.get.
    named = collect_azure(config, config.server[0], session)
    assert _count(fake, SERVER_GET) == 1
    assert named.server is not None and named.server.name == "named-db"


def test_a_listed_server_without_its_private_endpoints_is_read_again(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    """A list item without privateEndpointConnections (and not in a VNet) may not be the
    whole server: its properties come from servers.get, as before."""
    session = make_session(fake, tls, credential)
    fake.reset()
    partial = _server("db-partial")
    del partial.properties["privateEndpointConnections"]
    fake.add_server(partial)
    text = (
        f'[azure]\narm_endpoint = "{fake.arm_url}"\n'
        f'discover = [{{ subscription_id = "{SUBSCRIPTION}" }}]\n'
    )
    config = parse_config(text, "pgwarden.toml")
    (found,) = discover_servers(config, session)
    snapshot = collect_azure(config, found.config, session)
    assert _count(fake, SERVER_GET) == 1
    assert snapshot.server == found.server


def test_a_concurrent_scan_reads_the_shared_answers_once(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    """The run as the CLI plans and collects it, four servers at a time."""
    session = make_session(fake, tls, credential)
    fake.reset()
    configured = _fleet_config(fake, 4)
    for index in range(3):
        fake.add_server(_server(f"found-{index}"))
    text = f'[azure]\narm_endpoint = "{fake.arm_url}"\n'
    discover = f'discover = [{{ subscription_id = "{SUBSCRIPTION}" }}]\n'
    config = configured.model_copy(
        update={"azure": parse_config(text + discover, "pgwarden.toml").azure}
    )
    plan = plan_scan(config, azure=session)
    snapshot = collect_plan(plan, server_jobs=4)
    assert len(snapshot.servers) == 7
    assert _count(fake, VAULT_LIST) == -(-(2 + FILLER_VAULTS) // fake.page_size)
    assert _count(fake, VAULT_GET) == 0
    assert _count(fake, ROLE_DEFINITION) == ROLE_DEFINITION_IDS
    # servers.get for the four configured servers only.
    assert _count(fake, SERVER_GET) == 4
    for server in snapshot.servers:
        assert server.azure is not None and server.azure.server is not None
        assert server.azure.gaps == ()
