"""SCRAM keys derived once per scan, for the logins to every database.

A scan logs in once per database, always as the same role with the same password. On
every SCRAM login libpq derives the salted password again: PBKDF2 with the role's
salt and iteration count (4,096 rounds of HMAC-SHA-256 by default), a few milliseconds
of client CPU each time, the largest single cost of a login on the client. libpq 18
accepts the two keys that derivation yields (``scram_client_key`` and
``scram_server_key``, made for SCRAM pass-through) and then skips it; the login itself
is the same exchange, channel binding and the server's signature check included.

The keys need the role's salt and iteration count, which a server sends only in its
first SCRAM message. After the main session has logged in with the password (so the
password is known to be right), pgwarden opens one more connection to the address that
session reached, with the same transport security, starts a SCRAM login, reads the
server's first message and hangs up before any proof is sent. PostgreSQL does not log a
client that leaves at that point (psql does the same when it prompts for a password),
and nothing derived from the password leaves the process. One login with the keys then
checks them. ``ScramKeyReuse`` does all this on a thread beside the collector's
server-wide reads; a collector given none logs in with the password every time
(``--no-scram-key-reuse``, ``[policy] scram_key_reuse = false``).

Whenever that cannot be done exactly as libpq would, each login derives its own keys,
as before: libpq older than 18, a DSN with several hosts, GSS encryption, TLS options
this module does not mirror (direct negotiation, CRLs, peer checks), an authentication
method other than SCRAM-SHA-256, a password that SASLprep would change, or any error.
The keys are as secret as the password: they live in memory only and are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Mapping
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from pgwarden.collect.endpoint import is_address
from pgwarden.model.errors import one_line

LIBPQ_WITH_SCRAM_KEYS = 180000
MECHANISM = "SCRAM-SHA-256"
# A salt or round count from the server beyond these is not worth a fast path (and a
# huge round count would stall the scan before a single database is read).
MAX_ITERATIONS = 1_000_000
MAX_MESSAGE = 64 * 1024

_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_PROTOCOL_3_0 = 196608
_AUTH_SASL = 10
_AUTH_SASL_CONTINUE = 11
_TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}

log = logging.getLogger(__name__)
C = TypeVar("C", bound=psycopg.Connection[Any])
# Opens one session of the collector's (counted, known as its own): with these connection
# parameters in place of the password, or, given None, with the password.
OpenSession = Callable[[Mapping[str, str] | None], C]


class Unavailable(Exception):
    """Why the logins cannot reuse derived keys (each derives its own instead)."""


@dataclass(frozen=True)
class ScramKeys:
    """The client and server keys of one role's SCRAM verifier, base64-encoded."""

    client_key: str = field(repr=False)
    server_key: str = field(repr=False)

    def parameters(self) -> dict[str, str]:
        """Connection parameters that log in with these keys (and with nothing else:
        the password is left out, and a server asking for another method is refused)."""
        return {
            "scram_client_key": self.client_key,
            "scram_server_key": self.server_key,
            "require_auth": "scram-sha-256",
        }


class ScramKeyReuse:
    """The logins of one collection after its main session's, with SCRAM keys derived once.

    One per collector, for one server: ``start`` once the main session has logged
    in, ``wait`` before the logins to each database, then ``log_in`` for each of them.
    Until the keys are derived and checked, and whenever they cannot be, ``log_in``
    logs in with the password.
    """

    def __init__(self) -> None:
        self._keys: ScramKeys | None = None
        self._thread: threading.Thread | None = None

    @property
    def in_use(self) -> bool:
        """Whether the logins after the main session's use the derived keys."""
        return self._keys is not None

    def start(
        self,
        main: psycopg.Connection[Any],
        open_session: OpenSession[Any],
        *,
        timeout: float,
        where: str,
    ) -> None:
        """Start deriving the keys for the logins to come (and checking them with one
        login through ``open_session``) on a thread, beside the server-wide reads, so a
        scan of many databases runs PBKDF2 once rather than once per database."""
        login = Login.of(main)  # read here: the main session runs queries meanwhile
        self._thread = threading.Thread(
            target=self._derive,
            args=(login, open_session, timeout, where),
            name="pgwarden-scram",
            daemon=True,
        )
        self._thread.start()

    def wait(self) -> None:
        """Wait until the keys are derived and checked (or found unavailable), and the
        checking login is closed."""
        if self._thread is not None:
            self._thread.join()

    def log_in(self, open_session: OpenSession[C]) -> C:
        """One session, logged in with the keys when there are any."""
        keys = self._keys
        if keys is None:
            return open_session(None)
        try:
            return open_session(_login_parameters(keys))
        except psycopg.OperationalError:
            # The keys are checked once (start), so a login they fail is one the password
            # may still pass (another pg_hba method for this database): the password
            # decides, and its error is the one reported.
            return open_session(None)

    def _derive(
        self, login: Login, open_session: OpenSession[Any], timeout: float, where: str
    ) -> None:
        try:
            keys = keys_for(login, timeout)
            open_session(_login_parameters(keys)).close()
        except Exception as exc:  # an optimisation: any failure means no keys
            reason = one_line(exc) if isinstance(exc, psycopg.Error) else str(exc)
            log.debug("%s: each login derives its own SCRAM keys (%s)", where, reason)
            return
        log.debug("%s: the logins to each database use SCRAM keys derived once", where)
        self._keys = keys


def _login_parameters(keys: ScramKeys) -> dict[str, str]:
    """Connection parameters for a login with ``keys`` only (the password left out)."""
    return {**keys.parameters(), "password": ""}


def derive_keys(password: str, salt: bytes, iterations: int) -> ScramKeys:
    """RFC 5802's ClientKey and ServerKey, as libpq computes them for ``password``
    (printable ASCII only: SASLprep leaves it unchanged)."""
    if not _saslprep_identity(password):
        raise Unavailable("the password is not printable ASCII (SASLprep would apply)")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return ScramKeys(base64.b64encode(client).decode(), base64.b64encode(server).decode())


@dataclass(frozen=True)
class Login:
    """What a logged-in session tells about its login: read on the session's thread,
    so the keys can be derived on another while the session runs queries."""

    params: dict[str, str] = field(repr=False)
    host: str
    hostaddr: str | None
    port: int
    user: str
    dbname: str
    tls: bool
    password_used: bool
    gss_encrypted: bool

    @classmethod
    def of(cls, conn: psycopg.Connection[Any]) -> Login:
        pgconn = conn.pgconn
        params = {
            o.keyword.decode(): o.val.decode(errors="surrogateescape")
            for o in pgconn.info
            if o.val is not None
        }
        return cls(
            params=params,
            host=conn.info.host,
            hostaddr=conn.info.hostaddr,
            port=conn.info.port,
            user=conn.info.user,
            dbname=conn.info.dbname,
            tls=bool(pgconn.ssl_in_use),
            password_used=bool(pgconn.used_password),
            gss_encrypted=bool(pgconn.used_gssapi),
        )


def keys_for(login: Login, timeout: float) -> ScramKeys:
    """Keys for further logins like ``login``, which used a password.

    Raises Unavailable (with a reason safe to log) when they cannot be derived.
    """
    if psycopg.pq.version() < LIBPQ_WITH_SCRAM_KEYS:
        raise Unavailable(f"libpq {psycopg.pq.version()} has no scram_client_key (18+)")
    params = login.params
    password = params.get("password")
    if not login.password_used or not password:
        raise Unavailable("the session did not log in with a password")
    if not _saslprep_identity(password):
        raise Unavailable("the password is not printable ASCII (SASLprep would apply)")
    if login.gss_encrypted:
        raise Unavailable("the session uses GSS encryption")
    for unsupported in ("sslcrl", "sslcrldir", "requirepeer", "sslkeylogfile"):
        if params.get(unsupported):
            raise Unavailable(f"{unsupported} is set")
    if params.get("sslnegotiation", "postgres") != "postgres":
        raise Unavailable("TLS is negotiated directly")
    if "," in params.get("host", "") or "," in params.get("hostaddr", ""):
        raise Unavailable("the DSN names several hosts")
    salt, iterations = first_message(login, timeout)
    return derive_keys(password, salt, iterations)


def first_message(login: Login, timeout: float) -> tuple[bytes, int]:
    """The salt and round count the server sends for ``login``'s role, read by a SCRAM
    login abandoned before the client's proof."""
    try:
        tls = _tls(login.params, login.host) if login.tls else None
        with closing(_open(login.host, login.hostaddr, login.port, timeout)) as raw:
            sock: socket.socket = raw
            if tls is not None:
                sock.sendall(_SSL_REQUEST)
                if _read_exact(sock, 1) != b"S":
                    raise Unavailable("the server declined TLS on the second connection")
                context, server_hostname = tls
                sock = context.wrap_socket(raw, server_hostname=server_hostname)
            try:
                return _exchange(sock, login)
            finally:
                if isinstance(sock, ssl.SSLSocket):
                    _tls_goodbye(sock)
    except (OSError, ValueError, KeyError) as exc:  # ssl.SSLError and UnicodeError included
        raise Unavailable(f"{type(exc).__name__} on the second connection") from None


def _exchange(sock: socket.socket, login: Login) -> tuple[bytes, int]:
    startup = {"user": login.user, "database": login.dbname, "application_name": "pgwarden"}
    if login.params.get("options"):  # some proxies route by it
        startup["options"] = login.params["options"]
    body = struct.pack("!i", _PROTOCOL_3_0)
    body += b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in startup.items()) + b"\0"
    sock.sendall(struct.pack("!i", len(body) + 4) + body)

    kind, payload = _read_message(sock)
    if kind != b"R" or len(payload) < 4:
        raise Unavailable("the server answered the login with an error or a notice")
    code = struct.unpack("!i", payload[:4])[0]
    if code != _AUTH_SASL:
        raise Unavailable(f"the server asks for authentication method {code}, not SASL")
    if MECHANISM.encode() not in payload[4:].split(b"\0"):
        raise Unavailable(f"the server does not offer {MECHANISM}")

    nonce = base64.b64encode(secrets.token_bytes(18)).decode()
    first = f"n,,n=,r={nonce}".encode()
    message = MECHANISM.encode() + b"\0" + struct.pack("!i", len(first)) + first
    sock.sendall(b"p" + struct.pack("!i", len(message) + 4) + message)

    kind, payload = _read_message(sock)
    if kind != b"R" or payload[:4] != struct.pack("!i", _AUTH_SASL_CONTINUE):
        raise Unavailable("the server did not continue the SCRAM exchange")
    try:
        attributes = dict(
            part.split("=", 1) for part in payload[4:].decode("ascii").split(",") if "=" in part
        )
        salt = base64.b64decode(attributes.get("s", ""), validate=True)
        iterations = int(attributes.get("i", "0"))
    except ValueError:  # UnicodeDecodeError and binascii.Error included
        raise Unavailable("the server's first SCRAM message is malformed") from None
    if not attributes.get("r", "").startswith(nonce):
        raise Unavailable("the server's SCRAM nonce does not extend the client's")
    if not salt or not 0 < iterations <= MAX_ITERATIONS:
        raise Unavailable("the server's SCRAM salt or round count is out of range")
    return salt, iterations


def _open(host: str, hostaddr: str | None, port: int, timeout: float) -> socket.socket:
    if host.startswith(("/", "@")):  # a Unix socket directory (@: abstract namespace)
        path = f"{host}/.s.PGSQL.{port}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect("\0" + path[1:] if path.startswith("@") else path)
        except OSError:
            sock.close()
            raise
        return sock
    # The address the main session reached: no second name lookup.
    return socket.create_connection((hostaddr or host, port), timeout=timeout)


def _tls(params: dict[str, str], host: str) -> tuple[ssl.SSLContext, str | None]:
    """A TLS context that checks the server as libpq does for ``params``' sslmode, and
    the name to send and check (None: no SNI, no name check)."""
    mode = params.get("sslmode", "prefer")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = _TLS_VERSIONS[params.get("ssl_min_protocol_version") or "TLSv1.2"]
    if params.get("ssl_max_protocol_version"):
        context.maximum_version = _TLS_VERSIONS[params["ssl_max_protocol_version"]]
    home = Path.home() / ".postgresql"
    rootcert = params.get("sslrootcert") or str(home / "root.crt")
    # libpq: require checks the CA when a root certificate is there, as verify-ca does.
    verify = mode in ("verify-ca", "verify-full") or (
        mode == "require" and (rootcert == "system" or Path(rootcert).is_file())
    )
    context.check_hostname = mode == "verify-full"
    if verify:
        context.verify_mode = ssl.CERT_REQUIRED
        if rootcert == "system":
            context.load_default_certs()
        else:
            context.load_verify_locations(cafile=rootcert)
    else:
        context.verify_mode = ssl.CERT_NONE
    if params.get("sslcertmode", "allow") != "disable":
        cert = params.get("sslcert") or str(home / "postgresql.crt")
        if Path(cert).is_file():
            key = params.get("sslkey") or str(home / "postgresql.key")
            context.load_cert_chain(cert, key, password=params.get("sslpassword"))
    sni = params.get("sslsni", "1") == "1"
    if context.check_hostname and not sni and not is_address(host):
        raise Unavailable("sslsni=0 with verify-full")  # Python sends SNI when it checks a name
    return context, host if (sni or context.check_hostname) else None


def _tls_goodbye(sock: ssl.SSLSocket) -> None:
    """End TLS with close_notify, so the server sees a clean end of input (a bare close
    is logged as an SSL error)."""
    with suppress(OSError, ValueError):
        sock.unwrap()


def _read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    header = _read_exact(sock, 5)
    length = struct.unpack("!i", header[1:])[0]
    if not 4 <= length <= MAX_MESSAGE:
        raise Unavailable("the server sent a malformed message")
    return header[:1], _read_exact(sock, length - 4)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise Unavailable("the server closed the second connection")
        data += chunk
    return data


def _saslprep_identity(password: str) -> bool:
    """True when SASLprep (RFC 4013) maps ``password`` to itself: printable ASCII."""
    return bool(password) and all(" " <= ch <= "~" for ch in password)
