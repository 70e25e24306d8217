"""Faults: one clear line, affected rules ``error``, the rest still evaluated.

Each test breaks a real server in one way while pgwarden scans it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgwarden.cli.demo import (
    AUDITOR,
    DEMO_CONFIG,
    DEMO_DSN_VARIABLE,
    SeedServer,
    build_seed_server,
)
from pgwarden.cli.localpg import LocalServer, pg_ctl, throwaway_server
from pgwarden.collect.postgres.collector import PostgresCollector
from pgwarden.collect.postgres.session import SessionSettings


def _pgwarden(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pgwarden", *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell runs a background job with SIGINT ignored, and an ignored signal stays
        # ignored across exec: a test run that way would send Ctrl-C to a pgwarden that
        # cannot receive it. pgwarden is started as from a terminal.
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _config(tmp_path: Path, samples: int = 1, window: float = 0.0) -> Path:
    text = DEMO_CONFIG.replace(
        "[policy]\n",
        f"[policy]\nsession_samples = {samples}\nsession_window_seconds = {window}\n",
        1,
    )
    path = tmp_path / "pgwarden.toml"
    path.write_text(text)
    return path


def _by_rule(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for finding in results["findings"]:
        found.setdefault(finding["rule_id"], []).append(finding)
    return found


def test_one_database_refusing_connections(seed_server: SeedServer, tmp_path: Path) -> None:
    with psycopg.connect(seed_server.server.dsn(), autocommit=True) as conn:
        conn.execute("ALTER DATABASE zep CONNECTION LIMIT 0")
    try:
        _config(tmp_path)
        run = _pgwarden(
            ["scan", "--json", "out.json", "-q"],
            tmp_path,
            {DEMO_DSN_VARIABLE: seed_server.dsn(AUDITOR)},
        )
        _out, err = run.communicate(timeout=120)
    finally:
        with psycopg.connect(seed_server.server.dsn(), autocommit=True) as conn:
            conn.execute("ALTER DATABASE zep CONNECTION LIMIT -1")
    assert run.returncode == 1, err  # other violations still fail the gate
    results = json.loads((tmp_path / "out.json").read_text())
    assert results["scan"]["complete"] is False
    rules = _by_rule(results)
    blind = [f for f in rules["PGW-ISO-003"] if f["status"] == "error"]
    assert [f["resource"] for f in blind] == ["database/zep"]
    assert "too many connections" in blind[0]["message"]
    # zep's database-level facts still come from the server-wide catalogs …
    assert any(f["resource"] == "database/zep" for f in rules["PGW-ISO-001"])
    # … and the other databases were read in full.
    assert any(f["resource"] == "schema/temporal.public" for f in rules["PGW-ISO-006"])


def test_a_catalog_lock_hits_the_lock_timeout(seed_server: SeedServer) -> None:
    holder = psycopg.connect(seed_server.server.dsn(dbname="temporal"))
    try:
        holder.execute("LOCK TABLE pg_catalog.pg_default_acl IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        pg = PostgresCollector(
            seed_server.dsn(AUDITOR),
            session_samples=1,
            session_window_seconds=0,
            settings=SessionSettings(lock_timeout_ms=300, statement_timeout_ms=5_000),
        ).collect()
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    # The lock costs the catalog it is on, not the database: the round trip is refused,
    # each statement is sent again, and only the default privileges stay unread (the
    # lock timeout met twice).
    temporal = pg.detail("temporal")
    assert temporal is not None and temporal.collected and temporal.schemas
    assert temporal.unread == {"default_privileges": "canceling statement due to lock timeout"}
    assert not temporal.default_privileges
    assert pg.gap("database:temporal") is None
    assert all(d.collected and not d.unread for d in pg.database_details if d.name != "temporal")
    assert elapsed < 5


def test_auditor_without_pg_monitor_fails_closed(seed_server: SeedServer, tmp_path: Path) -> None:
    server = seed_server.server
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute("CREATE ROLE bare_auditor LOGIN PASSWORD 'bare-pw'")
        for db in ("ctxEco", "secairadar"):
            conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO bare_auditor')
    try:
        from pgwarden.cli.demo import app_sessions

        _config(tmp_path)
        with app_sessions(seed_server):
            run = _pgwarden(
                ["scan", "--json", "out.json", "-q"],
                tmp_path,
                {DEMO_DSN_VARIABLE: server.dsn("bare_auditor", "bare-pw")},
            )
            _out, err = run.communicate(timeout=120)
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            for db in ("ctxEco", "secairadar"):
                conn.execute(f'REVOKE CONNECT ON DATABASE "{db}" FROM bare_auditor')
            conn.execute("DROP ROLE bare_auditor")
    assert run.returncode == 1, err
    results = json.loads((tmp_path / "out.json").read_text())
    rules = _by_rule(results)
    (admin,) = [f for f in rules["PGW-ADM-001"] if f["status"] == "fail"]
    assert admin["evidence"]["client_addr"].startswith("not visible")
    assert results["scan"]["complete"] is False


@pytest.fixture
def own_server() -> Iterator[LocalServer]:
    """A server this test may stop."""
    with throwaway_server() as server:
        yield server


def test_server_stops_in_the_middle_of_a_scan(own_server: LocalServer, tmp_path: Path) -> None:
    seed = build_seed_server(own_server)
    _config(tmp_path, samples=8, window=6.0)
    run = _pgwarden(
        ["scan", "--json", "out.json", "-q"], tmp_path, {DEMO_DSN_VARIABLE: seed.dsn(AUDITOR)}
    )
    time.sleep(2.5)  # server-wide catalogs and databases are read; sampling goes on
    pg_ctl(own_server, "-m", "immediate", "stop")
    _out, err = run.communicate(timeout=120)
    assert "Traceback" not in err
    assert run.returncode in (1, 3), err
    results = json.loads((tmp_path / "out.json").read_text())
    assert results["scan"]["complete"] is False
    errors = " ".join(results["servers"][0]["errors"])
    assert "sessions" in errors


def test_ctrl_c_leaves_no_file_and_no_session(seed_server: SeedServer, tmp_path: Path) -> None:
    _config(tmp_path, samples=20, window=20.0)
    run = _pgwarden(
        ["scan", "--json", "out.json", "-q"],
        tmp_path,
        {DEMO_DSN_VARIABLE: seed_server.dsn(AUDITOR)},
    )
    time.sleep(3)
    run.send_signal(signal.SIGINT)
    _out, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()
    assert not list(tmp_path.glob(".*tmp"))
    deadline = time.monotonic() + 10
    with psycopg.connect(seed_server.server.dsn(), autocommit=True) as conn:
        while True:
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgwarden'"
            ).fetchone()
            if left == (0,) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert left == (0,)
