"""PGW-AUD: an audit trail an investigation can use (pgaudit, log_line_prefix, DDL).

Settings are read as PGW-LOG-001 reads them: Azure's server parameters when ARM was
read, else ``pg_settings``. ``shared_preload_libraries`` is shown only to superusers
and members of ``pg_read_all_settings`` (``pg_monitor``): hidden, it is an ``error``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pgwarden.model.config import PGAUDIT_CLASSES
from pgwarden.model.frameworks.catalogue import CIS_POSTGRESQL_16, CIS_POSTGRESQL_17, NIST_800_53
from pgwarden.model.identifiers import setting_list
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import set_parameter
from pgwarden.rules.base import Control, Rule, ServerContext, Verdict, quote_ident
from pgwarden.rules.server_settings import SettingsView, alter_system, read_settings

PRELOAD = "shared_preload_libraries"
PGAUDIT_LOG = "pgaudit.log"
LINE_PREFIX = "log_line_prefix"
DESTINATION = "log_destination"
LOG_STATEMENT = "log_statement"

# CIS PostgreSQL 16 and 17 number these items alike.
CIS_PGAUDIT = (Control(CIS_POSTGRESQL_16, "3.2"), Control(CIS_POSTGRESQL_17, "3.2"))
CIS_LINE_PREFIX = (Control(CIS_POSTGRESQL_16, "3.1.24"), Control(CIS_POSTGRESQL_17, "3.1.24"))
CIS_LOG_STATEMENT = (Control(CIS_POSTGRESQL_16, "3.1.25"), Control(CIS_POSTGRESQL_17, "3.1.25"))
AUDIT_GENERATION = Control(NIST_800_53, "AU-12")

# What an investigation needs on every log line, and the escapes that give it.
PREFIX_FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("u",),
    "database": ("d",),
    "application": ("a",),
    "client": ("h", "r"),
    "time": ("m", "t", "n"),
    "process": ("p", "c"),
}
SUGGESTED_PREFIX = "%m [%p] %quser=%u db=%d app=%a client=%h "
# Destinations whose records carry every field whatever the prefix.
STRUCTURED_DESTINATIONS = frozenset({"csvlog", "jsonlog"})
_ESCAPE = re.compile(r"%-?\d*([a-zA-Z%])")


def pgaudit_classes(value: str) -> set[str]:
    """The classes ``pgaudit.log`` logs: a comma list where ``-class`` takes one away."""
    every = set(PGAUDIT_CLASSES) - {"all"}
    found: set[str] = set()
    for token in (t.strip().lower() for t in value.split(",")):
        remove = token.startswith("-")
        name = token.lstrip("+-").strip()
        named = every if name == "all" else {name} & every
        if remove:
            found -= named
        else:
            found |= named
    return found


def prefix_escapes(prefix: str) -> set[str]:
    """The escapes of a ``log_line_prefix`` (``%%`` is a literal percent sign)."""
    return {m.group(1) for m in _ESCAPE.finditer(prefix) if m.group(1) != "%"}


def _unreadable(context: ServerContext, why: str) -> Verdict:
    return Verdict(
        resource=f"server/{context.name}",
        status="error",
        message=f"audit logging cannot be judged: {why}",
    )


def _hidden(view: SettingsView, name: str, auditor: str | None) -> Verdict:
    """A setting the source did not show: hidden from the auditor, or not reported."""
    fix = (
        f"GRANT pg_read_all_settings TO {quote_ident(auditor)};"
        if view.source == "postgres" and auditor
        else None
    )
    return Verdict(
        resource=f"setting/{name}",
        status="error",
        message=f"{name} was not reported by {view.where}"
        + (" (shown only to superusers and pg_read_all_settings)" if fix else ""),
        remediation=fix,
    )


def _set(
    snapshot: ServerSnapshot, context: ServerContext, view: SettingsView, name: str, value: str
) -> str:
    if view.source == "azure":
        return set_parameter(snapshot, context, name, f"'{value}'")
    return alter_system(name, value)


def _auditor(snapshot: ServerSnapshot) -> str | None:
    return snapshot.postgres.connected_as if snapshot.postgres else None


class PgauditNotLogging(Rule):
    """pgaudit is not loaded, or does not log the classes policy asks for.

    On a server shared by several apps, the standard log says that a session ran a
    statement, if ``log_statement`` asks for it; pgaudit says what it did to which
    object in a form auditors can search (``AUDIT: SESSION,...``), including role
    changes (GRANT, ALTER ROLE, CREATE ROLE) and DDL that would otherwise hide in
    statement text. Without it nobody can reconstruct who granted a tenant access to
    another, or when.

    Violation: ``shared_preload_libraries`` does not list ``pgaudit``, or ``pgaudit.log``
    does not log every class in ``[policy] pgaudit_log`` (default ``ddl`` and ``role``;
    ``all`` and ``-class`` are understood). An empty ``pgaudit_log`` switches the rule
    off.

    Fix: add pgaudit to shared_preload_libraries (Azure: az postgres flexible-server
    parameter set --name shared_preload_libraries; a restart is needed), CREATE
    EXTENSION pgaudit in the databases to audit, and set pgaudit.log = 'ddl, role' (or
    more).
    """

    id = "PGW-AUD-001"
    severity = "medium"
    controls = (*CIS_PGAUDIT, Control(NIST_800_53, "AU-2"), AUDIT_GENERATION)
    requires = ()

    def not_applicable(self, context: ServerContext) -> str | None:
        if context.policy.pgaudit_log:
            return None
        return "the policy requires no pgaudit class (pgaudit_log = [])"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        required = list(context.policy.pgaudit_log)
        if not required:
            return
        view = read_settings(snapshot, (PRELOAD, PGAUDIT_LOG))
        if isinstance(view, str):
            yield _unreadable(context, view)
            return
        preload = view.values.get(PRELOAD)
        if preload is None:
            yield _hidden(view, PRELOAD, _auditor(snapshot))
            return
        libraries = setting_list(preload)
        wanted = ", ".join(required)
        if "pgaudit" not in libraries:
            added = ",".join([*libraries, "pgaudit"])
            yield Verdict(
                resource=f"setting/{PRELOAD}",
                message=f"pgaudit is not loaded on server {context.name!r} "
                f"(shared_preload_libraries = {preload!r}): no audit trail of {wanted}",
                evidence={"setting": PRELOAD, "value": preload, "source": view.where},
                remediation="\n".join(
                    [
                        _set(snapshot, context, view, PRELOAD, added),
                        "-- restart the server, then in each database to audit:",
                        "CREATE EXTENSION pgaudit;",
                        _set(snapshot, context, view, PGAUDIT_LOG, wanted),
                    ]
                ),
            )
            return
        logged = view.values.get(PGAUDIT_LOG)
        if logged is None:
            yield _hidden(view, PGAUDIT_LOG, _auditor(snapshot))
            return
        classes = pgaudit_classes(logged)
        missing = [c for c in required if c != "all" and c not in classes]
        if "all" in required:
            missing += sorted(set(PGAUDIT_CLASSES) - {"all"} - classes - set(missing))
        if not missing:
            return
        value = ", ".join(sorted(classes | set(missing)))
        yield Verdict(
            resource=f"setting/{PGAUDIT_LOG}",
            message=f"pgaudit.log = {logged!r} on server {context.name!r} does not log "
            f"{', '.join(missing)}",
            evidence={
                "setting": PGAUDIT_LOG,
                "value": logged,
                "logged_classes": sorted(classes),
                "required": required,
                "missing": missing,
                "source": view.where,
            },
            remediation=_set(snapshot, context, view, PGAUDIT_LOG, value),
        )


class LogLinePrefixIncomplete(Rule):
    """Log lines do not say who did it, where, from which application and client, and when.

    Every log line of a shared server (a connection, an error, a pgaudit record)
    carries only what ``log_line_prefix`` puts in front of it: without the user, the
    database, the application and the client address, the lines of one tenant cannot
    be told from another's, nor a stolen credential from its owner; without a time and
    a process or session id the lines of one session cannot be put together.

    Violation: ``log_line_prefix`` lacks one of: user (``%u``), database (``%d``),
    application (``%a``), client (``%h`` or ``%r``), time (``%m``, ``%t`` or ``%n``)
    and process or session (``%p`` or ``%c``). Not judged when ``log_destination``
    writes only ``csvlog`` or ``jsonlog``, whose records carry every field.

    Fix: log_line_prefix = '%m [%p] %quser=%u db=%d app=%a client=%h ' (Azure: az
    postgres flexible-server parameter set --name log_line_prefix), then reload.
    """

    id = "PGW-AUD-002"
    severity = "low"
    controls = (*CIS_LINE_PREFIX, Control(NIST_800_53, "AU-3"))
    requires = ()

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        view = read_settings(snapshot, (LINE_PREFIX, DESTINATION))
        if isinstance(view, str):
            yield _unreadable(context, view)
            return
        destination = view.values.get(DESTINATION)
        if destination is not None:
            outputs = set(setting_list(destination))
            if outputs and outputs <= STRUCTURED_DESTINATIONS:
                return
        prefix = view.values.get(LINE_PREFIX)
        if prefix is None:
            yield _hidden(view, LINE_PREFIX, _auditor(snapshot))
            return
        escapes = prefix_escapes(prefix)
        missing = [
            field for field, choices in PREFIX_FIELDS.items() if not escapes.intersection(choices)
        ]
        if not missing:
            return
        yield Verdict(
            resource=f"setting/{LINE_PREFIX}",
            message=f"log_line_prefix = {prefix!r} on server {context.name!r} leaves out the "
            f"{', '.join(missing)}",
            evidence={
                "setting": LINE_PREFIX,
                "value": prefix,
                "missing": missing,
                "log_destination": destination,
                "source": view.where,
            },
            remediation=_set(snapshot, context, view, LINE_PREFIX, SUGGESTED_PREFIX),
        )


class DdlNotLogged(Rule):
    """Schema changes are logged by neither log_statement nor pgaudit.

    DDL is how one tenant's objects change hands, grow a SECURITY DEFINER routine or a
    foreign server: the changes an investigation of a shared server needs first.
    ``log_statement = 'ddl'`` records every one of them in the server log; pgaudit's
    ``ddl`` class does it with the objects named.

    Violation: ``log_statement`` is ``none`` and pgaudit is not loaded or its
    ``pgaudit.log`` has no ``ddl`` class.

    Fix: log_statement = 'ddl' (Azure: az postgres flexible-server parameter set --name
    log_statement --value ddl), or pgaudit logging ``ddl`` (PGW-AUD-001).
    """

    id = "PGW-AUD-003"
    severity = "low"
    controls = (*CIS_LOG_STATEMENT, AUDIT_GENERATION)
    requires = ()

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        view = read_settings(snapshot, (LOG_STATEMENT, PRELOAD, PGAUDIT_LOG))
        if isinstance(view, str):
            yield _unreadable(context, view)
            return
        statements = view.values.get(LOG_STATEMENT)
        if statements is None:
            yield _hidden(view, LOG_STATEMENT, _auditor(snapshot))
            return
        if statements.strip().lower() != "none":
            return
        preload = view.values.get(PRELOAD)
        logged = view.values.get(PGAUDIT_LOG)
        if preload is None:
            # pgaudit might log DDL: whether it is loaded is hidden.
            yield _hidden(view, PRELOAD, _auditor(snapshot))
            return
        if "pgaudit" in setting_list(preload):
            if logged is None:
                yield _hidden(view, PGAUDIT_LOG, _auditor(snapshot))
                return
            if "ddl" in pgaudit_classes(logged):
                return
        yield Verdict(
            resource=f"setting/{LOG_STATEMENT}",
            message=f"log_statement is 'none' on server {context.name!r} and pgaudit does "
            "not log DDL: schema and privilege changes leave no trace",
            evidence={
                "setting": LOG_STATEMENT,
                "value": statements,
                PRELOAD: preload,
                PGAUDIT_LOG: logged,
                "source": view.where,
            },
            remediation=_set(snapshot, context, view, LOG_STATEMENT, "ddl"),
        )


RULES = [PgauditNotLogging, LogLinePrefixIncomplete, DdlNotLogged]
