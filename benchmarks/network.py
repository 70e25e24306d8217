"""A server across a network (``python -m benchmarks --network RTT_MS``): TLS, and delay.

The benchmark's default path to its throwaway server is the loopback without TLS: the
cheapest a login and a round trip can be, and so the path on which the scan's catalog
reads weigh most against the floor's bare logins. A real server, an Azure flexible
server first of all, is reached over TLS across a network. ``NetworkPath`` puts that
path between every measured process and the server: the server gets a certificate from
a throwaway CA and turns TLS on; the floor, the catalog floor and the scan connect with
``sslmode=verify-full`` through a local forwarder that holds each chunk of bytes for
half the round-trip time in each direction. All three pay the same handshakes and the
same delay per round trip: what it changes is how much of the time the per-database
round trips take, against what the scan does with the answers.

The forwarder runs on a thread of the benchmark's own process (which only waits on the
process it measures) and uses some CPU of the same machine, as the network stack of a
real client would: it is counted in no measured process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import socket
import socketserver
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgwarden.cli.localpg import LocalServer
from pgwarden.model.errors import EnvironmentNotReady

CHUNK = 64 * 1024
MAX_RTT_MS = 200.0
LOOPBACK = "loopback, no TLS"


def path_label(rtt_ms: float) -> str:
    """How a run with ``--network rtt_ms`` reached its servers, as the report says it."""
    if rtt_ms == 0:
        return "TLS (verify-full) on the loopback, no delay added"
    return f"TLS (verify-full), {rtt_ms:g} ms added to each round trip by a forwarder"


@dataclasses.dataclass(frozen=True)
class NetworkPath:
    """How the measured processes reach the server: TLS and a forwarder's port."""

    ca_file: Path
    port: int

    def dsn(self, direct: str) -> str:
        """``direct`` (a DSN to the server on the loopback) by this path."""
        params = conninfo_to_dict(direct)
        params.update(port=str(self.port), sslmode="verify-full", sslrootcert=str(self.ca_file))
        return make_conninfo("", **params)

    def round_trip_ms(self, direct: str) -> float:
        """The median of 21 ``SELECT 1`` round trips on one session by this path to
        ``direct``'s server, in ms: what the forwarder adds in fact, its own latency
        included."""
        with psycopg.connect(self.dsn(direct), autocommit=True) as conn:
            times = []
            for _ in range(21):
                started = time.perf_counter()
                conn.execute("SELECT 1").fetchone()
                times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000


@contextlib.contextmanager
def network_path(server: LocalServer, rtt_ms: float, workdir: Path) -> Iterator[NetworkPath]:
    """TLS on ``server`` and a forwarder to it delaying each round trip by ``rtt_ms``."""
    ca_file = workdir / "ca.pem"
    enable_tls(server, ca_file)
    if rtt_ms == 0:  # no delay: TLS straight to the server
        yield NetworkPath(ca_file, server.port)
        return
    with _forwarder(server.host, server.port, rtt_ms / 2000) as port:
        yield NetworkPath(ca_file, port)


def enable_tls(server: LocalServer, ca_path: Path) -> None:
    """A certificate for 127.0.0.1 from a throwaway CA (written to ``ca_path``) in the
    server's data directory, and ``ssl = on``."""
    data = server.data_dir
    if data is None:
        raise EnvironmentNotReady(
            "--network needs PostgreSQL's server binaries on this machine (it sets up the "
            "server's TLS in its data directory), not a Docker container"
        )
    import trustme  # a test dependency, as the benchmark's others: needed only here

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    owner = data.stat()
    for name, blob in (
        ("server.crt", cert.cert_chain_pems[0]),
        ("server.key", cert.private_key_pem),
    ):
        path = data / name
        blob.write_to_path(str(path))
        os.chown(path, owner.st_uid, owner.st_gid)
        path.chmod(0o600)
    ca_path.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(ca_path))
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET ssl = on")
        conn.execute("SELECT pg_reload_conf()")
    # The reload is asynchronous: wait until a TLS login succeeds.
    check = make_conninfo(server.dsn(), sslmode="verify-full", sslrootcert=str(ca_path))
    deadline = time.monotonic() + 10
    while True:
        try:
            with psycopg.connect(check) as conn:
                if conn.pgconn.ssl_in_use:
                    return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


@contextlib.contextmanager
def _forwarder(host: str, port: int, one_way: float) -> Iterator[int]:
    """A TCP forwarder to ``host:port`` on the loopback, holding every chunk ``one_way``
    seconds in each direction (order kept); yields the port it listens on.

    Threads, not an event loop: a thread sleeps to within a tenth of a millisecond,
    where an event loop's wait is rounded up to the next millisecond.
    """

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            client: socket.socket = self.request
            try:
                upstream = socket.create_connection((host, port))
            except OSError:
                return
            with upstream:
                # Each chunk goes on as it came: no small write waits for an ACK (the
                # client and the server set this on their own sockets too).
                for end in (client, upstream):
                    end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                back = threading.Thread(target=_pump, args=(upstream, client, one_way))
                back.start()
                _pump(client, upstream, one_way)
                back.join()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 1024

    with Server(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, name="benchmark-forwarder")
        thread.daemon = True
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            thread.join(timeout=10)


def _pump(source: socket.socket, sink: socket.socket, one_way: float) -> None:
    """Copy ``source`` to ``sink``, each chunk ``one_way`` seconds after it was read;
    at the end of ``source``, end ``sink``'s sending side."""
    held: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def send() -> None:
        while True:
            due, data = held.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                return

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    while True:
        try:
            data = source.recv(CHUNK)
        except OSError:
            data = b""
        held.put((time.monotonic() + one_way, data))
        if not data:
            break
    sender.join()
