"""pgwarden's own PostgreSQL sessions: read-only, time-limited, named ``pgwarden``.

Every session the collector opens goes through ``connect``: the DSN's parameters plus
``default_transaction_read_only``, a statement, lock and idle-in-transaction timeout,
a connect timeout (unless the DSN sets one) and ``application_name = 'pgwarden'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap
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


@dataclass(frozen=True)
class SessionSettings:
    """Limits every pgwarden session runs under."""

    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S

    def options(self, existing: str | None) -> str:
        """The libpq ``options`` value: the DSN's own, then pgwarden's settings."""
        ours = (
            "-c default_transaction_read_only=on"
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
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row, context=_ADAPTERS, **extra)


@lru_cache(maxsize=16)
def _session_parameters(dsn: str, limits: SessionSettings) -> tuple[tuple[str, Any], ...]:
    """What pgwarden adds to a DSN for its sessions (worked out once per DSN: a scan
    opens one session per database)."""
    params = conninfo_to_dict(dsn) if dsn else {}
    extra: dict[str, Any] = {
        "application_name": APPLICATION_NAME,
        "options": limits.options(str(params["options"]) if params.get("options") else None),
    }
    if "connect_timeout" not in params:
        extra["connect_timeout"] = limits.connect_timeout_s
    return tuple(extra.items())
