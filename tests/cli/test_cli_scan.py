"""``pgwarden scan`` end to end against a real server shaped like the seed's."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from pgwarden.cli.demo import (
    ADMIN,
    AUDITOR,
    DEMO_CONFIG,
    DEMO_DSN_VARIABLE,
    SeedServer,
    app_sessions,
)
from pgwarden.model.results import shipped_results_schema
from tests.cli import run_pgwarden

FAST = DEMO_CONFIG.replace(
    "[policy]\n", "[policy]\nsession_samples = 2\nsession_window_seconds = 0.2\n", 1
)


def pgwarden(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run_pgwarden(*args, env=env, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def live(
    seed_server: SeedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, str]]]:
    """The seed server with an app logged in as the admin, and a config for it."""
    work = tmp_path_factory.mktemp("scan")
    (work / "pgwarden.toml").write_text(FAST)
    env = {DEMO_DSN_VARIABLE: seed_server.dsn(AUDITOR)}
    with app_sessions(seed_server):
        yield work, env


def _findings(path: Path, rule: str) -> set[tuple[str, str | None]]:
    results = json.loads(path.read_text())
    return {
        (f["resource"], f.get("principal")) for f in results["findings"] if f["rule_id"] == rule
    }


def test_scan_reports_public_connect_and_admin_app_session(
    live: tuple[Path, dict[str, str]],
) -> None:
    work, env = live
    run = pgwarden("scan", "--json", "results.json", "-q", env=env, cwd=work)
    assert run.returncode == 1, run.stderr
    results = json.loads((work / "results.json").read_text())
    jsonschema.Draft202012Validator(shipped_results_schema()).validate(results)
    assert _findings(work / "results.json", "PGW-ISO-001") == {
        ("database/zep", "PUBLIC"),
        ("database/temporal", "PUBLIC"),
        ("database/temporal_visibility", "PUBLIC"),
    }
    admin = [f for f in results["findings"] if f["rule_id"] == "PGW-ADM-001"]
    assert len(admin) == 1
    assert admin[0]["resource"].startswith("session/")
    assert admin[0]["principal"] == "role/ctxecoadmin"
    assert admin[0]["evidence"]["application_name"] == "ctxeco-api"
    assert admin[0]["evidence"]["database"] == "ctxEco"
    assert admin[0]["app"] == "ctxeco"
    assert results["scan"]["config"] == "pgwarden.toml"
    assert results["servers"][0]["connected_as"] == AUDITOR
    assert results["schema_version"] == "1.1"


def test_snapshot_scan_agrees_with_live_scan(live: tuple[Path, dict[str, str]]) -> None:
    work, env = live
    collected = pgwarden("collect", "-o", "snap.json", "-q", env=env, cwd=work)
    assert collected.returncode == 0, collected.stderr
    snapshot_text = (work / "snap.json").read_text()
    assert env[DEMO_DSN_VARIABLE].split("password=")[1].split()[0] not in snapshot_text
    offline = pgwarden("scan", "--snapshot", "snap.json", "--json", "offline.json", "-q", cwd=work)
    live_run = pgwarden("scan", "--json", "live.json", "-q", env=env, cwd=work)
    assert offline.returncode == live_run.returncode == 1
    fingerprints = [
        {f["fingerprint"] for f in json.loads((work / name).read_text())["findings"]}
        for name in ("offline.json", "live.json")
    ]
    assert fingerprints[0] == fingerprints[1]


def test_outputs_keep_symlinks_and_write_into_fifos(live: tuple[Path, dict[str, str]]) -> None:
    """A link to an evidence store stays a link; a FIFO (or /dev/null) is never replaced."""
    work, env = live
    assert pgwarden("scan", "--json", "results.json", "-q", env=env, cwd=work).returncode == 1
    (work / "store").mkdir(exist_ok=True)
    (work / "linked.sarif").symlink_to(work / "store" / "kept.sarif")
    fifo = work / "pipe.json"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    run = pgwarden(
        "report", "results.json", "--sarif", "linked.sarif", "--json", "pipe.json", cwd=work
    )
    reader.join(timeout=60)
    assert run.returncode == 0, run.stderr
    assert (work / "linked.sarif").is_symlink()
    assert json.loads((work / "store" / "kept.sarif").read_text())["version"] == "2.1.0"
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert json.loads(received[0])["schema_version"] == "1.1"


@pytest.mark.parametrize(
    ("who", "why"),
    [(AUDITOR, None), (ADMIN, "the server's admin role"), ("postgres", "a superuser")],
)
def test_a_scan_read_as_more_than_an_auditor_is_told(
    seed_server: SeedServer, tmp_path: Path, who: str, why: str | None
) -> None:
    (tmp_path / "pgwarden.toml").write_text(FAST)
    dsn = seed_server.server.dsn() if who == "postgres" else seed_server.dsn(who)
    run = pgwarden(
        "scan", "--rules", "PGW-TLS-*", "--json", "r.json", "-q",
        env={DEMO_DSN_VARIABLE: dsn}, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stderr
    warnings = [line for line in run.stderr.splitlines() if "least-privilege auditor" in line]
    if why is None:
        assert warnings == []
    else:
        assert warnings == [
            f"pgwarden: warning: ctxeco-db: read as {who!r}, {why}: an audit needs only a "
            "least-privilege auditor (pg_monitor and CONNECT on each database; 'pgwarden "
            "init' prints the SQL), and these credentials could change what they audit"
        ]


def test_summary_table_without_output_flags(live: tuple[Path, dict[str, str]]) -> None:
    work, env = live
    run = pgwarden("scan", env=env, cwd=work)
    assert run.returncode == 1
    assert "PGW-ISO-001" in run.stdout and "database/zep" in run.stdout


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("[policy\n", "pgwarden.toml: not valid TOML"),
        ("[policy]\nfail_on = 'high'\nfial = 1\n", "pgwarden.toml: policy.fial: unknown key"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, config: str, expected: str) -> None:
    (tmp_path / "pgwarden.toml").write_text(config)
    run = pgwarden("scan", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert expected in run.stderr
    assert "Traceback" not in run.stderr


def test_unreachable_server_and_wrong_password(seed_server: SeedServer, tmp_path: Path) -> None:
    server = seed_server.server
    wrong = server.dsn(AUDITOR, "wrong-password-canary")
    run = pgwarden("scan", "--dsn", wrong, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert "password authentication failed" in run.stderr
    assert "wrong-password-canary" not in run.stderr + run.stdout
    closed = wrong.replace(f"port={server.port}", "port=1")
    run = pgwarden("scan", "--dsn", closed, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert "cannot connect to" in run.stderr and "Connection refused" in run.stderr


def test_libpq_environment_when_no_config_and_no_dsn(
    seed_server: SeedServer, tmp_path: Path
) -> None:
    server = seed_server.server
    env = {
        "PGHOST": server.host,
        "PGPORT": str(server.port),
        "PGUSER": AUDITOR,
        "PGPASSWORD": seed_server.passwords[AUDITOR],
        "PGDATABASE": "postgres",
    }
    run = pgwarden("scan", "--json", "out.json", "-q", env=env, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    results = json.loads((tmp_path / "out.json").read_text())
    assert results["servers"][0]["name"] == "127.0.0.1"
    assert results["servers"][0]["connected_as"] == AUDITOR
    unmapped = {f["resource"] for f in results["findings"] if f["rule_id"] == "PGW-MAP-001"}
    assert "database/zep" in unmapped


def test_no_config_no_dsn_no_environment(tmp_path: Path) -> None:
    env = {name: "" for name in ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE")}
    run = pgwarden("scan", env=env, cwd=tmp_path)
    assert run.returncode == 2
    assert "no [[server]] is configured" in run.stderr
