"""``keyvault:`` secret references: which vault and secret a config value names.

No I/O and no Azure SDK: the config is checked with this before anything connects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pgwarden.model.errors import ConfigError

KEYVAULT_PREFIX = "keyvault:"
_VAULT_NAME = re.compile(r"^[A-Za-z0-9-]{3,24}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")


@dataclass(frozen=True)
class SecretRef:
    """A parsed ``keyvault:`` reference: the vault's URL and the secret's name."""

    vault_url: str
    vault_name: str
    name: str
    version: str | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.vault_url).netloc or self.vault_url


def parse_secret_ref(reference: str, keyvault_suffix: str, where: str) -> SecretRef:
    """Parse ``keyvault:VAULT/SECRET[/VERSION]`` or ``keyvault:https://HOST/secrets/NAME``.

    A full URI may name any host (a private endpoint behind custom DNS); its vault
    name is then taken from the first DNS label until ARM says better.
    """
    body = reference.removeprefix(KEYVAULT_PREFIX)
    if body.lower().startswith("https://"):
        parts = urlsplit(body)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if not parts.hostname or len(segments) not in (2, 3) or segments[0] != "secrets":
            raise ConfigError(
                f"{where}: {reference!r} is not a secret URI like "
                "keyvault:https://VAULT.vault.azure.net/secrets/NAME"
            )
        return SecretRef(
            vault_url=f"https://{parts.netloc}",
            vault_name=parts.hostname.split(".")[0],
            name=segments[1],
            version=segments[2] if len(segments) == 3 else None,
        )
    pieces = body.split("/")
    if len(pieces) not in (2, 3) or not _VAULT_NAME.match(pieces[0]):
        raise ConfigError(
            f"{where}: {reference!r} is not like keyvault:VAULT/SECRET "
            "(vault names are 3-24 letters, digits and dashes)"
        )
    if not _SECRET_NAME.match(pieces[1]):
        raise ConfigError(f"{where}: {pieces[1]!r} is not a Key Vault secret name")
    return SecretRef(
        vault_url=f"https://{pieces[0]}.{keyvault_suffix}",
        vault_name=pieces[0],
        name=pieces[1],
        version=pieces[2] if len(pieces) == 3 else None,
    )
