"""A throwaway PostgreSQL server for ``pgwarden demo`` and the tests.

Started from the locally installed server binaries (as the ``postgres`` OS user when
run as root, since PostgreSQL refuses to run as root), or through testcontainers when
Docker is available and no binaries are. The bootstrap superuser gets a random
password and SCRAM authentication, so logins behave as on a real server.
"""

from __future__ import annotations

import contextlib
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
# A PostgreSQL bin folder to use instead of the installed one (e.g. another major version).
BINDIR_VARIABLE = "PGWARDEN_PG_BIN"
SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
_VERSION_DIR = re.compile(r"^\d+(\.\d+)?$")


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


def find_server_binaries() -> Path | None:
    """The PostgreSQL ``bin`` folder to run: ``PGWARDEN_PG_BIN`` when set, else the
    newest installed one that has initdb, pg_ctl and postgres."""
    chosen = os.environ.get(BINDIR_VARIABLE)
    if chosen:
        # Chosen on purpose (a version matrix): never silently replaced by another.
        chosen_dir = Path(chosen).absolute()
        missing = [tool for tool in SERVER_TOOLS if not (chosen_dir / tool).is_file()]
        if missing:
            raise EnvironmentNotReady(
                f"{BINDIR_VARIABLE}={chosen} has no {', '.join(missing)} "
                "(scripts/fetch_postgres.py MAJOR fetches a version into .pg/MAJOR/bin)"
            )
        return chosen_dir
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted(
            (p for p in root.iterdir() if _VERSION_DIR.match(p.name)),
            key=lambda p: tuple(int(x) for x in p.name.split(".")),
            reverse=True,
        )
        candidates.extend(v / "bin" for v in versions)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            candidates.append(Path(bindir))
    for candidate in candidates:
        if all((candidate / tool).exists() for tool in SERVER_TOOLS):
            return candidate
    return None


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
def throwaway_server(settings: dict[str, str] | None = None) -> Iterator[LocalServer]:
    """A throwaway server from local binaries, else from Docker, else a clear error.

    The server is stopped and its files removed however the block ends, a SIGTERM
    included (a CI job's timeout, ``kill``): the default action would end the process
    on the spot and leave a postgres running on a temporary directory.
    """
    bindir = find_server_binaries()
    if bindir is not None:
        with _terminate_in_order(), binaries_server(bindir, settings) as server:
            yield server
        return
    if docker_available():
        with _terminate_in_order(), container_server() as server:
            yield server
        return
    raise EnvironmentNotReady(
        "no PostgreSQL server binaries (initdb, pg_ctl) and no Docker engine found: "
        "install them, e.g. 'apt-get install postgresql' on Debian/Ubuntu"
    )


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
