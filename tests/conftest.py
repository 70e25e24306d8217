"""Shared fixtures: a real PostgreSQL server and scenario builders."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgwarden.cli.demo import SeedServer, build_seed_server
from pgwarden.cli.localpg import PG_BIN_VARIABLE, LocalServer, find_server_binaries
from pgwarden.model.errors import EnvironmentNotReady
from tests.browser import ARTIFACTS, CHROMIUM_ARGS, chromium_path
from tests.pgserver import reset_server, running_server


def pytest_configure() -> None:
    """A relative PGWARDEN_PG_BIN made absolute: tests run pgwarden in other folders."""
    chosen = os.environ.get(PG_BIN_VARIABLE)
    if chosen:
        os.environ[PG_BIN_VARIABLE] = str(Path(chosen).absolute())


def pytest_report_header() -> str:
    """Which PostgreSQL the session's servers run (a version matrix runs several)."""
    if os.environ.get("PGWARDEN_TEST_DSN"):
        return "postgresql: the server of PGWARDEN_TEST_DSN"
    chosen = f" ({PG_BIN_VARIABLE})" if os.environ.get(PG_BIN_VARIABLE) else ""
    try:
        bindir = find_server_binaries()
    except EnvironmentNotReady as exc:
        return f"postgresql: {exc}"
    if bindir is None:
        return "postgresql: no local binaries (Docker, if available)"
    version = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"postgresql: {version or 'unknown version'} from {bindir}{chosen}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalServer]:
    """One real PostgreSQL server for the whole test session."""
    with running_server() as server:
        yield server


@pytest.fixture
def clean_server(pg_server: LocalServer) -> LocalServer:
    """The server emptied of every scenario's databases and roles."""
    reset_server(pg_server)
    return pg_server


@pytest.fixture(scope="module")
def seed_server(pg_server: LocalServer) -> SeedServer:
    """A server shaped like the seed's shared ctxeco-db, with its mistakes."""
    reset_server(pg_server)
    return build_seed_server(pg_server)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless system Chromium driven by Playwright, one for the whole session."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def artifacts() -> Path:
    """Where browser tests leave screenshots and PDFs (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
