"""``pgwarden scan`` as a user runs it, against HTTPS fakes of ARM and Key Vault.

The CLI runs in a subprocess with DefaultAzureCredential narrowed to managed identity
(App Service style, served by the fake), so the whole credential chain is real. The
PostgreSQL side is unreachable on purpose: PostgreSQL rules report ``error``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pgwarden.reports.registry import RENDERERS
from tests.azure.fakes import (
    SECRET_CANARY,
    TOKEN_CANARY,
    FakeAzure,
    SeedAzure,
    TlsFixture,
    seed_azure,
)

RADAR_SECRET = "secret/secai-radar-kv/database-url"
CTXECO_SECRET = "secret/ctxeco-kv/ctxeco-database-url"
AZURE_SERVICES = "firewall-rule/AllowAllAzureServicesAndResourcesWithinAzureIps_2024-1-1_0-0-0"


def pgwarden(
    fake: FakeAzure, tls: TlsFixture, *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
        "IDENTITY_ENDPOINT": f"{fake.arm_url}/msi/token",
        "IDENTITY_HEADER": "fake-identity-header",
        "REQUESTS_CA_BUNDLE": str(tls.ca_path),
    }
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "MSI_ENDPOINT"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def scanned(
    fake_servers: FakeAzure, tls: TlsFixture, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One full scan of the seed's server, all report formats written, at -vv."""
    fake_servers.reset()
    seed = seed_azure(fake_servers)
    tmp_path = tmp_path_factory.mktemp("e2e")
    config = tmp_path / "pgwarden.toml"
    config.write_text(seed.config(), encoding="utf-8")
    outputs = [arg for name in RENDERERS for arg in (f"--{name}", str(tmp_path / f"out.{name}"))]
    run = pgwarden(seed.fake, tls, "-vv", "scan", "--config", str(config), *outputs, cwd=tmp_path)
    results = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    return {"run": run, "results": results, "dir": tmp_path}


def _fails(results: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["rule_id"], f["resource"]) for f in results["findings"] if f["status"] == "fail"}


def test_seed_server_mistakes_are_each_reported(scanned: dict[str, Any]) -> None:
    run, results = scanned["run"], scanned["results"]
    assert run.returncode == 1, run.stderr
    expected = {
        ("PGW-NET-001", "firewall-rule/AllowAll"),
        ("PGW-NET-002", AZURE_SERVICES),
        ("PGW-NET-003", "firewall-rule/office"),
        ("PGW-NET-004", "server/ctxeco-db"),
        ("PGW-BAK-001", "server/ctxeco-db"),
        ("PGW-BAK-002", "database/secairadar"),
        ("PGW-BAK-003", "server/ctxeco-db"),
        ("PGW-TLS-001", "setting/require_secure_transport"),
        ("PGW-MON-001", "server/ctxeco-db"),
        ("PGW-ADM-002", CTXECO_SECRET),
        ("PGW-KV-004", CTXECO_SECRET),
        ("PGW-KV-006", "vault/ctxeco-kv"),
        # Checked by default (CIS): no Defender, no diagnostic settings on the fake.
        ("PGW-AZ-004", "server/ctxeco-db"),
        ("PGW-AZ-005", "subscription/00000000-0000-0000-0000-00000000c0de"),
        ("PGW-AZ-006", "server/ctxeco-db"),
        ("PGW-KV-010", "vault/ctxeco-kv"),
        # Azure's defaults: no pgaudit, log_line_prefix '%t-%c-', log_statement 'none'.
        ("PGW-AUD-001", "setting/shared_preload_libraries"),
        ("PGW-AUD-002", "setting/log_line_prefix"),
        ("PGW-AUD-003", "setting/log_statement"),
    }
    fails = _fails(results)
    assert expected <= fails, expected - fails
    # Nothing else fails: what is configured correctly is not reported.
    assert fails == expected


def test_what_is_configured_correctly_is_not_reported(scanned: dict[str, Any]) -> None:
    results = scanned["results"]
    flagged = {f["resource"] for f in results["findings"]}
    for fine in (
        RADAR_SECRET,
        "firewall-rule/ci-runner",
        "vault/secai-radar-kv",
        "setting/ssl_min_protocol_version",
        "setting/log_connections",
        "setting/logfiles.retention_days",
    ):
        assert fine not in flagged
    coverage = {(c["rule_id"], c["outcome"]) for c in results["coverage"]}
    for rule in (
        "PGW-KV-001",
        "PGW-KV-002",
        "PGW-KV-003",
        "PGW-KV-005",
        "PGW-KV-007",
        "PGW-KV-008",
        "PGW-KV-009",
        "PGW-LOG-001",
    ):
        assert (rule, "passed") in coverage
    # What the policy does not ask for is not checked, and so not counted as a pass.
    skipped = {c["rule_id"]: c["reason"] for c in results["coverage"] if c["outcome"] == "skipped"}
    assert "require_high_availability = false" in skipped["PGW-BAK-004"]
    assert "require_entra_auth = false" in skipped["PGW-AUTH-002"]


def test_firewall_findings_name_every_exposed_database(scanned: dict[str, Any]) -> None:
    finding = next(f for f in scanned["results"]["findings"] if f["rule_id"] == "PGW-NET-003")
    evidence = finding["evidence"]
    assert evidence["addresses"] == 65536 and evidence["equivalent_prefix"] == "/16"
    assert evidence["exposed_databases"] == {
        "ctxEco": "ctxeco",
        "secairadar": "secai-radar",
        "temporal": "ctxeco",
        "temporal_visibility": "ctxeco",
        "zep": "ctxeco",
    }
    assert finding["remediation"] == (
        "az postgres flexible-server firewall-rule update --resource-group ctxeco-rg "
        "--name ctxeco-db --rule-name office --start-ip-address FIRST_HOST "
        "--end-ip-address LAST_HOST"
    )


def test_admin_role_comes_from_arm(scanned: dict[str, Any]) -> None:
    finding = next(f for f in scanned["results"]["findings"] if f["rule_id"] == "PGW-ADM-002")
    assert finding["principal"] == "role/ctxecoadmin" and finding["app"] == "ctxeco"


def test_postgres_rules_report_the_unreachable_server(scanned: dict[str, Any]) -> None:
    errors = [f for f in scanned["results"]["findings"] if f["status"] == "error"]
    assert errors and all(
        f["rule_id"].split("-")[1]
        in {"ISO", "ROLE", "MAP", "ADM", "AUTH", "ENTRA", "CHAN", "FUNC", "EXT"}
        for f in errors
    )


def test_no_secret_or_token_in_any_output(scanned: dict[str, Any]) -> None:
    run = scanned["run"]
    texts = [run.stdout, run.stderr]
    texts += [
        p.read_text(encoding="utf-8", errors="replace")
        for p in scanned["dir"].iterdir()
        if p.is_file()
    ]
    assert "collecting" in run.stderr  # the -vv run's progress and log lines are searched too
    for text in texts:
        assert SECRET_CANARY not in text
        assert TOKEN_CANARY not in text


def test_collect_writes_a_snapshot_without_secrets(
    seed: SeedAzure, tls: TlsFixture, tmp_path: Path
) -> None:
    config = tmp_path / "pgwarden.toml"
    config.write_text(seed.config(), encoding="utf-8")
    run = pgwarden(
        seed.fake, tls, "-vv", "collect", "--config", str(config), "-o", "snap.json", cwd=tmp_path
    )
    # Azure was read; the server's PostgreSQL (nothing listens) was not: written, exit 3.
    assert run.returncode == 3, run.stderr
    assert "pgwarden: warning: ctxeco-db: cannot connect to " in run.stderr
    text = (tmp_path / "snap.json").read_text(encoding="utf-8")
    snapshot = json.loads(text)
    assert snapshot["servers"][0]["azure"]["server"]["administrator_login"] == "ctxecoadmin"
    for output in (text, run.stdout, run.stderr):
        assert SECRET_CANARY not in output and TOKEN_CANARY not in output
    # Offline evaluation of the snapshot finds the same Azure mistakes.
    offline = pgwarden(
        seed.fake,
        tls,
        "scan",
        "--config",
        str(config),
        "--snapshot",
        "snap.json",
        "--rules",
        "PGW-NET-*",
        "--json",
        "-",
        cwd=tmp_path,
    )
    assert offline.returncode == 1
    assert {f["rule_id"] for f in json.loads(offline.stdout)["findings"]} == {
        "PGW-NET-001",
        "PGW-NET-002",
        "PGW-NET-003",
        "PGW-NET-004",
    }


def test_configured_server_missing_in_azure_is_a_config_error(
    seed: SeedAzure, tls: TlsFixture, tmp_path: Path
) -> None:
    config = tmp_path / "pgwarden.toml"
    config.write_text(
        seed.config().replace('resource_group = "ctxeco-rg"', 'resource_group = "wrong-rg"'),
        encoding="utf-8",
    )
    run = pgwarden(seed.fake, tls, "scan", "--config", str(config), cwd=tmp_path)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("pgwarden: error: ")
    assert "no Flexible Server 'ctxeco-db' in resource group 'wrong-rg'" in lines[-1]
    assert "Traceback" not in run.stderr


def test_forbidden_vault_is_an_error_naming_the_role(
    seed: SeedAzure, tls: TlsFixture, tmp_path: Path
) -> None:
    seed.radar_vault.forbidden = True
    config = tmp_path / "pgwarden.toml"
    config.write_text(seed.config(), encoding="utf-8")
    run = pgwarden(
        seed.fake,
        tls,
        "scan",
        "--config",
        str(config),
        "--rules",
        "PGW-KV-001",
        "--json",
        "-",
        cwd=tmp_path,
    )
    findings = json.loads(run.stdout)["findings"]
    error = next(f for f in findings if f["resource"] == RADAR_SECRET)
    assert error["status"] == "error"
    assert "Key Vault Secrets User on secai-radar-kv" in error["message"]
    assert run.returncode == 3
