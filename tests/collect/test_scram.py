"""SCRAM keys derived once per scan, against real servers (plain TCP and TLS)."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import trustme
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgwarden.cli.localpg import LocalServer, throwaway_server
from pgwarden.collect.postgres import scram
from pgwarden.collect.postgres.collector import PostgresCollector
from pgwarden.model.snapshot import PostgresSnapshot

pytestmark = pytest.mark.versioned

AUDITOR = "scram_auditor"
CLEARTEXT = "cleartext_auditor"
PASSWORD_DB = "password_login_db"


@dataclass(frozen=True)
class ScramServer:
    server: LocalServer
    data_dir: Path
    ca: trustme.CA
    passwords: dict[str, str]

    def dsn(self, role: str = AUDITOR, **extra: str) -> str:
        return make_conninfo(self.server.dsn(role, self.passwords[role]), **extra)

    def tls_dsn(self, ca_file: Path, role: str = AUDITOR, sslmode: str = "verify-full") -> str:
        return self.dsn(role, host="localhost", sslmode=sslmode, sslrootcert=str(ca_file))

    def log(self) -> str:
        return (self.data_dir.parent / "server.log").read_text(errors="replace")

    def verifier(self, role: str) -> tuple[str, str]:
        """StoredKey and ServerKey from the role's SCRAM verifier in pg_authid."""
        with psycopg.connect(self.server.dsn()) as conn:
            row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
            verifier = str(row.fetchone()[0])  # type: ignore[index]
        match = re.fullmatch(r"SCRAM-SHA-256\$\d+:[^$]+\$([^:]+):(.+)", verifier)
        assert match, "not a SCRAM verifier"
        return match.group(1), match.group(2)


@pytest.fixture(scope="module")
def scram_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScramServer]:
    """A server of its own (its pg_hba.conf and TLS are changed): SCRAM for everyone,
    cleartext passwords for one role and, for the auditor, in one database; TLS from a
    test CA; every connection logged."""
    with throwaway_server({"log_connections": "on"}) as server:
        if server.data_dir is None:
            pytest.skip("needs a server from local binaries (its pg_hba.conf is edited)")
        data = server.data_dir
        owner = data.stat()
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        files = {"server.crt": cert.cert_chain_pems[0], "server.key": cert.private_key_pem}
        for name, blob in files.items():
            path = data / name
            blob.write_to_path(str(path))
            os.chown(path, owner.st_uid, owner.st_gid)
            path.chmod(0o600)
        hba = data / "pg_hba.conf"
        rules = (
            f"host all {CLEARTEXT} 127.0.0.1/32 password\n"
            f"host {PASSWORD_DB} {AUDITOR} 127.0.0.1/32 password\n"
        )
        hba.write_text(rules + hba.read_text())
        passwords = {role: secrets.token_urlsafe(18) for role in (AUDITOR, CLEARTEXT)}
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            for role, password in passwords.items():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PASSWORD_DB)))
            conn.execute("ALTER SYSTEM SET ssl = on")
            conn.execute("SELECT pg_reload_conf()")
        yield ScramServer(server, data, ca, passwords)


@pytest.fixture
def ca_file(scram_server: ScramServer, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    scram_server.ca.cert_pem.write_to_path(str(path))
    return path


def keys_of(dsn: str) -> scram.ScramKeys:
    with psycopg.connect(dsn) as conn:
        return scram.keys_for(scram.Login.of(conn), 5.0)


def assert_keys_match(scram_server: ScramServer, keys: scram.ScramKeys) -> None:
    stored, server_key = scram_server.verifier(AUDITOR)
    client_key = base64.b64decode(keys.client_key)
    assert base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored
    assert keys.server_key == server_key


def without_password(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    params.pop("password")
    return make_conninfo("", **params)


TRANSPORTS = ["tcp", "unix", "tls-verify-full", "tls-verify-ca", "tls-require", "tls-binding"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_keys_are_the_verifiers_and_log_in_without_the_password(
    scram_server: ScramServer, ca_file: Path, transport: str
) -> None:
    dsn = {
        "tcp": scram_server.dsn(),
        "unix": scram_server.dsn(host=str(scram_server.data_dir.parent)),
        "tls-verify-full": scram_server.tls_dsn(ca_file),
        "tls-verify-ca": scram_server.tls_dsn(ca_file, sslmode="verify-ca"),
        "tls-require": scram_server.tls_dsn(Path("/nonexistent"), sslmode="require"),
        "tls-binding": make_conninfo(scram_server.tls_dsn(ca_file), channel_binding="require"),
    }[transport]
    keys = keys_of(dsn)
    assert_keys_match(scram_server, keys)
    assert keys.client_key not in repr(keys) and keys.server_key not in repr(keys)
    with psycopg.connect(make_conninfo(without_password(dsn), **keys.parameters())) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (AUDITOR,)
        assert conn.pgconn.ssl_in_use is transport.startswith("tls")
        if transport == "unix":
            assert conn.info.host.startswith("/")


def test_the_abandoned_login_leaves_no_error_in_the_server_log(
    scram_server: ScramServer, ca_file: Path
) -> None:
    before = len(scram_server.log())
    for dsn in (scram_server.dsn(), scram_server.tls_dsn(ca_file)):
        keys_of(dsn)
    added = scram_server.log()[before:]
    # Each keys_of: the session's login (authorized) and the abandoned one (received).
    assert added.count("connection received") == 4
    assert added.count("connection authorized") == 2
    trouble = re.compile(r"FATAL|ERROR|SSL error|could not|unexpected")
    problems = [line for line in added.splitlines() if trouble.search(line)]
    assert problems == []


def test_another_authentication_method_means_no_keys(scram_server: ScramServer) -> None:
    with (
        psycopg.connect(scram_server.dsn(CLEARTEXT)) as conn,
        pytest.raises(scram.Unavailable, match="authentication method 3"),
    ):
        scram.keys_for(scram.Login.of(conn), 5.0)


def test_a_password_sasl_prep_would_change_means_no_keys() -> None:
    with pytest.raises(scram.Unavailable, match="SASLprep"):
        scram.derive_keys("pass\u00a0word", b"salt", 4096)


def collect(dsn: str, key_reuse: scram.ScramKeyReuse | None) -> PostgresSnapshot:
    return PostgresCollector(
        dsn, session_samples=1, session_window_seconds=0, scram_key_reuse=key_reuse
    ).collect()


def test_the_collector_logs_in_with_keys_and_falls_back_per_database(
    scram_server: ScramServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Every database is read; the one whose pg_hba.conf line wants a cleartext
    password is read through the password, the others through the keys."""
    caplog.set_level(logging.DEBUG, logger="pgwarden.collect.postgres.scram")
    before = len(scram_server.log())
    snapshot = collect(scram_server.dsn(), scram.ScramKeyReuse())
    assert "use SCRAM keys derived once" in caplog.text
    assert snapshot.stats is not None and snapshot.stats.derived_keys
    details = {d.name: d for d in snapshot.database_details}
    assert details[PASSWORD_DB].collected and details[PASSWORD_DB].error is None
    added = scram_server.log()[before:]
    # The key login to PASSWORD_DB is refused by libpq (require_auth) before any
    # password is sent, so the server logs no failed authentication.
    assert "authentication failed" not in added


def test_the_collector_without_keys_when_the_server_wants_cleartext(
    scram_server: ScramServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pgwarden.collect.postgres.scram")
    snapshot = collect(scram_server.dsn(CLEARTEXT), scram.ScramKeyReuse())
    assert "each login derives its own SCRAM keys" in caplog.text
    assert snapshot.stats is not None and not snapshot.stats.derived_keys
    assert snapshot.connected_as == CLEARTEXT


def test_the_collector_without_key_reuse_logs_in_with_the_password_every_time(
    scram_server: ScramServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Switched off, no key is derived: no abandoned login, no login checking keys, and
    the same catalog state read through the password alone."""
    with_keys = collect(scram_server.dsn(), scram.ScramKeyReuse())
    caplog.set_level(logging.DEBUG, logger="pgwarden.collect.postgres.scram")
    before = len(scram_server.log())
    without = collect(scram_server.dsn(), None)
    added = scram_server.log()[before:]
    assert "SCRAM keys" not in caplog.text
    assert with_keys.stats is not None and with_keys.stats.derived_keys
    assert without.stats is not None and not without.stats.derived_keys
    # The main session, the sampler's, one per database: each one a complete login.
    assert without.stats.connections == 2 + len(without.database_details)
    assert added.count("connection received") == without.stats.connections
    assert added.count("connection authorized") == without.stats.connections
    assert with_keys.stats.connections == without.stats.connections + 1
    assert all(d.collected for d in without.database_details)
    catalog = {"stats", "sessions"}  # what differs between any two collections
    assert without.model_dump(exclude=catalog) == with_keys.model_dump(exclude=catalog)


def _serve_once(listener: socket.socket, server_first: Callable[[str], bytes]) -> None:
    """A hostile or odd server: asks for SASL, then answers the client's first SCRAM
    message with ``server_first(client_nonce)``."""
    conn, _ = listener.accept()
    with conn:
        length = struct.unpack("!i", conn.recv(4))[0]
        conn.recv(length - 4)  # the startup packet
        mechanisms = b"SCRAM-SHA-256\0\0"
        conn.sendall(b"R" + struct.pack("!ii", 8 + len(mechanisms), 10) + mechanisms)
        kind_and_length = conn.recv(5)
        body = conn.recv(struct.unpack("!i", kind_and_length[1:])[0] - 4)
        nonce = body.split(b"r=", 1)[1].decode()
        reply = server_first(nonce)
        conn.sendall(b"R" + struct.pack("!ii", 8 + len(reply), 11) + reply)
        conn.recv(1)  # until the client hangs up


@pytest.mark.parametrize(
    ("server_first", "expected"),
    [
        (lambda n: f"r={n}xyz,s=c2FsdA==,i=4096".encode(), (b"salt", 4096)),
        (lambda n: f"r={n}xyz,s=c2FsdA==,i=1000000000".encode(), "out of range"),
        (lambda n: b"r=someone-elses-nonce,s=c2FsdA==,i=4096", "nonce"),
        (lambda n: f"r={n}xyz,i=4096".encode(), "out of range"),
        (lambda n: f"r={n}xyz,s=!!!,i=4096".encode(), "malformed"),
        (lambda n: f"r={n}xyz,s=c2FsdA==,i=many".encode(), "malformed"),
        (lambda n: b"\xff\xfe", "malformed"),
    ],
)
def test_the_first_message_of_an_odd_server(
    server_first: Callable[[str], bytes], expected: tuple[bytes, int] | str
) -> None:
    """Whatever a server sends, the answer is a salt and a sane round count, or
    Unavailable (and the plain logins)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=_serve_once, args=(listener, server_first))
        thread.start()
        port = listener.getsockname()[1]
        login = scram.Login(
            params={"password": "secret"},
            host="127.0.0.1",
            hostaddr="127.0.0.1",
            port=port,
            user="auditor",
            dbname="postgres",
            tls=False,
            password_used=True,
            gss_encrypted=False,
        )
        try:
            if isinstance(expected, tuple):
                assert scram.first_message(login, 5.0) == expected
            else:
                with pytest.raises(scram.Unavailable, match=expected):
                    scram.first_message(login, 5.0)
        finally:
            thread.join(timeout=10)
