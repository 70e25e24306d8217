"""pgwarden's own PostgreSQL sessions: read-only, time-limited, named ``pgwarden``.

Every session the collector opens goes through ``connect``: the DSN's parameters plus
a ``search_path`` of the system catalogs only, ``default_transaction_read_only``, a
statement, lock and idle-in-transaction timeout,
a connect timeout (unless the DSN sets one), ``application_name = 'pgwarden'`` and
``client_encoding = UTF8``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import AdaptersMap, Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types import TypeInfo

APPLICATION_NAME = "pgwarden"
DEFAULT_STATEMENT_TIMEOUT_MS = 15_000
DEFAULT_LOCK_TIMEOUT_MS = 3_000
DEFAULT_CONNECT_TIMEOUT_S = 10

# aclitem and aclitem[] have fixed OIDs: registered without asking the server, so
# ACL columns load as lists of item texts for collect.postgres.acl. Registered once, on
# the adapters every pgwarden session starts from (each connection copies them on write).
ACLITEM = TypeInfo("aclitem", 1033, 1034)
_ADAPTERS = AdaptersMap(psycopg.adapters)
ACLITEM.register(_ADAPTERS)


# Text is read as UTF-8 (``client_encoding``: the server converts from each database's
# encoding), and is valid UTF-8 but where a database was created with SQL_ASCII: the
# server then stores the bytes it was given, unchecked, in that database's catalogs and,
# for a role or database created from it, in the shared ones. A session in such a
# database reads its text as stored (the server would refuse to send it as UTF-8), and
# a statement that met such text in a shared catalog is read again, both with these
# loaders, each byte that is not UTF-8 written as ``\xNN`` (``caf\xe9``): one odd name
# must not sink the audit, and the result must be text every report can hold (a lone
# surrogate is not). Text, "char", name, unknown, bpchar, varchar, aclitem,
# and what has no loader of its own (OID 0), arrays of them included.
TEXT_OIDS = (0, 18, 19, 25, 705, 1033, 1042, 1043)


class EscapedText(Loader):
    r"""Text whose bytes that are not UTF-8 are written as ``\xNN``."""

    def load(self, data: Buffer) -> str:
        return bytes(data).decode("utf-8", "backslashreplace")


def escape_invalid_text(cursor: psycopg.Cursor[Any]) -> None:
    """Make ``cursor`` read text whose bytes are not UTF-8 (``EscapedText``)."""
    for oid in TEXT_OIDS:
        cursor.adapters.register_loader(oid, EscapedText)


def stores_unchecked_bytes(conn: psycopg.Connection[Any]) -> bool:
    """Whether ``conn``'s database is SQL_ASCII: its text may not be UTF-8."""
    return conn.info.parameter_status("server_encoding") == "SQL_ASCII"


@dataclass(frozen=True)
class SessionSettings:
    """Limits every pgwarden session runs under."""

    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S

    def options(self, existing: str | None) -> str:
        """The libpq ``options`` value: the DSN's own, then pgwarden's settings."""
        ours = (
            # The catalogs, and the functions and operators the queries use, are the
            # system's: a database's owner can set its search_path (ALTER DATABASE ...
            # SET search_path = mine, pg_catalog) to put a schema of look-alike views
            # first and feed the audit what it likes. Startup options override that.
            "-c search_path=pg_catalog,pg_temp"
            " -c default_transaction_read_only=on"
            f" -c statement_timeout={self.statement_timeout_ms}"
            f" -c lock_timeout={self.lock_timeout_ms}"
            " -c idle_in_transaction_session_timeout=60000"
        )
        return f"{existing} {ours}" if existing else ours


def connect(
    dsn: str,
    *,
    dbname: str | None = None,
    settings: SessionSettings | None = None,
    password: str | None = None,
    credentials: Mapping[str, str] | None = None,
) -> psycopg.Connection[dict[str, Any]]:
    """Open one read-only, time-limited pgwarden session.

    ``credentials`` are connection parameters that log in instead of ``password``
    (SCRAM keys derived once, for instance); without them ``password``, when given,
    replaces the DSN's.
    """
    extra = dict(_session_parameters(dsn, settings or SessionSettings()))
    if dbname is not None:
        extra["dbname"] = dbname
    if credentials is not None:
        extra.update(credentials)
    elif password is not None:
        extra["password"] = password
    conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row, context=_ADAPTERS, **extra)
    if stores_unchecked_bytes(conn):
        # The server would refuse to send its text that is not UTF-8 as UTF-8: it is
        # read as it is stored, and decoded by EscapedText.
        conn.execute("SET client_encoding TO 'SQL_ASCII'")
    return conn


@lru_cache(maxsize=16)
def _session_parameters(dsn: str, limits: SessionSettings) -> tuple[tuple[str, Any], ...]:
    """What pgwarden adds to a DSN for its sessions (worked out once per DSN: a scan
    opens one session per database)."""
    params = conninfo_to_dict(dsn) if dsn else {}
    extra: dict[str, Any] = {
        "application_name": APPLICATION_NAME,
        "client_encoding": "UTF8",
        "options": limits.options(str(params["options"]) if params.get("options") else None),
    }
    if "connect_timeout" not in params:
        extra["connect_timeout"] = limits.connect_timeout_s
    return tuple(extra.items())
