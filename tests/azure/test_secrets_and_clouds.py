"""Secret references, DSN parsing, DSN sources, clouds, and that nothing leaks."""

from __future__ import annotations

import logging

import pytest

from pgwarden.collect.azure.cloud import CLOUDS, AzureSession, open_session
from pgwarden.collect.azure.keyvault import endpoint_of_secret
from pgwarden.collect.azure.secret_ref import parse_secret_ref
from pgwarden.collect.azure.server import collect_azure
from pgwarden.collect.dsn import check_dsn_source, resolve_dsn
from pgwarden.model.config import AzureSettings, parse_config
from pgwarden.model.errors import ConfigError, ConnectError
from pgwarden.model.snapshot import Endpoint
from tests.azure.fakes import (
    FQDN,
    SECRET_CANARY,
    TOKEN_CANARY,
    FakeSecret,
    SeedAzure,
    StaticCredential,
)


@pytest.mark.parametrize(
    ("reference", "cloud", "url", "vault", "name", "version"),
    [
        (
            "keyvault:secai-radar-kv/database-url",
            "AzureCloud",
            "https://secai-radar-kv.vault.azure.net",
            "secai-radar-kv",
            "database-url",
            None,
        ),
        (
            "keyvault:kv1/dsn/0123abcd",
            "AzureChinaCloud",
            "https://kv1.vault.azure.cn",
            "kv1",
            "dsn",
            "0123abcd",
        ),
        (
            "keyvault:kv1/dsn",
            "AzureUSGovernment",
            "https://kv1.vault.usgovcloudapi.net",
            "kv1",
            "dsn",
            None,
        ),
        (
            "keyvault:https://kv1.privatelink.contoso.internal:8443/secrets/dsn",
            "AzureCloud",
            "https://kv1.privatelink.contoso.internal:8443",
            "kv1",
            "dsn",
            None,
        ),
        (
            "keyvault:https://kv1.vault.azure.net/secrets/dsn/v2",
            "AzureCloud",
            "https://kv1.vault.azure.net",
            "kv1",
            "dsn",
            "v2",
        ),
    ],
)
def test_secret_references(
    reference: str, cloud: str, url: str, vault: str, name: str, version: str | None
) -> None:
    ref = parse_secret_ref(reference, CLOUDS[cloud].keyvault_suffix, "app.secret")
    assert (ref.vault_url, ref.vault_name, ref.name, ref.version) == (url, vault, name, version)


@pytest.mark.parametrize(
    "reference",
    [
        "keyvault:kv",
        "keyvault:x/dsn",
        "keyvault:kv1/bad_name",
        "keyvault:https://kv/dsn",
        "keyvault:https://kv.vault.azure.net/keys/k",
    ],
)
def test_bad_secret_references_are_config_errors(reference: str) -> None:
    with pytest.raises(ConfigError, match=r"^app\.secret: "):
        parse_secret_ref(reference, "vault.azure.net", "app.secret")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            f"postgresql://secairadar_app:{SECRET_CANARY}@{FQDN}:5432/secairadar?sslmode=require",
            Endpoint(
                user="secairadar_app",
                host=FQDN,
                port=5432,
                database="secairadar",
                sslmode="require",
            ),
        ),
        (
            f"postgres://app%40ctxeco-db:{SECRET_CANARY}@{FQDN}/zep",
            Endpoint(user="app@ctxeco-db", host=FQDN, database="zep"),
        ),
        (
            f"host={FQDN} port=6432 dbname=zep user=zep_app password={SECRET_CANARY} "
            "sslmode=verify-full",
            Endpoint(user="zep_app", host=FQDN, port=6432, database="zep", sslmode="verify-full"),
        ),
        (
            f"  jdbc:postgresql://{FQDN}:5432/temporal?user=t&password={SECRET_CANARY}\n",
            Endpoint(user="t", host=FQDN, port=5432, database="temporal"),
        ),
        (
            f"Host={FQDN};Database=ctxEco;Username=ctxeco_app;Password={SECRET_CANARY};"
            "SSL Mode=VerifyFull",
            Endpoint(user="ctxeco_app", host=FQDN, database="ctxEco", sslmode="verify-full"),
        ),
        # No dbname: libpq connects to the database named like the user.
        (
            f"postgresql://zep_app:{SECRET_CANARY}@{FQDN}",
            Endpoint(user="zep_app", host=FQDN, database="zep_app"),
        ),
    ],
)
def test_dsn_secrets_reduce_to_endpoints(value: str, expected: Endpoint) -> None:
    endpoint, problem = endpoint_of_secret(value)
    assert problem is None
    assert endpoint == expected
    assert SECRET_CANARY not in endpoint.model_dump_json()


@pytest.mark.parametrize(
    "value",
    [
        f"sk-{SECRET_CANARY}",
        f"password={SECRET_CANARY} {SECRET_CANARY}=x",
        f'{{"password": "{SECRET_CANARY}"}}',
        "",
    ],
)
def test_values_that_are_not_dsns_are_described_without_quoting(value: str) -> None:
    endpoint, problem = endpoint_of_secret(value)
    assert endpoint is None and problem
    assert SECRET_CANARY not in problem


def test_dsn_parsing_ignores_this_machines_libpq_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    monkeypatch.setenv("PGHOST", "elsewhere")
    endpoint, _problem = endpoint_of_secret("postgresql://u@h/db")
    assert endpoint is not None and endpoint.sslmode is None and endpoint.host == "h"


def test_keyvault_dsn_source_reads_the_secret(seed: SeedAzure, session: AzureSession) -> None:
    reference = f"keyvault:{seed.radar_vault.url}/secrets/database-url"
    assert check_dsn_source(reference, "server.dsn") is None  # no I/O before the scan
    dsn = resolve_dsn(reference, "server.dsn", session=session)
    assert SECRET_CANARY in dsn and "secairadar_app" in dsn


def test_keyvault_dsn_source_problems_are_one_line_without_the_value(
    seed: SeedAzure, session: AzureSession
) -> None:
    seed.radar_vault.secrets["broken"] = FakeSecret(f"not a dsn {SECRET_CANARY} x")
    with pytest.raises(ConfigError) as broken:
        resolve_dsn(
            f"keyvault:{seed.radar_vault.url}/secrets/broken", "server.dsn", session=session
        )
    assert SECRET_CANARY not in str(broken.value)
    assert (
        str(broken.value) == "server.dsn: the secret's value is not a PostgreSQL connection string"
    )
    with pytest.raises(ConfigError, match="does not exist in vault"):
        resolve_dsn(f"keyvault:{seed.radar_vault.url}/secrets/nope", "server.dsn", session=session)
    seed.radar_vault.forbidden = True
    with pytest.raises(ConnectError, match="Key Vault Secrets User on"):
        resolve_dsn(
            f"keyvault:{seed.radar_vault.url}/secrets/database-url", "server.dsn", session=session
        )


def test_password_entra_logs_in_with_a_postgres_token(
    session: AzureSession, credential: StaticCredential
) -> None:
    dsn = resolve_dsn(
        f"host={FQDN} user=dba@contoso.com password=entra dbname=postgres",
        "server.dsn",
        session=session,
    )
    assert "password=" in dsn and "entra" not in dsn.split("password=")[1].split()[0]
    assert credential.scopes == ["https://ossrdbms-aad.database.windows.net/.default"]
    assert resolve_dsn("host=h user=u password=secret", "d", session=session).endswith("secret")


def test_clouds_pick_endpoints_scopes_and_vault_suffixes() -> None:
    china = open_session(AzureSettings(cloud="AzureChinaCloud"), credential=StaticCredential())
    assert china.arm_endpoint == "https://management.chinacloudapi.cn"
    assert china.arm_kwargs()["credential_scopes"] == [
        "https://management.chinacloudapi.cn/.default"
    ]
    assert china.vault_url("kv") == "https://kv.vault.azure.cn"
    assert china.cloud.postgres_scope == "https://ossrdbms-aad.database.chinacloudapi.cn/.default"
    gov = open_session(
        AzureSettings(cloud="AzureUSGovernment", arm_endpoint="https://arm.example.test/"),
        credential=StaticCredential(),
    )
    assert gov.arm_endpoint == "https://arm.example.test"
    assert gov.arm_kwargs()["credential_scopes"] == [
        "https://management.core.usgovcloudapi.net/.default"
    ]


@pytest.mark.parametrize(
    ("azure", "message"),
    [
        ('arm_endpoint = "http://management.azure.com"', "azure.arm_endpoint: must be an https"),
        ('dsn_secret_pattern = "("', "azure.dsn_secret_pattern: not a valid regular expression"),
        ('cloud = "Mars"', "azure.cloud: "),
        ("discover = [{ resource_group = 'rg' }]", "subscription_id"),
    ],
)
def test_azure_config_errors_are_one_line(azure: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(f"[azure]\n{azure}\n", "pgwarden.toml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_debug_logging_never_shows_a_secret_or_token(
    seed: SeedAzure, session: AzureSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Even with every azure logger at DEBUG, no body and no token reaches a log line."""
    config = parse_config(seed.config(), "pgwarden.toml")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("azure").setLevel(logging.DEBUG)
        try:
            collect_azure(config, config.server[0], session)
        finally:
            logging.getLogger("azure").setLevel(logging.NOTSET)
    assert caplog.records  # the HTTP logging policy did log (headers, redacted)
    assert SECRET_CANARY not in caplog.text and TOKEN_CANARY not in caplog.text
