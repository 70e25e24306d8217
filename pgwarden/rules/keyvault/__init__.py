"""PGW-KV and PGW-ADM-002: the apps' connection strings in Azure Key Vault."""

from __future__ import annotations

from pgwarden.rules.keyvault.admin_secrets import AppSecretUsesAdmin, VaultHoldsAdminSecret
from pgwarden.rules.keyvault.app_secrets import (
    AppSecretMissing,
    AppSecretPointsElsewhere,
    AppSecretWithoutTls,
)
from pgwarden.rules.keyvault.exposure import VaultOpenToAllNetworks, VaultUsesAccessPolicies
from pgwarden.rules.keyvault.lifecycle import DsnSecretLifecycle, VaultNotRecoverable
from pgwarden.rules.keyvault.readers import ForeignAppReadsSecret, UnknownSecretReader

RULES = [
    AppSecretMissing,
    AppSecretUsesAdmin,
    VaultHoldsAdminSecret,
    AppSecretPointsElsewhere,
    AppSecretWithoutTls,
    DsnSecretLifecycle,
    VaultNotRecoverable,
    ForeignAppReadsSecret,
    UnknownSecretReader,
    VaultUsesAccessPolicies,
    VaultOpenToAllNetworks,
]
