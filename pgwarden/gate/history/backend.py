"""The interface a history database implements, and the tables every one of them holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

# 2 added pgwarden_first_seen, 3 pgwarden_last_ran: a store of an older version is
# brought up to date when opened (MIGRATIONS).
HISTORY_SCHEMA_VERSION = 3

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
    "CREATE INDEX IF NOT EXISTS pgwarden_run_servers_server "
    "ON pgwarden_run_servers (server, run_id)",
    # A run's findings are read server by server: a fleet's run is not read whole once
    # for each of its servers (store.findings says what keeps SQLite on this index).
    "CREATE INDEX IF NOT EXISTS pgwarden_findings_server ON pgwarden_findings (run_id, server)",
    # Each fingerprint's first_seen (the earliest start of a recorded run that saw it),
    # kept as runs are recorded: read from the findings, it was the minimum over every
    # run that saw each finding, a cost that grew with the length of the history.
    """CREATE TABLE IF NOT EXISTS pgwarden_first_seen (
        fingerprint TEXT PRIMARY KEY,
        first_seen {ts} NOT NULL)""",
    # Each server's latest run in which each rule really ran (passed or failed), kept as
    # runs are recorded: the maximum over the coverage read every rule of every run of
    # the server, a cost that grew with the history (a fleet's most of all).
    """CREATE TABLE IF NOT EXISTS pgwarden_last_ran (
        server TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        run_id BIGINT NOT NULL REFERENCES pgwarden_runs (id) ON DELETE CASCADE,
        PRIMARY KEY (server, rule_id))""",
)

# What brings a store of each older schema version to the next, run in order when a
# newer pgwarden opens it: each new table is filled from the runs recorded so far. The
# indexes that served only what the tables now hold go: each run's rows, scattered
# through them, made recording slower as the history grew.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "INSERT INTO pgwarden_first_seen (fingerprint, first_seen) "
        "SELECT f.fingerprint, MIN(r.started_at) FROM pgwarden_findings AS f "
        "JOIN pgwarden_runs AS r ON r.id = f.run_id GROUP BY f.fingerprint",
        "DROP INDEX IF EXISTS pgwarden_findings_fingerprint",
    ),
    2: (
        "INSERT INTO pgwarden_last_ran (server, rule_id, run_id) "
        "SELECT server, rule_id, MAX(run_id) FROM pgwarden_coverage "
        "WHERE outcome IN ('passed', 'failed') GROUP BY server, rule_id",
        "DROP INDEX IF EXISTS pgwarden_coverage_server",
    ),
}

# A run's findings move their fingerprints' first_seen back to the run's start where it
# is earlier (a snapshot of last week recorded today), and add the new ones.
RECORD_FIRST_SEEN = (
    "INSERT INTO pgwarden_first_seen (fingerprint, first_seen) VALUES (?, ?) "
    "ON CONFLICT (fingerprint) DO UPDATE SET first_seen = excluded.first_seen "
    "WHERE excluded.first_seen < pgwarden_first_seen.first_seen"
)

# A rule that really ran on a server in a run (passed or failed) makes that run its
# latest there (run ids only grow).
RECORD_LAST_RAN = (
    "INSERT INTO pgwarden_last_ran (server, rule_id, run_id) VALUES (?, ?, ?) "
    "ON CONFLICT (server, rule_id) DO UPDATE SET run_id = excluded.run_id "
    "WHERE excluded.run_id > pgwarden_last_ran.run_id"
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
