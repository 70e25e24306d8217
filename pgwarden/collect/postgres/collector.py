"""The PostgreSQL collector: catalog state of one server, read-only, as plain data.

One connection to the DSN's database reads the server-wide catalogs; a bounded pool
of connections reads each database (one round trip per database); a sampler watches
``pg_stat_activity`` over a short window so short-lived application sessions are
seen. Every session is read-only, with a statement and lock timeout, and calls
itself ``pgwarden`` (``session.py``). What cannot be seen is recorded as a Gap, never
skipped.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import Row, RowFactory, dict_row, tuple_row
from pydantic import TypeAdapter

from pgwarden.collect.endpoint import describe_endpoint, endpoint_of
from pgwarden.collect.postgres import queries as q
from pgwarden.collect.postgres import reach
from pgwarden.collect.postgres.acl import AclSyntaxError
from pgwarden.collect.postgres.activity import SessionSampler
from pgwarden.collect.postgres.catalog import (
    KnownGrants,
    database_objects,
    databases_of,
    entra_principals,
    settings_of,
)
from pgwarden.collect.postgres.scram import ScramKeyReuse
from pgwarden.collect.postgres.session import (
    APPLICATION_NAME,
    SessionSettings,
    connect,
    escape_invalid_text,
    stores_unchecked_bytes,
)
from pgwarden.model.channels import PgCron
from pgwarden.model.errors import CollectorError, one_line
from pgwarden.model.identifiers import printable, quote_ident, setting_list
from pgwarden.model.snapshot import (
    SYSTEM_DATABASES,
    CollectionMetrics,
    Database,
    DatabaseDetail,
    Endpoint,
    Gap,
    Membership,
    PostgresSnapshot,
    Role,
    Setting,
)

DEFAULT_JOBS = 4
# Roles and memberships are dataclasses (a server may have tens of thousands), checked
# as the models they were.
_ROLES = TypeAdapter(Role)
_MEMBERSHIPS = TypeAdapter(Membership)
# A database refused for want of connection slots is read again once the others are
# done, one at a time: after each refusal, wait this long (seconds), then try again.
SLOT_RETRY_WAITS = (0.25, 0.5, 1.0, 2.0)
# Retrying stops after this many seconds of waiting in all (a server whose slots
# never free up is not waited on for each of its databases).
SLOT_RETRY_BUDGET = 20.0

ProgressCallback = Callable[[str], None]


@dataclass
class CollectionStats:
    """Counts and timings of one collection (for benchmarks and the results)."""

    statements: int = 0
    connections: int = 0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    derived_keys: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, statements: int = 0, connections: int = 0) -> None:
        with self._lock:
            self.statements += statements
            self.connections += connections

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add_phase(name, time.perf_counter() - start)

    def add_phase(self, name: str, seconds: float) -> None:
        with self._lock:
            self.phase_seconds[name] = self.phase_seconds.get(name, 0.0) + seconds

    def metrics(self) -> CollectionMetrics:
        """The counts so far, as the snapshot carries them."""
        with self._lock:
            return CollectionMetrics(
                statements=self.statements,
                connections=self.connections,
                phase_seconds=dict(self.phase_seconds),
                derived_keys=self.derived_keys,
            )


class PostgresCollector:
    """Collects one server's catalog state into a PostgresSnapshot.

    ``scram_key_reuse`` logs in to each database with SCRAM keys derived once for the
    server (``scram.py``); without it every login uses the password.
    """

    def __init__(
        self,
        dsn: str,
        *,
        jobs: int = DEFAULT_JOBS,
        session_samples: int = 4,
        session_window_seconds: float = 2.0,
        settings: SessionSettings | None = None,
        password: str | None = None,
        progress: ProgressCallback | None = None,
        databases: Callable[[Database], bool] | None = None,
        scram_key_reuse: ScramKeyReuse | None = None,
    ) -> None:
        self.dsn = dsn
        self.jobs = max(1, jobs)
        self.session_samples = max(1, session_samples)
        self.session_window_seconds = max(0.0, session_window_seconds)
        self.settings = settings or SessionSettings()
        self.password = password
        self.progress = progress or (lambda _message: None)
        self.wants_detail = databases or (lambda db: db.name not in SYSTEM_DATABASES)
        self.scram_key_reuse = scram_key_reuse
        self.stats = CollectionStats()
        # Role OID to name, from the server-wide role list: owners in each database.
        self._role_names: dict[int, str] = {}
        self._known_grants = KnownGrants()
        # Names more than one database reads as (``_read_alike``): none of them is read.
        self._alike_databases: set[str] = set()
        # The databases whose column privileges, and whose large objects, are read
        # (None: every database's).
        self._column_grants: frozenset[str] | None = None
        self._large_objects: frozenset[str] | None = None
        self._own_pids: set[int] = set()
        self._pids_lock = threading.Lock()

    # -- connections ---------------------------------------------------------------

    def _connect(self, dbname: str | None = None) -> psycopg.Connection[dict[str, Any]]:
        """A session of pgwarden's own: to ``dbname``, else the DSN's database."""
        open_session = partial(self._open, dbname=dbname)
        if self.scram_key_reuse is None:
            return open_session(None)
        return self.scram_key_reuse.log_in(open_session)

    def _open(
        self, credentials: Mapping[str, str] | None, dbname: str | None = None
    ) -> psycopg.Connection[dict[str, Any]]:
        """One login, with ``credentials`` in place of the password when given; the
        session is counted and known as pgwarden's own."""
        conn = connect(
            self.dsn,
            dbname=dbname,
            settings=self.settings,
            password=self.password,
            credentials=credentials,
        )
        self.stats.count(connections=1)
        with self._pids_lock:
            self._own_pids.add(conn.info.backend_pid)
        return conn

    def _fetch(self, conn: psycopg.Connection[Any], query: str) -> list[dict[str, Any]]:
        """The rows of one statement, as dicts."""
        return self._rows(conn, query, dict_row)

    def _rows(self, conn: psycopg.Connection[Any], query: str, rows: RowFactory[Row]) -> list[Row]:
        """The rows of one statement, made by ``rows``; each statement is counted. Text
        that is not UTF-8 (``session.EscapedText``) is read escaped: in a SQL_ASCII
        database from the start, elsewhere (a shared catalog holding a name made in one)
        by sending the statement again."""
        escaped = stores_unchecked_bytes(conn)
        while True:
            self.stats.count(statements=1)
            with conn.cursor(row_factory=rows) as cur:
                if escaped:
                    escape_invalid_text(cur)
                cur.execute(sql.SQL(query))
                try:
                    return cur.fetchall()
                except UnicodeDecodeError:
                    if escaped:
                        # Not text EscapedText reads (JSON, say): refused like any other
                        # statement, so that only what needed it is lost.
                        raise psycopg.DataError("it sent text that is not valid UTF-8") from None
                    escaped = True

    def _object_sets(
        self,
        conn: psycopg.Connection[Any],
        cur: psycopg.Cursor[tuple[Any, ...]],
        unread: dict[str, str],
    ) -> Iterator[Iterable[tuple[Any, ...]]]:
        """The rows of each of ``DATABASE_OBJECTS``, sent together in one round trip (one
        Query message, so no parameters), each statement counted: one result set after
        the other, each to be read before the next, its rows made as they are read.

        When the server refuses the round trip and the session stands, the statements are
        sent again one at a time (``_objects_one_by_one``): a catalog refused loses its
        section (recorded in ``unread``), not the database.
        """
        statements = q.DATABASE_OBJECTS
        self.stats.count(statements=len(statements))
        if stores_unchecked_bytes(conn):
            escape_invalid_text(cur)
        try:
            cur.execute(sql.SQL("; ".join(statements)))
        except psycopg.Error:
            if conn.broken or conn.closed:
                raise
            yield from self._objects_one_by_one(conn, unread)
            return
        for index in range(len(statements)):
            if index and not cur.nextset():
                raise psycopg.ProgrammingError(
                    f"expected {len(statements)} result sets, the server sent {index}"
                )
            yield iter(cur)

    def _objects_one_by_one(
        self, conn: psycopg.Connection[Any], unread: dict[str, str]
    ) -> Iterator[Iterable[tuple[Any, ...]]]:
        """``DATABASE_OBJECTS``' rows, a statement at a time: each refused is recorded
        under its section (``DATABASE_OBJECT_SECTIONS``) in ``unread`` with why, and gives
        no rows; the schemas refused, or the session lost, lose the database (raised)."""
        for statement, section in zip(q.DATABASE_OBJECTS, q.DATABASE_OBJECT_SECTIONS, strict=True):
            try:
                rows = self._rows(conn, statement, tuple_row)
            except psycopg.Error as exc:
                if section is None or conn.broken or conn.closed:
                    raise
                unread[section] = one_line(exc)
                rows = []
            yield rows

    # -- collection ----------------------------------------------------------------

    def collect(self) -> PostgresSnapshot:
        """Collect everything; CollectorError only when the server cannot be used at all."""
        endpoint = endpoint_of(self.dsn)
        where = describe_endpoint(endpoint)
        with self.stats.phase("connect"):
            try:
                main = self._connect()
            except psycopg.Error as exc:
                error = one_line(exc)
                raise CollectorError(f"cannot connect to {where}: {error}{_hint(error)}") from None
            if self.scram_key_reuse is not None:
                self.scram_key_reuse.start(
                    main,
                    self._open,
                    timeout=float(self.settings.connect_timeout_s),
                    where=where,
                )
        try:
            return self._collect(main, where, endpoint)
        except psycopg.Error as exc:
            # The server went away or a shared catalog stayed locked past lock_timeout:
            # without the server-wide catalogs no rule can judge anything.
            raise CollectorError(f"{where}: reading the catalogs failed: {one_line(exc)}") from None
        finally:
            self._wait_for_keys()  # their checking login is closed before the collection ends

    def _wait_for_keys(self) -> None:
        """Wait for the SCRAM keys of the logins to come, if any are being derived."""
        if self.scram_key_reuse is not None:
            self.scram_key_reuse.wait()
            self.stats.derived_keys = self.scram_key_reuse.in_use

    def _collect(
        self,
        main: psycopg.Connection[dict[str, Any]],
        where: str,
        endpoint: Endpoint,
    ) -> PostgresSnapshot:
        with main:
            with self.stats.phase("server"):
                info = self._fetch(main, q.SERVER_INFO)[0]
                if info["read_only"] != "on":
                    raise CollectorError(f"{where}: the session is not read-only; refusing to scan")
                version_num = int(info["version_num"])
                gaps: list[Gap] = []
                settings = settings_of(self._fetch(main, q.SETTINGS), version_num, gaps)
                databases = tuple(databases_of(self._fetch(main, q.DATABASES)))
                role_rows = self._fetch(main, q.ROLES)
                self._role_names = {row.pop("oid"): row["name"] for row in role_rows}
                gaps.extend(_read_alike("roles", _alike(row["name"] for row in role_rows)))
                alike = _alike(db.name for db in databases)
                gaps.extend(_read_alike("databases", alike))
                self._alike_databases = set(alike)
                self._column_grants, self._large_objects = self._sparse_catalogs(main)
            self.progress(f"{where}: {len(databases)} databases, {len(role_rows)} roles")
            self._wait_for_keys()
            sampler = SessionSampler(
                self._connect, self._fetch, self.session_samples, self.session_window_seconds
            )
            sampler.start()
            # The databases are read from here on (they need only the role names); the
            # rest of the server-wide work runs meanwhile, so the two phases overlap.
            try:
                with self._database_reads(databases) as pending:
                    with self.stats.phase("server"):
                        entra = self._entra_principals(main, gaps)
                        roles = tuple(
                            _ROLES.validate_python({**row, **entra.get(row["name"], {})})
                            for row in role_rows
                        )
                        # Each edge names its roles by the role list's own strings.
                        names = {name: name for name in self._role_names.values()}
                        memberships = tuple(
                            _MEMBERSHIPS.validate_python(_named_by(row, names))
                            for row in self._fetch(
                                main,
                                q.MEMBERSHIPS_16 if version_num >= 160000 else q.MEMBERSHIPS_11,
                            )
                        )
                        cron = self._pg_cron(main, info, settings, gaps)
                    details = pending()
            except BaseException:
                sampler.stop()
                raise
            with self.stats.phase("sessions"):
                sessions, session_gap = sampler.join()
        if session_gap is not None:
            gaps.append(session_gap)
        elif not info["reads_all_stats"]:
            gaps.append(
                Gap(
                    section="sessions.detail",
                    reason="client address, state and start of other roles' sessions are hidden",
                    fix=f"GRANT pg_monitor TO {quote_ident(str(info['connected_as']))}",
                )
            )
        with self._pids_lock:
            own = set(self._own_pids)
        visible_sessions = (
            None
            if sessions is None
            else tuple(
                s for s in sessions if not (s.pid in own and s.application_name == APPLICATION_NAME)
            )
        )
        for detail in details:
            if not detail.collected:
                gaps.append(
                    Gap(
                        section=f"database:{detail.name}",
                        reason=detail.error or "not collected",
                        fix=_fix_for(detail.error or "", detail.name, str(info["connected_as"])),
                    )
                )
        return PostgresSnapshot(
            version=str(info["version"]).split()[0],
            version_num=version_num,
            connected_as=str(info["connected_as"]),
            endpoint=endpoint,
            settings=settings,
            databases=databases,
            roles=roles,
            memberships=memberships,
            sessions=visible_sessions,
            session_samples=sampler.samples_taken,
            database_details=tuple(details),
            gaps=tuple(gaps),
            stats=self.stats.metrics(),
            connected_database=str(info["database"]),
            server_address=info["server_address"],
            server_port=info["server_port"],
            pg_cron=cron,
        )

    def _sparse_catalogs(
        self, main: psycopg.Connection[dict[str, Any]]
    ) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """The databases holding column privileges, and those holding large objects
        (``SPARSE_CATALOG_DATABASES``); None each, so that every database's are read,
        when the server would not say."""
        try:
            rows = self._fetch(main, q.SPARSE_CATALOG_DATABASES)
        except psycopg.Error:
            return None, None
        return (
            frozenset(row["name"] for row in rows if row["holds"] == "column grants"),
            frozenset(row["name"] for row in rows if row["holds"] == "large objects"),
        )

    def _entra_principals(
        self, main: psycopg.Connection[dict[str, Any]], gaps: list[Gap]
    ) -> dict[str, dict[str, str | None]]:
        """Which roles are Microsoft Entra principals; a refusal is a gap of its own
        (the session is in autocommit: the statements after it still run)."""
        try:
            return entra_principals(self._fetch(main, q.ENTRA_LABELS), self._role_names)
        except psycopg.errors.InsufficientPrivilege as exc:
            gaps.append(
                Gap(
                    section="entra_labels",
                    reason=f"the roles' Microsoft Entra labels are hidden: {one_line(exc)}",
                    fix="let the auditor read pg_catalog.pg_shseclabel (PostgreSQL grants "
                    "SELECT on it to PUBLIC)",
                )
            )
            return {}

    def _pg_cron(
        self,
        main: psycopg.Connection[dict[str, Any]],
        info: Mapping[str, Any],
        settings: Mapping[str, Setting],
        gaps: list[Gap],
    ) -> PgCron | None:
        """pg_cron's jobs, read where it keeps them; None with a gap when they cannot be.

        pg_cron defines ``cron.database_name`` only when it is loaded; without it, a
        visible ``shared_preload_libraries`` without pg_cron says it is not.
        """
        auditor = quote_ident(str(info["connected_as"]))
        name = settings.get("cron.database_name")
        if name is None:
            preload = settings.get("shared_preload_libraries")
            if preload is not None and "pg_cron" not in setting_list(preload.value):
                return PgCron()
            gaps.append(
                Gap(
                    section="cron",
                    reason="whether pg_cron is loaded is hidden from the auditor "
                    "(shared_preload_libraries and cron.database_name are not visible)",
                    fix=f"GRANT pg_read_all_settings TO {auditor}",
                )
            )
            return None
        database = name.value
        try:
            if database == info["database"]:
                return reach.pg_cron(database, self._fetch(main, q.CRON_JOBS))
            with self._connect(database) as conn:
                return reach.pg_cron(database, self._fetch(conn, q.CRON_JOBS))
        except psycopg.errors.UndefinedTable:
            return PgCron(database=database)  # loaded, but CREATE EXTENSION never ran
        except psycopg.Error as exc:
            error = one_line(exc)
            gaps.append(
                Gap(
                    section="cron",
                    reason=f"pg_cron's jobs in database {database!r} could not be read: {error}",
                    fix=_cron_fix(error, database, auditor),
                )
            )
            return None

    @contextmanager
    def _database_reads(
        self, databases: tuple[Database, ...]
    ) -> Iterator[Callable[[], list[DatabaseDetail]]]:
        """Start reading every database in detail; yields a wait for the details.

        The pool starts on entry; leaving the block early (an error, Ctrl-C) starts no
        new database, and the running ones end within their statement timeout and close
        their sessions before the error goes on.
        """
        targets = [
            db
            for db in databases
            if db.allow_connections
            and not db.invalid
            and not db.is_template
            and self.wants_detail(db)
            # Two databases read as one name: which one a login by that name opens is
            # not known (``_read_alike``); neither is read.
            and db.name not in self._alike_databases
        ]
        if not targets:
            self.stats.add_phase("databases", 0.0)
            yield list
            return
        started = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=min(self.jobs, len(targets)))
        try:
            reads = pool.map(self._read_database, targets)
            yield lambda: self._retried(targets, list(reads))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.stats.add_phase("databases", time.perf_counter() - started)

    def _retried(
        self, targets: list[Database], details: list[DatabaseDetail]
    ) -> list[DatabaseDetail]:
        """``details``, with each database refused for want of connection slots read
        again, one at a time, after the others (``SLOT_RETRY_WAITS``): on a busy shared
        server the parallel sessions (``--jobs``) can meet its connection limit, and the
        slots free up as the other reads end."""
        waited = 0.0
        for index, detail in enumerate(details):
            waits = iter(SLOT_RETRY_WAITS)
            tries = 0
            while not detail.collected and out_of_slots(detail.error or ""):
                wait = next(waits, None)
                if wait is None or waited + wait > SLOT_RETRY_BUDGET:
                    break
                time.sleep(wait)
                waited += wait
                tries += 1
                detail = self._database_detail(targets[index])
            if tries and not detail.collected:
                again = f"refused again {tries} time(s), one read at a time"
                detail = detail.model_copy(update={"error": f"{detail.error} ({again})"})
            details[index] = detail
        return details

    def _read_database(self, database: Database) -> DatabaseDetail:
        """``_database_detail``, counted once in the progress (a retry is not)."""
        try:
            return self._database_detail(database)
        finally:
            self.progress(f"database {database.name}")

    def _database_detail(self, database: Database) -> DatabaseDetail:
        columns = self._column_grants is None or database.name in self._column_grants
        objects = self._large_objects is None or database.name in self._large_objects
        # Sections of the database that could not be read, with why: the rest of the
        # database stands (the session is in autocommit).
        unread: dict[str, str] = {}
        try:
            with (
                self._connect(database.name) as conn,
                conn.cursor(row_factory=tuple_row) as cur,
            ):
                # Read as the rows are joined: the session closes when they are.
                return database_objects(
                    database.name,
                    self._object_sets(conn, cur, unread),
                    self._role_names,
                    self._known_grants,
                    self._section(conn, q.FOREIGN_SERVER_MAPPINGS, "foreign_servers", unread),
                    self._section(conn, q.COLUMN_GRANTS, "column_grants", unread)
                    if columns
                    else tuple,
                    self._section(conn, q.LARGE_OBJECTS, "large_objects", unread)
                    if objects
                    else tuple,
                    unread,
                )
        except psycopg.Error as exc:
            return DatabaseDetail(name=database.name, collected=False, error=one_line(exc))
        except UnicodeDecodeError:
            # Only a SQL_ASCII database stores text that is not UTF-8, and its text is read
            # escaped: should another ever send some, the database is lost, not the scan.
            return DatabaseDetail(
                name=database.name,
                collected=False,
                error="its catalogs hold text that is not valid UTF-8",
            )
        except AclSyntaxError as exc:
            return DatabaseDetail(name=database.name, collected=False, error=str(exc))

    def _section(
        self, conn: psycopg.Connection[Any], query: str, name: str, unread: dict[str, str]
    ) -> Callable[[], Iterable[tuple[Any, ...]]]:
        """A reader of ``query``'s rows that, when the server refuses them, records why
        under ``name`` in ``unread`` and gives none: one section of a database lost,
        not the database."""

        def read() -> Iterable[tuple[Any, ...]]:
            try:
                return self._rows(conn, query, tuple_row)
            except psycopg.Error as exc:
                unread[name] = one_line(exc)
                return ()

        return read


def _alike(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that more than one holds, sorted: only a name made in a
    SQL_ASCII database, holding bytes that are not UTF-8 and read escaped
    (``session.EscapedText``), can read as another's."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _read_alike(kind: str, alike: list[str]) -> list[Gap]:
    """A gap when more than one of ``kind`` (roles, databases) reads as each of
    ``alike`` (``_alike``): the analysis knows roles and databases by name and cannot
    tell them apart, so the scan is incomplete."""
    if not alike:
        return []
    shown = ", ".join(repr(printable(name)) for name in alike[:3])
    more = f" and {len(alike) - 3} more" if len(alike) > 3 else ""
    one = kind[:-1]
    return [
        Gap(
            section=kind,
            reason=f"more than one {one} reads as {shown}{more} once the bytes of its name "
            f"that are not UTF-8 are escaped: the {kind} so named are not told apart",
            fix=f"rename the {one} whose name is not valid UTF-8 (ALTER {one.upper()} ... "
            "RENAME TO ...), from a session whose client_encoding matches its bytes",
        )
    ]


def _cron_fix(error: str, database: str, auditor: str) -> str:
    """What would let ``auditor`` (quoted) read ``cron.job``, judged by the error."""
    if "permission denied for schema" in error:
        return f"GRANT USAGE ON SCHEMA cron TO {auditor} (in database {quote_ident(database)})"
    if "permission denied" in error:
        return f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {auditor}"
    return "check that the auditor can connect to pg_cron's database and scan again"


def _hint(error: str) -> str:
    """What to do about a refused first login, when the error says."""
    if "unsupported startup parameter" in error:
        # PgBouncer (Azure's built-in one listens on 6432) refuses the ``options`` that
        # make every pgwarden session read-only and time-limited.
        return (
            " (a connection pooler such as PgBouncer refuses the settings that keep "
            "pgwarden's sessions read-only: connect to the server itself, on Azure port "
            "5432, not the built-in PgBouncer's 6432)"
        )
    return ""


def out_of_slots(error: str) -> bool:
    """Whether a login was refused for want of a connection slot (SQLSTATE 53300: the
    server's, a role's or a database's limit, or the slots reserved for others)."""
    return any(
        text in error
        for text in (
            "too many connections",
            "too many clients",
            "remaining connection slots are reserved",
        )
    )


def _fix_for(error: str, database: str, auditor: str) -> str:
    """What would let the auditor read a database it could not, judged by the error."""
    if "permission denied" in error:
        return f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {quote_ident(auditor)}"
    if out_of_slots(error):
        return (
            "raise the connection limit of the auditor or the database, or scan with fewer "
            "parallel connections (--jobs)"
        )
    if "timeout" in error or "canceling statement" in error:
        return "another session held a catalog lock; scan again, or raise the lock timeout"
    return "check that the database accepts connections from the auditor and scan again"


def _named_by(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """``row`` of a membership with its roles named by ``names``' own strings, not
    copies of them (50,000 memberships name three roles each)."""
    for key in ("role", "member", "grantor"):
        value = row.get(key)
        if value is not None:
            row[key] = names.get(value, value)
    return row
