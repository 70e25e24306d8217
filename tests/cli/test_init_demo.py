"""``pgwarden init`` drafts a usable map; ``pgwarden demo`` runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

from pgwarden.cli.demo import ADMIN, SeedServer
from pgwarden.model.config import parse_config
from tests.cli import run_pgwarden


def test_init_drafts_a_map_that_loads(seed_server: SeedServer, tmp_path: Path) -> None:
    env = {"ADMIN_DSN": seed_server.dsn(ADMIN)}
    run = run_pgwarden(
        "init",
        "--dsn",
        "env:ADMIN_DSN",
        "--name",
        "ctxeco-db",
        "-o",
        "draft.toml",
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "draft.toml").read_text()
    # Editors validate the draft against the schema init saved next to it.
    assert text.startswith("#:schema ./pgwarden.schema.json\n")
    schema = (tmp_path / "pgwarden.schema.json").read_text()
    assert schema == run_pgwarden("config", "schema").stdout
    assert env["ADMIN_DSN"] not in text and 'dsn = "env:ADMIN_DSN"' in text
    config = parse_config(text, "draft.toml")
    server = config.server[0]
    assert server.admin_role == ADMIN
    apps = {app.databases[0]: app for app in server.app}
    assert set(apps) == {"ctxEco", "zep", "temporal", "temporal_visibility", "secairadar"}
    assert "secairadar_app" in apps["secairadar"].roles  # has CONNECT
    assert "zep_app" in apps["zep"].roles  # owns memories
    assert apps["ctxEco"].name == "ctxeco"
    assert text.count("# REVIEW") >= 6
    assert "GRANT pg_monitor TO pgwarden_auditor;" in text
    again = run_pgwarden(
        "init", "--dsn", "env:ADMIN_DSN", "-o", "draft.toml", cwd=tmp_path, env=env
    )
    assert again.returncode == 2 and "exists" in again.stderr


def test_demo_runs_and_writes_its_outputs(tmp_path: Path) -> None:
    run = run_pgwarden("demo", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "pgwarden-demo"
    results = json.loads((out / "results.json").read_text())
    rules = {f["rule_id"] for f in results["findings"] if f["status"] == "fail"}
    assert {"PGW-ISO-001", "PGW-ADM-001"} <= rules
    assert (out / "snapshot.json").exists() and (out / "pgwarden.toml").exists()
    assert "The throwaway server is gone" in run.stdout
    assert "password=" not in (out / "snapshot.json").read_text()
