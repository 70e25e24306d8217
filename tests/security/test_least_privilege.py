"""The least-privilege auditor that ``pgwarden init`` prints is enough for a full scan."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from pgwarden.cli.demo import ADMIN, DEMO_CONFIG, SeedServer, app_sessions
from tests.cli import run_pgwarden

pytestmark = pytest.mark.versioned


def test_a_full_scan_as_exactly_the_printed_auditor(
    seed_server: SeedServer, tmp_path: Path
) -> None:
    drafted = run_pgwarden(
        "init", "--dsn", "env:ADMIN_DSN", cwd=tmp_path, env={"ADMIN_DSN": seed_server.dsn(ADMIN)}
    )
    assert drafted.returncode == 0, drafted.stderr
    marker = "# Least-privilege auditor for pgwarden"
    block = drafted.stdout.split(marker, 1)[1].splitlines()[1:]
    statements = [line.removeprefix("#").strip() for line in block if line.startswith("#   ")]
    assert statements[0].startswith("CREATE ROLE pgwarden_auditor LOGIN")
    assert statements[1] == "GRANT pg_monitor TO pgwarden_auditor;"
    # The demo already has a pgwarden_auditor; this test makes its own under another name.
    sql_text = "\n".join(statements).replace("pgwarden_auditor", "least_auditor")
    sql_text = sql_text.replace("'<choose one>'", "'least-pw-1'")
    with psycopg.connect(seed_server.server.dsn(), autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        for statement in sql_text.split(";\n"):
            conn.execute(statement.rstrip(";"))
    try:
        config = DEMO_CONFIG.replace("pgwarden_auditor", "least_auditor").replace(
            "[policy]\n", "[policy]\nsession_samples = 2\nsession_window_seconds = 0.2\n", 1
        )
        (tmp_path / "pgwarden.toml").write_text(config)
        with app_sessions(seed_server):
            run = run_pgwarden(
                "scan",
                "--json",
                "out.json",
                "-q",
                cwd=tmp_path,
                env={"PGWARDEN_DEMO_DSN": seed_server.server.dsn("least_auditor", "least-pw-1")},
            )
        assert run.returncode == 1, run.stderr
        results = json.loads((tmp_path / "out.json").read_text())
        assert results["servers"][0]["connected_as"] == "least_auditor"
        assert results["servers"][0]["errors"] == []
        assert results["scan"]["complete"] is True
        assert not [f for f in results["findings"] if f["status"] == "error"]
        assert any(f["rule_id"] == "PGW-ADM-001" for f in results["findings"])
    finally:
        with psycopg.connect(seed_server.server.dsn(), autocommit=True) as conn:
            conn.execute("DROP OWNED BY least_auditor")
            conn.execute("DROP ROLE least_auditor")
