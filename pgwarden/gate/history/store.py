"""Run history (``--history PATH``): every scan recorded, compared with the one before.

The store is a SQLite file (the default; stdlib ``sqlite3``) or a PostgreSQL database
named by a ``postgresql://`` DSN. pgwarden writes it, so unlike the audited servers
its sessions are ordinary read-write ones; it should not be an audited server's
database (if it is, its tables are just more data to that server's scan).

A run records when it ran, which config (path and SHA-256 of its bytes, never its
text: a config may hold a literal DSN), which rules ran cleanly on which server, and
every finding by fingerprint with its status. From that each finding gets its
``first_seen`` date (the start of the first recorded run that saw it) and its age in
whole days, and each run its new and resolved violations (``fail`` or ``waived``) per
server, compared with the previous recorded run of the same server.

Comparisons only trust rules that really ran (passed or failed): a server that was
unreachable, or a rule in error or not selected, neither resolves yesterday's findings
nor makes today's new. So "the previous run" is, rule by rule, the latest recorded run
in which that rule ran on that server; a run where the server was down is skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from pgwarden.engine import evaluated
from pgwarden.gate.history.backend import (
    HISTORY_SCHEMA,
    HISTORY_SCHEMA_VERSION,
    MIGRATIONS,
    RECORD_FIRST_SEEN,
    RECORD_LAST_RAN,
    HistoryBackend,
)
from pgwarden.gate.history.postgres import PostgresBackend, is_postgres_location
from pgwarden.gate.history.records import (
    RunDiff,
    RunRecord,
    ServerChange,
    StoredFinding,
    compare_server,
)
from pgwarden.gate.history.sqlite import SqliteBackend
from pgwarden.model.errors import ConfigError, UsageError
from pgwarden.model.results import (
    Finding,
    HistoryReport,
    ResolvedFinding,
    Results,
    ServerHistory,
)

_CHUNK = 400


class HistoryStore:
    """A history database: record runs, list them, compare them."""

    def __init__(self, backend: HistoryBackend) -> None:
        self._db = backend
        self.display = backend.display

    @classmethod
    def open(cls, location: str, *, create: bool = True) -> HistoryStore:
        """Open the store at a path or postgresql:// DSN, creating its tables when new.

        ``create=False`` (for reading commands) refuses a SQLite file that does not exist.
        """
        if not location.strip():
            raise UsageError("--history: give a file path or a postgresql:// DSN")
        backend: HistoryBackend = (
            PostgresBackend(location)
            if is_postgres_location(location)
            else SqliteBackend(Path(location), create=create)
        )
        store = cls(backend)
        try:
            with store._transaction():
                store._ensure_schema()
        except BaseException:
            backend.close()
            raise
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._db.begin()
            yield
            self._db.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                self._db.rollback()
            raise

    def _ensure_schema(self) -> None:
        for statement in HISTORY_SCHEMA:
            self._db.execute(statement.format(id=self._db.id_type, ts=self._db.ts_type))
        rows = self._db.execute("SELECT value FROM pgwarden_meta WHERE key = 'schema_version'")
        if not rows:
            self._db.execute(
                "INSERT INTO pgwarden_meta (key, value) VALUES ('schema_version', ?)",
                (str(HISTORY_SCHEMA_VERSION),),
            )
            return
        stored = int(rows[0][0])
        if stored > HISTORY_SCHEMA_VERSION:
            raise ConfigError(
                f"--history {self.display}: written by a newer pgwarden "
                f"(history schema {stored}); upgrade pgwarden"
            )
        if stored < HISTORY_SCHEMA_VERSION:
            # In the same transaction as the tables (serialised with every other writer):
            # a store is brought up to date whole or not at all.
            for version in range(stored, HISTORY_SCHEMA_VERSION):
                for statement in MIGRATIONS[version]:
                    self._db.execute(statement)
            self._db.execute(
                "UPDATE pgwarden_meta SET value = ? WHERE key = 'schema_version'",
                (str(HISTORY_SCHEMA_VERSION),),
            )

    # -- reading ----------------------------------------------------------------------

    _RUN_COLUMNS = (
        "id, started_at, finished_at, tool_version, config, config_sha256, snapshot, "
        "complete, fail, error, waived, new, resolved"
    )

    def _runs(self, where: str, params: Sequence[Any]) -> list[RunRecord]:
        rows = self._db.execute(f"SELECT {self._RUN_COLUMNS} FROM pgwarden_runs {where}", params)
        if not rows:
            return []
        ids = [int(r[0]) for r in rows]
        servers: dict[int, list[str]] = {i: [] for i in ids}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for run_id, server in self._db.execute(
                f"SELECT run_id, server FROM pgwarden_run_servers WHERE run_id IN ({marks}) "
                "ORDER BY server",
                chunk,
            ):
                servers[int(run_id)].append(str(server))
        return [
            RunRecord(
                id=int(r[0]),
                started_at=self._db.from_db(r[1]),
                finished_at=self._db.from_db(r[2]),
                tool_version=str(r[3]),
                config=r[4],
                config_sha256=r[5],
                snapshot=r[6],
                complete=bool(r[7]),
                fail=int(r[8]),
                error=int(r[9]),
                waived=int(r[10]),
                new=None if r[11] is None else int(r[11]),
                resolved=None if r[12] is None else int(r[12]),
                servers=tuple(servers[int(r[0])]),
            )
            for r in rows
        ]

    def runs(self, *, server: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Recorded runs, newest first (only those that scanned ``server``, if given)."""
        where, params = "", []
        if server is not None:
            where = "WHERE id IN (SELECT run_id FROM pgwarden_run_servers WHERE server = ?)"
            params.append(server)
        where += " ORDER BY id DESC"
        if limit is not None:
            where += f" LIMIT {int(limit)}"
        return self._runs(where, params)

    def run(self, reference: str) -> RunRecord:
        """A run by id, or ``latest`` / ``latest~N`` (N runs before the latest)."""
        text = reference.strip().lower()
        if text == "latest" or text.startswith("latest~"):
            back = text.removeprefix("latest").removeprefix("~") or "0"
            if not back.isdigit():
                raise UsageError(f"run {reference!r}: use a run id, latest or latest~N")
            found = self._runs(f"ORDER BY id DESC LIMIT 1 OFFSET {int(back)}", [])
        elif text.isdigit():
            found = self._runs("WHERE id = ?", [int(text)])
        else:
            raise UsageError(f"run {reference!r}: use a run id, latest or latest~N")
        if not found:
            raise UsageError(f"run {reference!r}: no such run in {self.display}")
        return found[0]

    def findings(self, run_id: int, server: str | None = None) -> list[StoredFinding]:
        """Every finding a run recorded (on ``server`` only, when given)."""
        where = "run_id = ?"
        params: list[int | str] = [run_id]
        if server is not None:
            where += " AND server = ?"
            params.append(server)
        # Sorted here, not by the query: with ORDER BY fingerprint, SQLite reads one
        # server's findings through the key (run_id, fingerprint), every finding of the
        # run, not through the index on (run_id, server), and recording a fleet cost
        # servers times findings. A fingerprint is hex: every collation sorts it alike.
        rows = sorted(
            self._db.execute(
                "SELECT fingerprint, rule_id, severity, status, server, app, resource, "
                f"principal, message FROM pgwarden_findings WHERE {where}",
                params,
            )
        )
        return [
            StoredFinding(
                fingerprint=r[0],
                rule_id=r[1],
                severity=r[2],
                status=r[3],
                server=r[4],
                app=r[5],
                resource=r[6],
                principal=r[7],
                message=r[8],
            )
            for r in rows
        ]

    def rules_ran(self, run_id: int) -> dict[str, set[str]]:
        """Server → the rule ids that really ran on it (passed or failed) in a run."""
        ran: dict[str, set[str]] = {}
        for server, rule_id in self._db.execute(
            "SELECT server, rule_id FROM pgwarden_coverage "
            "WHERE run_id = ? AND outcome IN ('passed', 'failed')",
            (run_id,),
        ):
            ran.setdefault(server, set()).add(rule_id)
        return ran

    def _last_looked(
        self, server: str, runs: dict[int, RunRecord]
    ) -> tuple[list[StoredFinding], set[str], RunRecord | None]:
        """What the server's recorded runs last saw, rule by rule.

        For each rule, the latest run in which it really ran on the server (a run where
        the server was unreachable, or the rule in error or not selected, is skipped for
        that rule): its findings of that rule, the rules that have such a run, and the
        latest of those runs (the one the comparison is mostly with), read once into
        ``runs`` for every server it scanned: a fleet's servers mostly share it, and a
        run's record lists all its servers.
        """
        latest: dict[str, int] = {
            str(rule_id): int(run_id)
            for rule_id, run_id in self._db.execute(
                # Joined to the runs: a run deleted by hand without its dependants (SQLite
                # with foreign keys off) is not a previous run.
                "SELECT l.rule_id, l.run_id FROM pgwarden_last_ran AS l "
                "JOIN pgwarden_runs AS r ON r.id = l.run_id WHERE l.server = ?",
                (server,),
            )
        }
        before: list[StoredFinding] = []
        for run_id in sorted(set(latest.values())):
            before += [f for f in self.findings(run_id, server) if latest.get(f.rule_id) == run_id]
        if not latest:
            return before, set(), None
        last = max(latest.values())
        if last not in runs:
            runs[last] = self._runs("WHERE id = ?", [last])[0]
        return before, set(latest), runs[last]

    def _first_seen(self, fingerprints: Iterable[str]) -> dict[str, datetime]:
        """The recorded first_seen of each fingerprint the history has seen: one lookup
        each, however many runs saw it."""
        seen: dict[str, datetime] = {}
        for chunk in _chunks(sorted(set(fingerprints))):
            marks = ",".join("?" * len(chunk))
            for fingerprint, first in self._db.execute(
                "SELECT fingerprint, first_seen FROM pgwarden_first_seen "
                f"WHERE fingerprint IN ({marks})",
                chunk,
            ):
                seen[str(fingerprint)] = self._db.from_db(first)
        return seen

    def diff(self, before: RunRecord, after: RunRecord) -> RunDiff:
        """What changed between two recorded runs, server by server."""
        old, new = _by_server(self.findings(before.id)), _by_server(self.findings(after.id))
        old_ran, new_ran = self.rules_ran(before.id), self.rules_ran(after.id)
        common = [s for s in after.servers if s in before.servers]
        return RunDiff(
            before=before,
            after=after,
            servers=tuple(
                compare_server(
                    server,
                    old.get(server, []),
                    new.get(server, []),
                    before_ran=old_ran.get(server, set()),
                    after_ran=new_ran.get(server, set()),
                )
                for server in common
            ),
            only_before=tuple(s for s in before.servers if s not in after.servers),
            only_after=tuple(s for s in after.servers if s not in before.servers),
        )

    # -- recording --------------------------------------------------------------------

    def record(self, results: Results) -> Results:
        """Record a run; the results come back with first_seen, age and new/resolved."""
        started = results.scan.started_at
        # Pass records (--include-passed) are evidence of compliance, not findings to track.
        current = [
            f for f in results.findings if f.baseline_state != "absent" and f.status != "pass"
        ]
        ran_now: dict[str, set[str]] = {}
        for rule_id, server in evaluated(results):
            ran_now.setdefault(server, set()).add(rule_id)
        now = _by_server(StoredFinding.of(f) for f in current)
        with self._transaction():
            servers: list[tuple[ServerChange, RunRecord | None]] = []
            runs: dict[int, RunRecord] = {}
            for summary in results.servers:
                before, before_ran, previous = self._last_looked(summary.name, runs)
                change = compare_server(
                    summary.name,
                    before,
                    now.get(summary.name, []),
                    before_ran=before_ran,
                    after_ran=ran_now.get(summary.name, set()),
                )
                servers.append((change, previous))
            resolved = [f for change, _ in servers for f in change.resolved]
            first_seen = self._first_seen(
                [f.fingerprint for f in current] + [f.fingerprint for f in resolved]
            )
            new_total = sum(len(change.new) for change, _ in servers)
            run_id = self._insert_run(results, current, new_total, len(resolved))
        findings = [
            _with_age(f, min(first_seen.get(f.fingerprint, started), started), started)
            if f.baseline_state != "absent" and f.status != "pass"
            else f
            for f in results.findings
        ]
        report = HistoryReport(
            store=self.display,
            run_id=run_id,
            new=new_total,
            resolved=len(resolved),
            servers=tuple(
                ServerHistory(
                    server=change.server,
                    previous_run=previous.id if previous else None,
                    previous_started_at=previous.started_at if previous else None,
                    new=tuple(f.fingerprint for f in change.new),
                    resolved=tuple(
                        _resolved(f, first_seen.get(f.fingerprint)) for f in change.resolved
                    ),
                )
                for change, previous in servers
            ),
        )
        return results.model_copy(update={"findings": tuple(findings), "history": report})

    def _insert_run(
        self, results: Results, findings: Sequence[Finding], new: int, resolved: int
    ) -> int:
        scan, summary = results.scan, results.summary
        rows = self._db.execute(
            "INSERT INTO pgwarden_runs (started_at, finished_at, tool_version, config, "
            "config_sha256, snapshot, complete, fail, error, waived, new, resolved) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                self._db.to_db(scan.started_at),
                self._db.to_db(scan.finished_at),
                results.tool.version,
                scan.config,
                scan.config_sha256,
                scan.snapshot,
                scan.complete,
                summary.fail,
                summary.error,
                summary.waived,
                new,
                resolved,
            ),
        )
        run_id = int(rows[0][0])
        self._db.executemany(
            "INSERT INTO pgwarden_run_servers (run_id, server, complete) VALUES (?, ?, ?)",
            [(run_id, s.name, s.complete) for s in results.servers],
        )
        self._db.executemany(
            "INSERT INTO pgwarden_coverage (run_id, server, rule_id, outcome) VALUES (?, ?, ?, ?)",
            [(run_id, c.server, c.rule_id, c.outcome) for c in results.coverage],
        )
        self._db.executemany(
            "INSERT INTO pgwarden_findings (run_id, fingerprint, rule_id, severity, status, "
            "server, app, resource, principal, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    f.fingerprint,
                    f.rule_id,
                    f.severity,
                    f.status,
                    f.server,
                    f.app,
                    f.resource,
                    f.principal,
                    f.message,
                )
                for f in findings
            ],
        )
        self._db.executemany(
            RECORD_LAST_RAN,
            [(server, rule_id, run_id) for rule_id, server in sorted(evaluated(results))],
        )
        # One row per fingerprint (the findings table's key holds a run's fingerprints unique).
        started = self._db.to_db(scan.started_at)
        self._db.executemany(RECORD_FIRST_SEEN, [(f.fingerprint, started) for f in findings])
        return run_id


def _with_age(finding: Finding, first_seen: datetime, started: datetime) -> Finding:
    age = max(0, (started - first_seen).days)
    return finding.model_copy(update={"first_seen": first_seen, "age_days": age})


def _resolved(finding: StoredFinding, first_seen: datetime | None) -> ResolvedFinding:
    return ResolvedFinding(**asdict(finding), first_seen=first_seen)


def _chunks(items: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


def _by_server(findings: Iterable[StoredFinding]) -> dict[str, list[StoredFinding]]:
    """Findings grouped by server, in their order."""
    grouped: dict[str, list[StoredFinding]] = {}
    for finding in findings:
        grouped.setdefault(finding.server, []).append(finding)
    return grouped
