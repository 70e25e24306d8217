"""``python -m benchmarks --network RTT_MS``: the shapes' servers reached as across a network.

Over TLS with the certificate checked, and through a forwarder that adds the round-trip
time asked for, the same way for the floors and the scan; the bytes arrive whole and in
order, and pgwarden reads a server that way as it does on the loopback. (A bad
``--network`` value is refused with the other sizes' in ``test_benchmark_scale.py``.)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trustme

from benchmarks.network import _forwarder, network_path
from pgwarden.cli.localpg import LocalServer, throwaway_server


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP server on the loopback that sends back what it reads."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()


def test_the_forwarder_adds_the_round_trip_and_keeps_every_byte_in_order(
    echo_port: int,
) -> None:
    payload = bytes(range(256)) * 2_000  # 512 KB: many chunks each way
    with (
        _forwarder("127.0.0.1", echo_port, 0.010) as port,
        socket.create_connection(("127.0.0.1", port)) as conn,
    ):
        started = time.monotonic()
        conn.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        round_trip = time.monotonic() - started
        conn.sendall(payload)
        received = bytearray()
        while len(received) < len(payload):
            received += conn.recv(65536)
    assert round_trip >= 0.020
    assert bytes(received) == payload


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A server of its own: the path turns its TLS on."""
    with throwaway_server() as local:
        if local.data_dir is None:
            pytest.skip("needs a server from local binaries (its TLS is set up)")
        yield local


def test_the_path_logs_in_over_verified_tls_and_delays_each_round_trip(
    server: LocalServer, tmp_path: Path
) -> None:
    with network_path(server, 20, tmp_path) as path:
        dsn = path.dsn(server.dsn())
        assert 20 <= path.round_trip_ms(server.dsn()) < 40
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.pgconn.ssl_in_use
            started = time.monotonic()
            conn.execute("SELECT 1")
            assert time.monotonic() - started >= 0.020
        # The certificate is checked: another CA's is refused.
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
            psycopg.connect(dsn.replace(str(path.ca_file), str(other)))


def test_pgwarden_and_the_floor_read_the_server_through_the_path(
    server: LocalServer, tmp_path: Path
) -> None:
    config = tmp_path / "pgwarden.toml"
    config.write_text('[[server]]\nname = "net"\ndsn = "env:NET_DSN"\n', encoding="utf-8")
    output = ("--output", str(tmp_path / "snap.json"))
    with network_path(server, 2, tmp_path) as path:
        env = {**os.environ, "NET_DSN": path.dsn(server.dsn())}
        floor = subprocess.run(
            [sys.executable, "-m", "benchmarks.floor", "--dsn-env", "NET_DSN", "--jobs", "2"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        collected = subprocess.run(
            [sys.executable, "-m", "pgwarden", "collect", "--config", str(config), *output],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    assert floor.returncode == 0, floor.stderr
    assert json.loads(floor.stdout)["connections"] >= 1
    assert collected.returncode == 0, collected.stderr
    snapshot = json.loads((tmp_path / "snap.json").read_text(encoding="utf-8"))
    assert snapshot["servers"][0]["postgres"]["databases"]


def test_no_added_delay_is_tls_straight_to_the_server(server: LocalServer, tmp_path: Path) -> None:
    with network_path(server, 0, tmp_path) as path:
        assert path.port == server.port
        with psycopg.connect(path.dsn(server.dsn())) as conn:
            assert conn.pgconn.ssl_in_use
