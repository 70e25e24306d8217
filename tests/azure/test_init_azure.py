"""``pgwarden init`` with Azure: ARM names the admin, the vaults' DSN secrets name the
apps' roles and ``secret`` lines. The seed's server on real PostgreSQL, its Azure side
on the HTTPS fakes, read by the real SDK clients."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgwarden.cli.demo import ADMIN, AUDITOR, SeedServer, app_sessions
from pgwarden.cli.draft_map import Draft, InitRequest, draft_map
from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.model.config import AzureRef, parse_config
from tests.azure.fakes import SECRET_CANARY, SUBSCRIPTION, FakeAzure, SeedAzure, TlsFixture
from tests.azure.test_cli_e2e import pgwarden

SAMPLING = "[policy]\nsession_samples = 2\nsession_window_seconds = 0.2\n"


def _draft(
    seed_server: SeedServer,
    session: AzureSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ref: AzureRef,
    vaults: tuple[str, ...] = (),
) -> Draft:
    monkeypatch.setenv("INIT_DSN", seed_server.dsn(AUDITOR))
    (tmp_path / "sampling.toml").write_text(SAMPLING)
    request = InitRequest(
        dsn="env:INIT_DSN", azure=ref, vaults=vaults, config_path=str(tmp_path / "sampling.toml")
    )
    with app_sessions(seed_server):
        return draft_map(request, session=session)


def test_arm_names_the_admin_and_the_vaults_name_the_secrets(
    seed_server: SeedServer,
    seed: SeedAzure,
    session: AzureSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No resource group: the server is found by its ARM name in the subscription.
    ref = AzureRef(subscription_id=SUBSCRIPTION, server_name="ctxeco-db")
    result = _draft(seed_server, session, tmp_path, monkeypatch, ref)
    server = parse_config(result.text, "draft.toml").server[0]
    assert server.name == "ctxeco-db"  # after the Azure resource, not the address
    assert server.azure == AzureRef(subscription_id=SUBSCRIPTION, resource_group="ctxeco-rg")
    assert server.admin_role == ADMIN
    assert result.guess.admin.source == "arm"
    assert result.guess.admin.evidence.startswith("ARM administratorLogin of ctxeco-db")
    apps = {app.name: app for app in server.app}
    radar = apps["secai-radar"]  # named after its vault
    assert radar.databases == ("secairadar",) and radar.roles == ("secairadar_app",)
    assert radar.secret == f"keyvault:{seed.radar_vault.url}/secrets/database-url"
    # The admin's DSN secret is the ctxEco app's: kept, so the scan reports it.
    assert apps["ctxeco"].secret == f"keyvault:{seed.ctxeco_vault.url}/secrets/ctxeco-database-url"
    assert ADMIN not in apps["ctxeco"].roles
    roles = {r.role: r for app in result.guess.apps for r in app.roles}
    assert "secret secai-radar-kv/database-url" in roles["secairadar_app"].evidence
    kinds = {(item.kind, item.subject) for item in result.review}
    assert ("admin-secret", "secret/ctxeco-kv/ctxeco-database-url") in kinds
    assert not {kind for kind, _ in kinds} & {"admin-guessed", "arm-unread", "vault-unread"}
    document = json.dumps(result.to_json(include_text=True))
    assert SECRET_CANARY not in document and "openai" not in result.text


def test_what_azure_refuses_is_in_the_review_list(
    seed_server: SeedServer,
    seed: SeedAzure,
    fake: FakeAzure,
    session: AzureSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.fail(r"/flexibleServers/ctxeco-db$", 403, "AuthorizationFailed")
    seed.radar_vault.forbidden = True
    ref = AzureRef(
        subscription_id=SUBSCRIPTION, resource_group="ctxeco-rg", server_name="ctxeco-db"
    )
    result = _draft(seed_server, session, tmp_path, monkeypatch, ref)
    # Without ARM, the admin is guessed from the server's shape, and says so.
    assert result.guess.admin.role == ADMIN
    assert result.guess.admin.source == "flexible-server"
    by_kind = {item.kind: item for item in result.review}
    assert by_kind["arm-unread"].priority == "high"
    assert "Reader on the server ctxeco-db" in by_kind["arm-unread"].message
    assert "secai-radar-kv" in by_kind["vault-unread"].message
    assert {"admin-guessed", "arm-unread"} <= {
        i.kind for i in result.review if i.priority == "high"
    }


def test_vaults_named_are_the_only_ones_read(
    seed_server: SeedServer,
    seed: SeedAzure,
    session: AzureSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = AzureRef(
        subscription_id=SUBSCRIPTION, resource_group="ctxeco-rg", server_name="ctxeco-db"
    )
    result = _draft(seed_server, session, tmp_path, monkeypatch, ref, vaults=("ctxeco-kv",))
    secrets = {app.name: app.secret for app in result.guess.apps}
    assert secrets["secairadar"] is None  # its vault was not read
    assert secrets["ctxeco"] is not None
    assert not [
        host for host, _path, _auth in seed.fake.requests if seed.radar_vault.url.endswith(host)
    ]


def test_init_command_reads_azure_through_its_options(
    seed_server: SeedServer,
    seed: SeedAzure,
    tls: TlsFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command line as a user runs it: DefaultAzureCredential (managed identity on
    the fake), ``[azure]`` from ``--config``, the draft carrying both."""
    config = f'{SAMPLING}\n[azure]\narm_endpoint = "{seed.fake.arm_url}"\n'
    (tmp_path / "azure.toml").write_text(config)
    monkeypatch.setenv("INIT_CLI_DSN", seed_server.dsn(AUDITOR))
    run = pgwarden(
        seed.fake,
        tls,
        "init",
        "--dsn",
        "env:INIT_CLI_DSN",
        "--azure-subscription",
        SUBSCRIPTION,
        "--server-name",
        "ctxeco-db",
        "--config",
        "azure.toml",
        "-o",
        "draft.toml",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "draft.toml").read_text()
    config_read = parse_config(text, "draft.toml")
    assert config_read.azure.arm_endpoint == seed.fake.arm_url
    assert config_read.server[0].admin_role == ADMIN
    assert "ARM administratorLogin of ctxeco-db" in text
    assert "[high] secret/ctxeco-kv/ctxeco-database-url" in run.stderr
    assert SECRET_CANARY not in run.stdout + run.stderr + text
