"""The Key Vault side of a shared server with many apps, as a snapshot (no Azure).

Each app has its DSN secret in a vault, either one vault shared by every app or a vault
of its own; the app's identity may read its secret and the next app's (a leak,
PGW-KV-007), and a few people hold Key Vault Secrets User on the subscription (readers
the map does not know, PGW-KV-008). Each app also left two older connection strings in
its vault, one of them the admin's (PGW-KV-002), and every vault is open to all
networks, authorizes with access policies and has no purge protection, so that every
Key Vault rule has something to report on every vault.
"""

from __future__ import annotations

import uuid
from typing import Any

from pgwarden.model.config import Config
from pgwarden.model.snapshot import Snapshot

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
PEOPLE = 5
ADMIN = "admin"
HOST = "srv.postgres.database.azure.com"
_GET = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]


def object_id(*key: object) -> str:
    """A stable Entra object id for ``key``."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, "/".join(map(str, key))))


def _vault(app: int, shared: bool) -> str:
    return "kv-shared" if shared else f"kv-app{app:04d}"


def _vault_id(vault: str) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/"
        f"Microsoft.KeyVault/vaults/{vault}"
    )


def _dsn(name: str, vault: str, user: str, database: str) -> dict[str, Any]:
    endpoint = {"host": HOST, "port": 5432, "user": user}
    return {
        "vault": vault,
        "name": name,
        "connection_string": True,
        "enabled": True,
        "endpoint": endpoint | {"database": database, "sslmode": "require"},
    }


def reader(principal: str, kind: str | None, scope: str, scope_kind: str) -> dict[str, Any]:
    """A role assignment that reads secrets, as the snapshot holds it."""
    return {
        "principal_id": principal,
        "principal_type": kind,
        "via": "role",
        "role": "Key Vault Secrets User",
        "scope": scope,
        "scope_kind": scope_kind,
        "actions": _GET,
    }


def vaults_snapshot(apps: int, *, shared: bool) -> Snapshot:
    """The Azure side of a server of ``apps`` apps (their vaults, secrets and readers)."""
    secrets: dict[str, list[dict[str, Any]]] = {}
    readers: dict[str, list[dict[str, Any]]] = {}
    designated = []
    for app in range(apps):
        vault = _vault(app, shared)
        name, database = f"app{app:04d}-dsn", f"app{app:04d}_db"
        own = _dsn(name, vault, f"app{app:04d}_svc", database)
        secrets.setdefault(vault, []).extend(
            [
                own,
                _dsn(f"old{app:04d}-admin-dsn", vault, ADMIN, database),
                _dsn(f"old{app:04d}-dsn", vault, f"old{app:04d}", database),
            ]
        )
        designated.append(
            {
                "app": f"app{app:04d}",
                "reference": f"keyvault:{vault}/{name}",
                "vault": vault,
                "name": name,
                "secret": own,
            }
        )
        if vault not in readers:
            subscription = f"/subscriptions/{SUBSCRIPTION}"
            readers[vault] = [
                reader(object_id("person", n), "User", subscription, "subscription")
                for n in range(PEOPLE)
            ]
        scope = f"{_vault_id(vault)}/secrets/{name}"
        readers[vault] += [
            reader(object_id("app", identity), "ServicePrincipal", scope, "secret")
            for identity in (app, (app + 1) % apps)
        ]
    vaults = [
        {
            "name": vault,
            "url": f"https://{vault}.vault.azure.net/",
            "id": _vault_id(vault),
            "soft_delete": True,
            "purge_protection": False,
            "rbac_authorization": False,
            "public_network_access": "Enabled",
            "secrets": listed,
        }
        for vault, listed in secrets.items()
    ]
    access = [
        {"vault": vault, "id": _vault_id(vault), "mode": "rbac", "readers": listed}
        for vault, listed in readers.items()
    ]
    server = {
        "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/"
        "Microsoft.DBforPostgreSQL/flexibleServers/srv",
        "name": "srv",
        "subscription_id": SUBSCRIPTION,
        "resource_group": "rg",
        "fqdn": HOST,
    }
    azure = {"cloud": "AzureCloud", "server": server, "app_secrets": designated, "vaults": vaults}
    return Snapshot.model_validate(
        {
            "tool_version": "0.1.0",
            "collected_at": "2026-11-01T10:00:00Z",
            "servers": [{"name": "srv", "azure": azure | {"vault_access": access}}],
        }
    )


def vaults_config(apps: int, *, shared: bool) -> Config:
    """The tenancy map of ``vaults_snapshot``: each app, its secret and its identity."""
    return Config.model_validate(
        {
            "server": [
                {
                    "name": "srv",
                    "admin_role": ADMIN,
                    "azure": {"subscription_id": SUBSCRIPTION, "resource_group": "rg"},
                    "app": [
                        {
                            "name": f"app{app:04d}",
                            "databases": [f"app{app:04d}_db"],
                            "roles": [f"app{app:04d}_svc"],
                            "secret": f"keyvault:{_vault(app, shared)}/app{app:04d}-dsn",
                            "identities": [object_id("app", app)],
                        }
                        for app in range(apps)
                    ],
                }
            ]
        }
    )
