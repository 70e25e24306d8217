"""Canaries everywhere: no secret reaches any byte pgwarden writes or prints.

One scan of a real PostgreSQL server (shaped like the seed's) whose auditor DSN lives
in a Key Vault fake, with app secrets holding DSNs, Entra-style tokens from a managed
identity fake, and a DSN in an environment variable, at the most verbose log level,
writing every report format, a snapshot, a baseline and a history database. Then every
file under the work folder and everything printed is searched for each canary.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgwarden.cli.demo import SeedServer
from pgwarden.collect.postgres.scram import derive_keys
from pgwarden.reports.registry import RENDERERS
from tests.azure.fakes import (
    SECRET_CANARY,
    TOKEN_CANARY,
    FakeAzure,
    FakeSecret,
    FakeVault,
    TlsFixture,
    seed_azure,
)
from tests.cli import run_pgwarden

PG_CANARY = "Pg-Canary-Pw-91ac4e"
ENV_CANARY = "Env-Canary-Pw-3d7b20"
CANARIES = (PG_CANARY, ENV_CANARY, SECRET_CANARY, TOKEN_CANARY)
AUDITOR = "canary_auditor"


@pytest.fixture(scope="module")
def fake_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAzure, TlsFixture]]:
    tls = TlsFixture(tmp_path_factory.mktemp("tls"))
    fake = FakeAzure(tls)
    fake.start()
    try:
        yield fake, tls
    finally:
        fake.stop()


def _auditor(seed: SeedServer) -> str:
    server = seed.server
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE pg_monitor").format(
                sql.Identifier(AUDITOR), PG_CANARY
            )
        )
        for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datallowconn"):
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(name), sql.Identifier(AUDITOR)
                )
            )
    return server.dsn(AUDITOR, PG_CANARY)


def _scram_keys(seed: SeedServer) -> tuple[str, str]:
    """The auditor's SCRAM keys (as secret as its password), from its verifier."""
    with psycopg.connect(seed.server.dsn()) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (AUDITOR,))
        verifier = str(row.fetchone()[0])  # type: ignore[index]
    iterations, salt = verifier.split("$")[1].split(":")
    keys = derive_keys(PG_CANARY, base64.b64decode(salt), int(iterations))
    return keys.client_key, keys.server_key


def _run(
    args: list[str], cwd: Path, fake: FakeAzure, tls: TlsFixture
) -> subprocess.CompletedProcess[str]:
    env = {
        "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
        "IDENTITY_ENDPOINT": f"{fake.arm_url}/msi/token",
        "IDENTITY_HEADER": "fake-identity-header",
        "REQUESTS_CA_BUNDLE": str(tls.ca_path),
        "CANARY_DSN": f"postgresql://nobody:{ENV_CANARY}@127.0.0.1:1/postgres?connect_timeout=2",
    }
    return run_pgwarden("-vv", *args, cwd=cwd, env=env)


def test_no_canary_in_any_output(
    seed_server: SeedServer, fake_azure: tuple[FakeAzure, TlsFixture], tmp_path: Path
) -> None:
    fake, tls = fake_azure
    fake.reset()
    azure = seed_azure(fake)
    scanner_vault = fake.add_vault(
        FakeVault(
            name="pgwarden-kv",
            resource_group="security-rg",
            secrets={"scanner-dsn": FakeSecret(_auditor(seed_server))},
        )
    )
    config = azure.config(dsn=f"keyvault:{scanner_vault.url}/secrets/scanner-dsn").replace(
        "session_samples = 1", "session_samples = 2"
    )
    (tmp_path / "pgwarden.toml").write_text(config)
    bare = tmp_path / "no-config"
    bare.mkdir()
    outputs = [arg for name in RENDERERS for arg in (f"--{name}", f"out.{name}")]
    runs = [
        _run(["scan", "--history", "history.sqlite", *outputs], tmp_path, fake, tls),
        _run(["collect", "-o", "snapshot.json"], tmp_path, fake, tls),
        _run(["baseline", "create", "out.json", "-o", "baseline.json"], tmp_path, fake, tls),
        _run(["scan", "--dsn", "env:CANARY_DSN"], bare, fake, tls),
        _run(["init", "--dsn", "env:CANARY_DSN", "-o", "draft.toml"], bare, fake, tls),
        _run(["history", "--history", "history.sqlite"], tmp_path, fake, tls),
    ]
    assert runs[0].returncode == 1, runs[0].stderr
    assert runs[1].returncode == 0, runs[1].stderr
    assert runs[3].returncode == 2 and "cannot connect" in runs[3].stderr
    assert runs[4].returncode == 2 and "cannot connect" in runs[4].stderr
    printed = "".join(run.stdout + run.stderr for run in runs)
    assert "DEBUG" in printed  # the most verbose level really was on
    assert "SCRAM keys derived once" in printed  # the keys were derived and used
    written = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert {"out.html", "out.sarif", "snapshot.json", "history.sqlite"} <= {p.name for p in written}
    for canary in (*CANARIES, *_scram_keys(seed_server)):
        assert canary not in printed, f"{canary} printed"
        for path, content in written.items():
            if path.name == "pgwarden.toml":
                continue
            assert canary.encode() not in content, f"{canary} in {path.name}"
