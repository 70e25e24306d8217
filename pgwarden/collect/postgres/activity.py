"""Client sessions seen in ``pg_stat_activity``, sampled over a short window.

One look at ``pg_stat_activity`` misses the short-lived sessions of applications that
connect, query and leave; several samples spread over a window, on a session of their
own beside the rest of the collection, see most of them. A session seen in several
samples is one Session with its sample count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

from pgwarden.collect.postgres import queries as q
from pgwarden.model.errors import one_line
from pgwarden.model.snapshot import Gap, Session

OpenSession = Callable[[], psycopg.Connection[dict[str, Any]]]
Fetch = Callable[[psycopg.Connection[dict[str, Any]], str], list[dict[str, Any]]]


class SessionSampler:
    """Samples pg_stat_activity several times over a window, on its own connection.

    ``open_session`` opens a pgwarden session to the DSN's database and ``fetch`` runs
    one statement on it (both the collector's, so the session and the statements are
    counted and the session is known as pgwarden's own).
    """

    def __init__(
        self, open_session: OpenSession, fetch: Fetch, samples: int, window: float
    ) -> None:
        self.open_session = open_session
        self.fetch = fetch
        self.samples = samples
        self.window = window
        self.samples_taken = 0
        self._sessions: dict[tuple[int, str], Session] | None = {}
        self._gap: Gap | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pgwarden-sessions", daemon=True)

    def start(self) -> None:
        """Start sampling on a thread of its own."""
        self._thread.start()

    def stop(self) -> None:
        """End the sampling early (the collection failed) and close its session."""
        self._stopped.set()
        self._thread.join()

    def join(self) -> tuple[tuple[Session, ...] | None, Gap | None]:
        """Wait for the last sample: the sessions seen (None: none could be read, then
        the gap says why) and a gap when sampling stopped early."""
        self._thread.join()
        if self._sessions is None:
            return None, self._gap
        return tuple(sorted(self._sessions.values(), key=lambda s: s.pid)), self._gap

    def _run(self) -> None:
        interval = self.window / (self.samples - 1) if self.samples > 1 else 0.0
        try:
            with self.open_session() as conn:
                for index in range(self.samples):
                    if index and self._stopped.wait(interval):
                        return
                    self._take(self.fetch(conn, q.SESSIONS))
        except psycopg.Error as exc:
            if self.samples_taken == 0:
                self._sessions = None
            self._gap = Gap(
                section="sessions",
                reason=f"pg_stat_activity could not be read: {one_line(exc)}",
                fix="GRANT pg_monitor TO <auditor>",
            )

    def _take(self, rows: list[dict[str, Any]]) -> None:
        assert self._sessions is not None
        self.samples_taken += 1
        for row in rows:
            key = (row["pid"], str(row["backend_start"]))
            seen = self._sessions.get(key)
            if seen is None:
                self._sessions[key] = Session.model_validate(row)
            else:
                self._sessions[key] = seen.model_copy(update={"samples": seen.samples + 1})
