"""The Key Vault collector: where the apps' connection strings live, and what they say.

For each app's ``secret`` reference it reads the secret, reduces the DSN to user,
host, port, database and sslmode (an ``Endpoint``) and drops the value at once. It
lists the metadata of every secret in the apps' vaults and reads the values only of
secrets whose name or content type marks them as connection strings (the configurable
``[azure] dsn_secret_pattern``). Vault properties (soft delete, purge protection, RBAC,
public network access) come from ARM (``azure-mgmt-keyvault``).

No secret value leaves this module: not in the snapshot, an exception or a log line.
Any failure of a call (refused, unreadable, unexpected) becomes a Gap of the vault,
secret or section it was reading; the other vaults and secrets are still read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.secrets import SecretClient, SecretProperties
from azure.mgmt.keyvault import KeyVaultManagementClient

from pgwarden.collect.azure.cloud import AzureSession, azure_gap, enum_text, host_of
from pgwarden.collect.azure.secret_ref import SecretRef, parse_secret_ref
from pgwarden.collect.endpoint import endpoint_of
from pgwarden.model.config import AppConfig
from pgwarden.model.errors import ConfigError, ConnectError
from pgwarden.model.snapshot import AppSecret, Endpoint, Gap, KeyVault, SecretInfo

if TYPE_CHECKING:
    from azure.mgmt.keyvault.models import Vault

# Npgsql / ADO.NET keys (lower case, spaces removed) and the Endpoint field they fill.
_ADO_KEYS = {
    "host": "host",
    "server": "host",
    "port": "port",
    "database": "dbname",
    "db": "dbname",
    "username": "user",
    "userid": "user",
    "user": "user",
    "uid": "user",
    "sslmode": "sslmode",
}
_ADO_SSLMODES = {
    "disable": "disable",
    "allow": "allow",
    "prefer": "prefer",
    "require": "require",
    "verifyca": "verify-ca",
    "verifyfull": "verify-full",
}


def endpoint_of_secret(value: str) -> tuple[Endpoint | None, str | None]:
    """Where a secret's DSN points, or why it is not a DSN; never quotes the value.

    Accepts libpq URIs and key/value strings (URL-encoded user names are decoded),
    ``jdbc:postgresql://`` URLs and Npgsql ``Host=…;Username=…`` strings. libpq's
    defaults from this machine's environment are deliberately not applied.
    """
    text = value.strip()
    if text.startswith("jdbc:postgresql://"):
        text = text.removeprefix("jdbc:")
    if ";" in text and "=" in text and "://" not in text and _looks_like_ado(text):
        return _ado_endpoint(text), None
    try:
        endpoint = endpoint_of(text, environ={}) if text else None
    except ConfigError:
        # libpq's message can quote a fragment of the value (a password's tail).
        return None, "the secret's value is not a PostgreSQL connection string"
    if endpoint is None or (endpoint.host is None and endpoint.user is None):
        return None, "the secret's value names no host and no user: not a PostgreSQL DSN"
    return endpoint, None


def _looks_like_ado(text: str) -> bool:
    keys = {
        p.split("=", 1)[0].strip().lower().replace(" ", "") for p in text.split(";") if "=" in p
    }
    return bool(keys & {"host", "server"}) and bool(keys & {"username", "userid", "uid", "user"})


def _ado_endpoint(text: str) -> Endpoint:
    fields: dict[str, str] = {}
    for part in text.split(";"):
        if "=" not in part:
            continue
        key, _, raw = part.partition("=")
        target = _ADO_KEYS.get(key.strip().lower().replace(" ", ""))
        if target is not None:
            fields[target] = raw.strip()
    port = fields.get("port", "")
    sslmode = fields.get("sslmode")
    user = fields.get("user")
    return Endpoint(
        user=user,
        host=fields.get("host"),
        port=int(port) if port.isdigit() else None,
        database=fields.get("dbname") or user,
        sslmode=_ADO_SSLMODES.get(sslmode.lower().replace("-", ""), sslmode.lower())
        if sslmode
        else None,
    )


def secret_client(session: AzureSession, url: str) -> SecretClient:
    """A SecretClient for a vault URL, with pgwarden's HTTP settings."""
    host = (urlsplit(url).hostname or "").lower()
    # Key Vault's challenge names the token's resource, checked against the vault's
    # host. A private endpoint behind custom DNS (or a test fake) is named explicitly
    # in the config, so its host need not end in the cloud's vault suffix.
    verify = host.endswith("." + session.cloud.keyvault_suffix)
    return SecretClient(
        url, session.credential, verify_challenge_resource=verify, **session.client_kwargs(url)
    )


def _secret_info(vault: str, props: SecretProperties) -> SecretInfo:
    return SecretInfo(
        vault=vault,
        name=props.name or "",
        content_type=props.content_type,
        enabled=props.enabled,
        expires_on=props.expires_on,
        not_before=props.not_before,
        updated_on=props.updated_on,
    )


def _secrets_role(vault: str, rbac: bool | None) -> str:
    if rbac is False:
        return f"an access policy with secret get and list permissions on vault {vault}"
    return f"Key Vault Secrets User on {vault}"


@dataclass(frozen=True)
class KeyVaultData:
    """The apps' designated secrets and the vaults that hold them."""

    app_secrets: tuple[AppSecret, ...]
    vaults: tuple[KeyVault, ...]
    # The subscription's vaults as ARM listed them (empty when they could not be listed).
    listed: tuple[VaultProperties, ...] = ()


@dataclass(frozen=True)
class VaultProperties:
    """A vault as ARM lists it: how to recognise it and its protection settings."""

    name: str
    id: str | None
    uri_host: str | None
    soft_delete: bool | None
    purge_protection: bool | None
    rbac: bool | None
    public_network_access: str | None
    default_action: str | None
    # The access policies as listed (SDK ``AccessPolicyEntry``s); None when the list
    # left them out, and the vault's access is then read with ``vaults.get``.
    access_policies: tuple[Any, ...] | None = None


def _vault_properties(vault: Vault) -> VaultProperties:
    props = vault.properties
    acls = props.network_acls if props else None
    policies = props.access_policies if props else None
    return VaultProperties(
        name=vault.name or "",
        id=vault.id,
        uri_host=host_of(props.vault_uri).lower() if props and props.vault_uri else None,
        # Soft delete cannot be turned off since 2020; ARM may omit it.
        soft_delete=props.enable_soft_delete if props else None,
        purge_protection=bool(props.enable_purge_protection) if props else None,
        rbac=props.enable_rbac_authorization if props else None,
        public_network_access=enum_text(props.public_network_access) if props else None,
        default_action=enum_text(acls.default_action) if acls else None,
        access_policies=tuple(policies) if policies is not None else None,
    )


class KeyVaultCollector:
    """Reads the apps' vaults: ARM properties, secret metadata, DSN secrets' endpoints."""

    def __init__(
        self,
        session: AzureSession,
        *,
        subscription_id: str | None,
        dsn_secret_pattern: str,
    ) -> None:
        self._session = session
        self._subscription = subscription_id
        self._pattern = re.compile(dsn_secret_pattern)

    def is_dsn_secret(self, props: SecretProperties) -> bool:
        """Whether a secret's name or content type marks it as a connection string."""
        return any(text and self._pattern.search(text) for text in (props.name, props.content_type))

    def collect(self, apps: Sequence[AppConfig], where: str) -> KeyVaultData:
        refs = [
            (app, parse_secret_ref(app.secret, self._session.cloud.keyvault_suffix, where))
            for app in apps
            if app.secret is not None
        ]
        properties, properties_gap = self.vault_properties()
        vault_urls = list(dict.fromkeys(ref.vault_url for _app, ref in refs))
        vaults: dict[str, KeyVault] = {}
        for url in vault_urls:
            hint = next(ref.vault_name for _app, ref in refs if ref.vault_url == url)
            vaults[url] = self._collect_vault(url, hint, properties, properties_gap)
        app_secrets: list[AppSecret] = []
        for app, ref in refs:
            vault = vaults[ref.vault_url]
            app_secrets.append(self._app_secret(app.name, app.secret or "", ref, vault))
        return KeyVaultData(
            app_secrets=tuple(app_secrets), vaults=tuple(vaults.values()), listed=tuple(properties)
        )

    def collect_vaults(self, names: Sequence[str] = ()) -> tuple[tuple[KeyVault, ...], Gap | None]:
        """Vaults by name (every vault of the subscription when none is named), as
        ``collect`` reads an app's vault; and why the subscription's vaults could not be
        listed, if so. ``pgwarden init`` looks in them for the apps' DSN secrets."""
        properties, properties_gap = self.vault_properties()
        vaults: list[KeyVault] = []
        for name in names or [p.name for p in properties]:
            match = next((p for p in properties if p.name.lower() == name.lower()), None)
            url = f"https://{match.uri_host}" if match and match.uri_host else None
            url = url or self._session.vault_url(name)
            vaults.append(self._collect_vault(url, name, properties, properties_gap))
        return tuple(vaults), properties_gap

    # --- ARM: vault properties -------------------------------------------------------

    def vault_properties(self) -> tuple[list[VaultProperties], Gap | None]:
        """Every vault of the subscription with its ARM properties, or the Gap why not.

        The list is read once per subscription and run (``AzureSession.cache``): every
        server of a fleet looks for its apps' vaults in the same answer (a failure too).
        """
        subscription = self._subscription
        if subscription is None:
            return [], Gap(
                section="azure.vaults",
                reason="the vault's properties need a subscription: this server has no "
                "azure reference",
                fix="add azure = { subscription_id = … } to the server",
            )
        try:
            found = self._session.cache.get(
                ("key-vaults", subscription.lower()), lambda: self._list_vaults(subscription)
            )
        except Exception as exc:
            return [], azure_gap(
                "azure.vaults",
                exc,
                action=f"list the key vaults of subscription {subscription}",
                role=f"Reader on subscription {subscription} (pgwarden finds the apps' "
                "vaults by listing them)",
                host=host_of(self._session.arm_endpoint),
            )
        return list(found), None

    def _list_vaults(self, subscription: str) -> tuple[VaultProperties, ...]:
        """Every vault of the subscription, every page of them; raises."""
        # vaults.list() returns generic resources without properties; list_by_subscription
        # returns full vaults, and finding a vault by name or URI needs no resource group.
        with KeyVaultManagementClient(
            self._session.credential, subscription, **self._session.arm_kwargs()
        ) as client:
            return tuple(_vault_properties(vault) for vault in client.vaults.list_by_subscription())

    # --- data plane: secret metadata and DSN secrets ---------------------------------

    def _client(self, url: str) -> SecretClient:
        return secret_client(self._session, url)

    def _collect_vault(
        self,
        url: str,
        hint: str,
        properties: list[VaultProperties],
        properties_gap: Gap | None,
    ) -> KeyVault:
        host = host_of(url).lower()
        match = next((p for p in properties if p.uri_host == host), None) or next(
            (p for p in properties if p.name.lower() == hint.lower()), None
        )
        name = match.name if match else hint
        if match is None and properties_gap is None:
            properties_gap = Gap(
                section="azure.vaults",
                reason=f"vault {name} ({host}) is not in subscription {self._subscription}",
                fix="scan with an identity that has Reader on the vault's subscription",
            )
        rbac = match.rbac if match else None
        secrets: tuple[SecretInfo, ...] | None = None
        secrets_gap: Gap | None = None
        with self._client(url) as client:
            try:
                listed: list[SecretInfo] = []
                for props in client.list_properties_of_secrets():
                    info = _secret_info(name, props)
                    if self.is_dsn_secret(props):
                        info = self._read_endpoint(client, info, props.name or "", None, rbac)
                    listed.append(info)
                secrets = tuple(listed)
            except Exception as exc:
                secrets_gap = azure_gap(
                    "azure.keyvault",
                    exc,
                    action=f"list the secrets of vault {name}",
                    role=_secrets_role(name, rbac),
                    host=host,
                )
        return KeyVault(
            name=name,
            url=url,
            id=match.id if match else None,
            soft_delete=match.soft_delete if match else None,
            purge_protection=match.purge_protection if match else None,
            rbac_authorization=rbac,
            public_network_access=match.public_network_access if match else None,
            network_default_action=match.default_action if match else None,
            properties_gap=properties_gap,
            secrets=secrets,
            secrets_gap=secrets_gap,
        )

    def _read_endpoint(
        self,
        client: SecretClient,
        info: SecretInfo,
        name: str,
        version: str | None,
        rbac: bool | None,
    ) -> SecretInfo:
        """The secret's metadata with its DSN's endpoint; the value is dropped here."""
        try:
            secret = client.get_secret(name, version)
        except Exception as exc:
            return info.model_copy(
                update={
                    "connection_string": True,
                    "read_error": azure_gap(
                        "azure.keyvault",
                        exc,
                        action=f"read secret {name} of vault {info.vault}",
                        role=_secrets_role(info.vault, rbac),
                        host=host_of(client.vault_url),
                    ),
                }
            )
        endpoint, problem = endpoint_of_secret(secret.value or "")
        del secret
        return _with_properties(info, endpoint, problem)

    def _app_secret(self, app: str, reference: str, ref: SecretRef, vault: KeyVault) -> AppSecret:
        listed = next((s for s in vault.secrets or () if s.name == ref.name), None)
        if (
            listed is not None
            and ref.version is None
            and listed.connection_string
            and (listed.read_error is None)
        ):
            # Already read while listing the vault: one read per secret.
            return AppSecret(
                app=app, reference=reference, vault=vault.name, name=ref.name, secret=listed
            )
        with self._client(ref.vault_url) as client:
            try:
                secret = client.get_secret(ref.name, ref.version)
            except ResourceNotFoundError:
                return AppSecret(
                    app=app, reference=reference, vault=vault.name, name=ref.name, found=False
                )
            except Exception as exc:
                gap = azure_gap(
                    "azure.keyvault",
                    exc,
                    action=f"read secret {ref.name} of vault {vault.name}",
                    role=_secrets_role(vault.name, vault.rbac_authorization),
                    host=ref.host,
                )
                return AppSecret(
                    app=app, reference=reference, vault=vault.name, name=ref.name, gap=gap
                )
            endpoint, problem = endpoint_of_secret(secret.value or "")
            info = _secret_info(vault.name, secret.properties)
            del secret
        return AppSecret(
            app=app,
            reference=reference,
            vault=vault.name,
            name=ref.name,
            secret=_with_properties(info, endpoint, problem),
        )


def _with_properties(
    info: SecretInfo, endpoint: Endpoint | None, problem: str | None
) -> SecretInfo:
    return info.model_copy(
        update={"connection_string": True, "endpoint": endpoint, "dsn_error": problem}
    )


def read_secret_value(session: AzureSession, reference: str, where: str) -> str:
    """The value of one secret (the scanner's own ``keyvault:`` DSN).

    The caller holds the value only to connect; failures are one line without it.
    """
    ref = parse_secret_ref(reference, session.cloud.keyvault_suffix, where)
    with secret_client(session, ref.vault_url) as client:
        try:
            secret = client.get_secret(ref.name, ref.version)
        except ResourceNotFoundError:
            raise ConfigError(
                f"{where}: secret {ref.name!r} does not exist in vault {ref.vault_name}"
            ) from None
        except Exception as exc:
            gap = azure_gap(
                "dsn",
                exc,
                action=f"read secret {ref.name} of vault {ref.vault_name}",
                role=f"Key Vault Secrets User on {ref.vault_name}",
                host=ref.host,
            )
            raise ConnectError(
                f"{where}: {gap.reason}" + (f" ({gap.fix})" if gap.fix else "")
            ) from None
    value = secret.value
    if not value:
        raise ConfigError(f"{where}: secret {ref.name!r} of vault {ref.vault_name} is empty")
    return value
