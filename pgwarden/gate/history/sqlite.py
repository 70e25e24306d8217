"""The history in a SQLite file: the default store, nothing to install or run."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgwarden.model.errors import ConfigError


class SqliteBackend:
    """A history in a SQLite file (stdlib ``sqlite3``): the default store."""

    id_type = "INTEGER PRIMARY KEY AUTOINCREMENT"
    ts_type = "TEXT"

    def __init__(self, path: Path, *, create: bool) -> None:
        self.display = str(path)
        if path.is_dir():
            raise ConfigError(f"--history {path}: is a directory, not a history database file")
        if not path.exists():
            if not create:
                raise ConfigError(f"--history {path}: no such file (no run was recorded there)")
            if not path.parent.is_dir():
                raise ConfigError(f"--history {path}: directory {path.parent} does not exist")
        try:
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise ConfigError(f"--history {path}: cannot open: {exc}") from None
        self.execute("PRAGMA foreign_keys = ON")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise ConfigError(f"--history {self.display}: {exc}") from None

    def execute(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            return list(self.conn.execute(query, tuple(params)).fetchall())

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._errors():
            self.conn.executemany(query, [tuple(r) for r in rows])

    def begin(self) -> None:
        # IMMEDIATE takes the write lock up front, so two concurrent scans recording
        # into one file run one after the other instead of deadlocking.
        self.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def to_db(self, moment: datetime) -> Any:
        # Fixed-width UTC text sorts like time, so MIN() works on it.
        return moment.astimezone(UTC).isoformat(timespec="microseconds")

    def from_db(self, value: Any) -> datetime:
        return datetime.fromisoformat(str(value))
