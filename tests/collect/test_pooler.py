"""A connection pooler in front of the server: the refusal says what to do.

PgBouncer (Azure's built-in one listens on 6432) refuses the startup ``options`` that
make pgwarden's sessions read-only. A few lines of its wire protocol stand in for it:
libpq connects over TCP and gets PgBouncer's FATAL error, as from the real one.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from pgwarden.collect.postgres.collector import PostgresCollector
from pgwarden.model.errors import CollectorError

SSL_REQUEST, GSS_REQUEST = 80877103, 80877104


def _error(message: str) -> bytes:
    fields = b"".join(
        kind + text.encode() + b"\0"
        for kind, text in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", "08P01"), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def _serve(listener: socket.socket) -> None:
    while True:
        try:
            conn, _addr = listener.accept()
        except OSError:
            return
        with conn:
            while True:
                header = conn.recv(8)
                if len(header) < 8:
                    break
                length, code = struct.unpack("!II", header)
                if code in (SSL_REQUEST, GSS_REQUEST):
                    conn.sendall(b"N")  # no encryption: the startup packet comes next
                    continue
                conn.recv(length - 8)
                conn.sendall(_error("unsupported startup parameter: options"))
                break


@pytest.fixture
def pooler() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    thread = threading.Thread(target=_serve, args=(listener,), daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_pooler_that_refuses_the_session_settings_is_named(pooler: int) -> None:
    dsn = f"host=127.0.0.1 port={pooler} user=auditor password=x dbname=postgres"
    with pytest.raises(CollectorError) as raised:
        PostgresCollector(dsn, session_samples=0).collect()
    message = str(raised.value)
    assert "unsupported startup parameter: options" in message
    assert "connect to the server itself, on Azure port 5432" in message
    assert "\n" not in message
