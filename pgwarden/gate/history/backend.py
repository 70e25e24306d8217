"""The interface a history database implements, and the tables every one of them holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

HISTORY_SCHEMA_VERSION = 1

# One DDL for both backends; {id} and {ts} are the only dialect differences.
HISTORY_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pgwarden_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS pgwarden_runs (
        id {id},
        started_at {ts} NOT NULL,
        finished_at {ts} NOT NULL,
        tool_version TEXT NOT NULL,
        config TEXT,
        config_sha256 TEXT,
        snapshot TEXT,
        complete BOOLEAN NOT NULL,
        fail INTEGER NOT NULL,
        error INTEGER NOT NULL,
        waived INTEGER NOT NULL,
        new INTEGER,
        resolved INTEGER)""",
    """CREATE TABLE IF NOT EXISTS pgwarden_run_servers (
        run_id BIGINT NOT NULL REFERENCES pgwarden_runs (id) ON DELETE CASCADE,
        server TEXT NOT NULL,
        complete BOOLEAN NOT NULL,
        PRIMARY KEY (run_id, server))""",
    """CREATE TABLE IF NOT EXISTS pgwarden_coverage (
        run_id BIGINT NOT NULL REFERENCES pgwarden_runs (id) ON DELETE CASCADE,
        server TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (run_id, server, rule_id))""",
    """CREATE TABLE IF NOT EXISTS pgwarden_findings (
        run_id BIGINT NOT NULL REFERENCES pgwarden_runs (id) ON DELETE CASCADE,
        fingerprint TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        severity TEXT NOT NULL,
        status TEXT NOT NULL,
        server TEXT NOT NULL,
        app TEXT,
        resource TEXT NOT NULL,
        principal TEXT,
        message TEXT NOT NULL,
        PRIMARY KEY (run_id, fingerprint))""",
    "CREATE INDEX IF NOT EXISTS pgwarden_findings_fingerprint "
    "ON pgwarden_findings (fingerprint, run_id)",
    "CREATE INDEX IF NOT EXISTS pgwarden_run_servers_server "
    "ON pgwarden_run_servers (server, run_id)",
    # A run's findings and coverage are read server by server: a fleet's run is not
    # read whole once for each of its servers.
    "CREATE INDEX IF NOT EXISTS pgwarden_findings_server ON pgwarden_findings (run_id, server)",
    "CREATE INDEX IF NOT EXISTS pgwarden_coverage_server "
    "ON pgwarden_coverage (server, rule_id, run_id)",
)


class HistoryBackend(Protocol):
    """A database the history store writes to: SQLite or PostgreSQL, one SQL dialect.

    Queries use ``?`` placeholders; ``id_type`` and ``ts_type`` fill the DDL's ``{id}``
    and ``{ts}``; ``to_db``/``from_db`` carry timestamps in and out (always UTC).
    """

    display: str
    id_type: str
    ts_type: str

    def execute(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def begin(self) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...

    def to_db(self, moment: datetime) -> Any: ...

    def from_db(self, value: Any) -> datetime: ...
