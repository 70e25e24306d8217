"""The PostgreSQL collector: catalog state of one server, read-only, as plain data.

One connection to the DSN's database reads the server-wide catalogs; a bounded pool
of connections reads each database (one round trip per database); a sampler watches
``pg_stat_activity`` over a short window so short-lived application sessions are
seen. Every session is read-only, with a statement and lock timeout, and calls
itself ``pgwarden``. What cannot be seen is recorded as a Gap, never skipped.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import psycopg
from psycopg import sql
from psycopg.adapt import AdaptersMap
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import Row, RowFactory, dict_row, tuple_row
from psycopg.types import TypeInfo

from pgwarden.collect.endpoint import describe_endpoint, endpoint_of
from pgwarden.collect.postgres import queries as q
from pgwarden.collect.postgres import scram
from pgwarden.collect.postgres.acl import AclSyntaxError, parse_acl, parse_acl_item
from pgwarden.model.errors import CollectorError, one_line
from pgwarden.model.identifiers import quote_ident
from pgwarden.model.snapshot import (
    SYSTEM_DATABASES,
    AclItem,
    CollectionMetrics,
    Database,
    DatabaseDetail,
    DefaultPrivilege,
    Endpoint,
    Gap,
    Membership,
    ObjectGrant,
    Ownership,
    PostgresSnapshot,
    Role,
    SchemaInfo,
    Session,
    Setting,
)

log = logging.getLogger(__name__)

APPLICATION_NAME = "pgwarden"
DEFAULT_JOBS = 4
DEFAULT_STATEMENT_TIMEOUT_MS = 15_000
DEFAULT_LOCK_TIMEOUT_MS = 3_000
DEFAULT_CONNECT_TIMEOUT_S = 10

# Settings the rules read; their absence from pg_settings means the auditor may not see them.
WATCHED_SETTINGS = (
    "password_encryption",
    "ssl",
    "ssl_min_protocol_version",
    "log_connections",
    "log_disconnections",
    "log_checkpoints",
    "max_connections",
    "superuser_reserved_connections",
)
# Settings that only exist from a given server_version_num on: watching them on an
# older server would report a visibility gap for a setting that cannot exist.
WATCHED_SETTINGS_SINCE = {"reserved_connections": 160000}

_DEFAULT_ACL_TYPES = {"r": "table", "S": "sequence", "f": "function", "T": "type", "n": "schema"}
# Relation kinds that hold data or name it, and routine kinds (prefixed "routine:").
_RELKINDS = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "S": "sequence",
    "f": "foreign table",
    "routine:f": "function",
    "routine:p": "procedure",
    "routine:a": "aggregate",
    "routine:w": "window function",
}

# aclitem and aclitem[] have fixed OIDs: registered without asking the server, so
# ACL columns load as lists of item texts for collectors.acl. Registered once, on the
# adapters every pgwarden session starts from (each connection copies them on write).
ACLITEM = TypeInfo("aclitem", 1033, 1034)
_ADAPTERS = AdaptersMap(psycopg.adapters)
ACLITEM.register(_ADAPTERS)

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


@dataclass(frozen=True)
class SessionSettings:
    """Limits every pgwarden session runs under."""

    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S

    def options(self, existing: str | None) -> str:
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
    stats: CollectionStats | None = None,
    password: str | None = None,
    keys: scram.ScramKeys | None = None,
) -> psycopg.Connection[dict[str, Any]]:
    """Open one read-only, time-limited pgwarden session (logging in with ``keys``
    instead of the password when given)."""
    extra = dict(_session_parameters(dsn, settings or SessionSettings()))
    if dbname is not None:
        extra["dbname"] = dbname
    if keys is not None:
        extra.update(keys.parameters(), password="")
    elif password is not None:
        extra["password"] = password
    conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row, context=_ADAPTERS, **extra)
    if stats is not None:
        stats.count(connections=1)
    return conn


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


class PostgresCollector:
    """Collects one server's catalog state into a PostgresSnapshot."""

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
    ) -> None:
        self.dsn = dsn
        self.jobs = max(1, jobs)
        self.session_samples = max(1, session_samples)
        self.session_window_seconds = max(0.0, session_window_seconds)
        self.settings = settings or SessionSettings()
        self.password = password
        self.progress = progress or (lambda _message: None)
        self.wants_detail = databases or (lambda db: db.name not in SYSTEM_DATABASES)
        self.stats = CollectionStats()
        # Role OID to name, from the server-wide role list: owners in each database.
        self._role_names: dict[int, str] = {}
        self._known_grants: dict[GrantKey, ObjectGrant | None] = {}
        self._own_pids: set[int] = set()
        self._pids_lock = threading.Lock()
        # SCRAM keys derived once for the logins after the main session's (scram.py).
        self._keys: scram.ScramKeys | None = None

    # -- connections ---------------------------------------------------------------

    def _connect(
        self, dbname: str | None = None, *, keys: scram.ScramKeys | None = None
    ) -> psycopg.Connection[dict[str, Any]]:
        """A session of pgwarden's own: to ``dbname``, else the DSN's database."""
        checking = keys is not None
        keys = keys or self._keys
        login = partial(connect, self.dsn, dbname=dbname, settings=self.settings, stats=self.stats)
        try:
            conn = login(password=self.password, keys=keys)
        except psycopg.OperationalError:
            if keys is None or checking:
                raise
            # The keys are checked once (_derive_keys), so a login they fail is one the
            # password may still pass (another pg_hba method for this database): the
            # password decides, and its error is the one reported.
            conn = login(password=self.password)
        with self._pids_lock:
            self._own_pids.add(conn.info.backend_pid)
        return conn

    def _derive_keys(self, main: psycopg.Connection[Any], where: str) -> threading.Thread:
        """Start deriving the SCRAM keys for the logins to come (and checking them with
        one login), beside the server-wide reads, so a scan of many databases runs
        PBKDF2 once rather than once per database. Join the thread before those logins."""

        def derive(login: scram.Login) -> None:
            try:
                keys = scram.keys_for(login, float(self.settings.connect_timeout_s))
                self._connect(keys=keys).close()
            except Exception as exc:  # an optimisation: any failure means no keys
                reason = one_line(exc) if isinstance(exc, psycopg.Error) else str(exc)
                log.debug("%s: each login derives its own SCRAM keys (%s)", where, reason)
                return
            log.debug("%s: the logins to each database use SCRAM keys derived once", where)
            self._keys = keys
            self.stats.derived_keys = True

        login = scram.Login.of(main)
        thread = threading.Thread(target=derive, args=(login,), name="pgwarden-scram", daemon=True)
        thread.start()
        return thread

    def _fetch(self, conn: psycopg.Connection[Any], query: str) -> list[dict[str, Any]]:
        """The rows of one statement, as dicts."""
        return self._rows(conn, query, dict_row)

    def _rows(self, conn: psycopg.Connection[Any], query: str, rows: RowFactory[Row]) -> list[Row]:
        """The rows of one statement, made by ``rows``; each statement is counted."""
        self.stats.count(statements=1)
        with conn.cursor(row_factory=rows) as cur:
            cur.execute(sql.SQL(query))
            return cur.fetchall()

    def _result_sets(
        self, conn: psycopg.Connection[Any], statements: tuple[str, ...]
    ) -> list[list[tuple[Any, ...]]]:
        """The rows of each statement, sent together in one round trip (one Query
        message, so no parameters); each statement is counted."""
        self.stats.count(statements=len(statements))
        with conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(sql.SQL("; ".join(statements)))
            result_sets = [cur.fetchall()]
            while cur.nextset():
                result_sets.append(cur.fetchall())
        if len(result_sets) != len(statements):
            raise psycopg.ProgrammingError(
                f"expected {len(statements)} result sets, the server sent {len(result_sets)}"
            )
        return result_sets

    # -- collection ----------------------------------------------------------------

    def collect(self) -> PostgresSnapshot:
        """Collect everything; CollectorError only when the server cannot be used at all."""
        endpoint = endpoint_of(self.dsn)
        where = describe_endpoint(endpoint)
        with self.stats.phase("connect"):
            try:
                main = self._connect()
            except psycopg.Error as exc:
                raise CollectorError(f"cannot connect to {where}: {one_line(exc)}") from None
            deriving = self._derive_keys(main, where)
        try:
            return self._collect(main, where, endpoint, deriving)
        except psycopg.Error as exc:
            # The server went away or a shared catalog stayed locked past lock_timeout:
            # without the server-wide catalogs no rule can judge anything.
            raise CollectorError(f"{where}: reading the catalogs failed: {one_line(exc)}") from None
        finally:
            deriving.join()  # its checking login is closed before the collection ends

    def _collect(
        self,
        main: psycopg.Connection[dict[str, Any]],
        where: str,
        endpoint: Endpoint,
        deriving: threading.Thread,
    ) -> PostgresSnapshot:
        with main:
            with self.stats.phase("server"):
                info = self._fetch(main, q.SERVER_INFO)[0]
                if info["read_only"] != "on":
                    raise CollectorError(f"{where}: the session is not read-only; refusing to scan")
                version_num = int(info["version_num"])
                gaps: list[Gap] = []
                settings = self._settings(main, gaps, version_num)
                databases = tuple(self._databases(main))
                role_rows = self._fetch(main, q.ROLES)
                self._role_names = {row.pop("oid"): row["name"] for row in role_rows}
            self.progress(f"{where}: {len(databases)} databases, {len(role_rows)} roles")
            deriving.join()
            sampler = _SessionSampler(self, self.session_samples, self.session_window_seconds)
            sampler.start()
            # The databases are read from here on (they need only the role names); the
            # rest of the server-wide work runs meanwhile, so the two phases overlap.
            try:
                with self._database_reads(databases) as pending:
                    with self.stats.phase("server"):
                        roles = tuple(Role.model_validate(row) for row in role_rows)
                        memberships = tuple(
                            Membership.model_validate(row)
                            for row in self._fetch(
                                main,
                                q.MEMBERSHIPS_16 if version_num >= 160000 else q.MEMBERSHIPS_11,
                            )
                        )
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
        )

    def _settings(
        self, conn: psycopg.Connection[dict[str, Any]], gaps: list[Gap], version_num: int
    ) -> dict[str, Setting]:
        rows = self._fetch(conn, q.SETTINGS)
        settings = {
            row["name"]: Setting(
                name=row["name"], value=row["setting"] or "", unit=row["unit"], source=row["source"]
            )
            for row in rows
        }
        watched = [
            *WATCHED_SETTINGS,
            *(name for name, since in WATCHED_SETTINGS_SINCE.items() if version_num >= since),
        ]
        for name in watched:
            if name not in settings:
                gaps.append(
                    Gap(
                        section=f"setting:{name}",
                        reason=f"setting {name} is not visible to the auditor",
                        fix="GRANT pg_read_all_settings TO <auditor> (or pg_monitor)",
                    )
                )
        return settings

    def _databases(self, conn: psycopg.Connection[dict[str, Any]]) -> Iterator[Database]:
        for row in self._fetch(conn, q.DATABASES):
            try:
                acl = parse_acl(row["acl"])
            except AclSyntaxError as exc:
                raise CollectorError(f"database {row['name']}: {exc}") from None
            yield Database(
                name=row["name"],
                owner=row["owner"],
                allow_connections=row["allow_connections"],
                is_template=row["is_template"],
                connection_limit=row["connection_limit"],
                acl_is_default=row["acl_is_default"],
                acl=acl,
            )

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
            if db.allow_connections and not db.is_template and self.wants_detail(db)
        ]
        if not targets:
            self.stats.add_phase("databases", 0.0)
            yield list
            return
        started = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=min(self.jobs, len(targets)))
        try:
            reads = pool.map(self._database_detail, targets)
            yield lambda: list(reads)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.stats.add_phase("databases", time.perf_counter() - started)

    def _database_detail(self, database: Database) -> DatabaseDetail:
        try:
            with self._connect(database.name) as conn:
                result_sets = self._result_sets(conn, q.DATABASE_OBJECTS)
            return _database_objects(
                database.name, result_sets, self._role_names, self._known_grants
            )
        except psycopg.Error as exc:
            return DatabaseDetail(name=database.name, collected=False, error=one_line(exc))
        except AclSyntaxError as exc:
            return DatabaseDetail(name=database.name, collected=False, error=str(exc))
        finally:
            self.progress(f"database {database.name}")


def _user_schema(name: str) -> bool:
    """Not a system schema (pg_catalog, information_schema, TOAST or temporary ones)."""
    return name not in ("pg_catalog", "information_schema") and not name.startswith(
        ("pg_toast", "pg_temp_")
    )


def _schema_default_acl(owner: str) -> tuple[AclItem, ...]:
    """``acldefault('n', owner)``: a schema's owner holds USAGE and CREATE, nobody else."""
    return (AclItem(grantee=owner, grantor=owner, privileges=("CREATE", "USAGE")),)


# A grant as read: schema, name, kind, owner, ACL item text, routine arguments.
GrantKey = tuple[str, str, str, str, str, str | None]
_UNSEEN: Any = object()


def _database_objects(
    database: str,
    result_sets: list[list[tuple[Any, ...]]],
    role_names: Mapping[int, str],
    known_grants: dict[GrantKey, ObjectGrant | None],
) -> DatabaseDetail:
    """Join the result sets of ``DATABASE_OBJECTS`` (see its comment) into a DatabaseDetail.

    ``known_grants`` holds the grants read so far, shared by every database of the
    server: databases made from the same migrations (an app's, or a tenant's) repeat
    the same grants, which are then built once and shared (they are immutable).
    """

    def role(oid: int) -> str:
        # A role created after the role list was read: named as pg_get_userbyid would.
        return role_names.get(oid) or f"unknown (OID={oid})"

    schema_rows, relation_rows, routine_rows, default_rows = result_sets
    namespaces = {oid: name for oid, name, _owner, _acl in schema_rows}
    user_namespaces = {oid for oid, name in namespaces.items() if _user_schema(name)}
    schemas = sorted(
        (
            SchemaInfo(
                name=name,
                owner=role(owner),
                acl=parse_acl(acl) if acl is not None else _schema_default_acl(role(owner)),
            )
            for oid, name, owner, acl in schema_rows
            if oid in user_namespaces
        ),
        key=lambda s: s.name,
    )
    defaults = [
        DefaultPrivilege(
            role=role(owner),
            schema_name=namespaces.get(namespace),
            object_type=_DEFAULT_ACL_TYPES.get(kind, "table"),
            acl=parse_acl(acl),
        )
        for namespace, owner, kind, acl in default_rows
    ]
    grants: list[ObjectGrant] = []

    def grant(
        namespace: int, name: str, owner: str, acl: list[str], kind: str, arguments: str | None
    ) -> None:
        schema = namespaces[namespace]
        for text in acl:
            key = (schema, name, kind, owner, text, arguments)
            known = known_grants.get(key, _UNSEEN)
            if known is _UNSEEN:
                item = parse_acl_item(text)
                known = known_grants[key] = (
                    None  # the owner's own privileges are ownership, not a grant
                    if item.grantee == owner
                    else ObjectGrant(
                        schema_name=schema,
                        name=sys.intern(name),
                        kind=_RELKINDS[kind],
                        owner=owner,
                        grantee=item.grantee,
                        privileges=item.privileges,
                        grantor=item.grantor,
                        arguments=arguments,
                    )
                )
            if known is not None:
                grants.append(known)

    owned: dict[tuple[str, str], int] = {}
    for namespace, name, owner, acl, kind in relation_rows:
        if namespace not in user_namespaces or kind not in _RELKINDS:
            continue  # system schemas; indexes, TOAST tables, composite types
        key = (role(owner), kind)
        owned[key] = owned.get(key, 0) + 1
        if acl is not None:
            grant(namespace, name, key[0], acl, kind, None)
    for namespace, name, owner, acl, kind, arguments in routine_rows:
        if namespace in user_namespaces and f"routine:{kind}" in _RELKINDS:
            grant(namespace, name, role(owner), acl, f"routine:{kind}", arguments)
    return DatabaseDetail(
        name=database,
        collected=True,
        schemas=tuple(schemas),
        default_privileges=tuple(defaults),
        object_grants=tuple(grants),
        ownership=tuple(
            Ownership(role=owner, kind=_RELKINDS[kind], count=count)
            for (owner, kind), count in sorted(owned.items())
        ),
    )


class _SessionSampler:
    """Samples pg_stat_activity several times over a window, on its own connection."""

    def __init__(self, collector: PostgresCollector, samples: int, window: float) -> None:
        self.collector = collector
        self.samples = samples
        self.window = window
        self.samples_taken = 0
        self._sessions: dict[tuple[int, str], Session] | None = {}
        self._gap: Gap | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pgwarden-sessions", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the sampling early (the collection failed) and close its session."""
        self._stopped.set()
        self._thread.join()

    def join(self) -> tuple[tuple[Session, ...] | None, Gap | None]:
        self._thread.join()
        if self._sessions is None:
            return None, self._gap
        return tuple(sorted(self._sessions.values(), key=lambda s: s.pid)), self._gap

    def _run(self) -> None:
        interval = self.window / (self.samples - 1) if self.samples > 1 else 0.0
        try:
            with self.collector._connect() as conn:
                for index in range(self.samples):
                    if index and self._stopped.wait(interval):
                        return
                    self._take(self.collector._fetch(conn, q.SESSIONS))
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


def _fix_for(error: str, database: str, auditor: str) -> str:
    """What would let the auditor read a database it could not, judged by the error."""
    if "permission denied" in error:
        return f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {quote_ident(auditor)}"
    if "too many connections" in error:
        return (
            "raise the connection limit of the auditor or the database, or scan with fewer "
            "parallel connections (--jobs)"
        )
    if "timeout" in error or "canceling statement" in error:
        return "another session held a catalog lock; scan again, or raise the lock timeout"
    return "check that the database accepts connections from the auditor and scan again"
