"""The throwaway server: the binaries it runs, and it goes away however its owner ends."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from pgwarden.cli.localpg import BINDIR_VARIABLE, LocalServer, find_server_binaries
from pgwarden.model.errors import EnvironmentNotReady

CHILD = """
import sys, time
from pgwarden.cli.localpg import throwaway_server
with throwaway_server() as server:
    print(server.data_dir, flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_stops_the_server_and_removes_its_files() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line, child.stderr.read() if child.stderr else "no output"
        data_dir = Path(line)
        postmaster = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        assert _alive(postmaster)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    deadline = time.monotonic() + 30
    while _alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(postmaster)
    assert not data_dir.exists()


@pytest.mark.versioned
def test_the_session_server_runs_the_chosen_binaries(pg_server: LocalServer) -> None:
    """The server under test is the version find_server_binaries picks (PGWARDEN_PG_BIN
    when set): a version matrix tests the versions it names."""
    if pg_server.bindir is None:
        pytest.skip(f"the session's server is not from local binaries ({pg_server.how})")
    assert pg_server.bindir == find_server_binaries()
    reported = subprocess.run(
        [str(pg_server.bindir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"\(PostgreSQL\) (\d+\.\d+)", reported)
    assert match, reported
    with psycopg.connect(pg_server.dsn()) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None and str(row[0]).split()[0] == match.group(1)


def test_chosen_binaries_missing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "initdb").write_text("")
    monkeypatch.setenv(BINDIR_VARIABLE, str(tmp_path))
    with pytest.raises(EnvironmentNotReady) as raised:
        find_server_binaries()
    assert str(raised.value) == (
        f"{BINDIR_VARIABLE}={tmp_path} has no pg_ctl, postgres "
        "(scripts/fetch_postgres.py MAJOR fetches a version into .pg/MAJOR/bin)"
    )


def test_chosen_binaries_come_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for tool in ("initdb", "pg_ctl", "postgres"):
        (tmp_path / tool).write_text("")
    monkeypatch.setenv(BINDIR_VARIABLE, str(tmp_path))
    assert find_server_binaries() == tmp_path
