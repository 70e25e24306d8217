"""The databases whose contents a rule judges, and the blind spots among them.

The rules that look inside databases (foreign servers, SECURITY DEFINER routines,
extensions, languages) judge every database the collector read. An app database it
could not read, or read with a pgwarden that did not yet collect what the rule needs,
is a blind spot: an ``error`` that says what would let the next scan see it, never a
pass.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from pgwarden.access.remediation import sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.snapshot import SECTION_NAMES, Database, DatabaseDetail
from pgwarden.rules.base import Verdict, quote_ident


def unread_verdict(
    tenancy: Tenancy, database: str, app: str | None, message: str, unread: dict[str, str]
) -> Verdict:
    """The error for sections of a database the collector could not read (``unread``:
    section to reason) while it read the rest: those are not judged, never passed."""
    auditor = tenancy.pg.connected_as
    return Verdict(
        resource=f"database/{database}",
        app=app,
        status="error",
        message=message,
        evidence={"database": database, "database_app": app, "unread": unread},
        remediation=sql_comment(
            f"let {auditor!r} read them (the catalogs are readable by PUBLIC unless that "
            "was revoked; a lock timeout means another session held a catalog lock, and "
            "pgwarden's statement timeout is reached only on a very busy server or a very "
            "large catalog) and scan again"
        ),
    )


# The section of a database (DatabaseDetail.unread) a field is read with, where the
# two are named differently: the definer routines come with every routine's grants.
_SECTION_OF = {"definer_functions": "routines"}


@dataclass(frozen=True)
class Inspected:
    """A database whose ``field`` was read, with its app (None: a database of no app)."""

    detail: DatabaseDetail
    app: str | None

    @property
    def name(self) -> str:
        return self.detail.name


def inspected_databases(
    tenancy: Tenancy, rule_id: str, field: str, what: str
) -> Iterator[Inspected | Verdict]:
    """Every database whose ``field`` the collector read, then an error per blind spot.

    ``field`` is a DatabaseDetail field that is None when it was not collected;
    ``what`` names the contents in messages ("foreign servers"). App databases that
    were not read are blind spots; so is any database read by an older pgwarden that
    did not read ``field``.
    """
    seen: set[str] = set()
    for detail in sorted(tenancy.pg.database_details, key=lambda d: d.name):
        if detail.name in seen or not detail.collected:
            continue
        seen.add(detail.name)
        app = tenancy.app_databases.get(detail.name)
        if getattr(detail, field) is not None:
            yield Inspected(detail, app)
            continue
        section = _SECTION_OF.get(field, field)
        reason = detail.unread.get(section)
        if reason is not None:
            yield unread_verdict(
                tenancy,
                detail.name,
                app,
                f"{rule_id} cannot judge database {detail.name!r}: its {what} could not be "
                f"read ({reason})",
                {section: reason},
            )
            continue
        yield Verdict(
            resource=f"database/{detail.name}",
            app=app,
            status="error",
            message=f"{rule_id} cannot judge database {detail.name!r}: the snapshot does "
            f"not hold its {what} (made by an older pgwarden)",
            evidence={"database": detail.name, "missing": field},
            remediation="-- collect a new snapshot (pgwarden collect) and scan it",
        )
    for database, app in sorted(tenancy.app_databases.items()):
        if database not in seen:
            yield not_inspected(tenancy, rule_id, database, app, what)


def not_inspected_reason(db: Database, detail: DatabaseDetail | None) -> str:
    """Why the collector did not read ``db`` (``detail``: what it recorded of it)."""
    if detail is not None and detail.error:
        return detail.error
    if db.invalid:
        return "it is invalid: a DROP DATABASE was interrupted, and nobody can connect to it"
    if not db.allow_connections:
        return "connections to it are disabled (datallowconn = false)"
    return "it was not inspected"


def finish_dropping(database: str) -> str:
    """The fix for an invalid database (``Database.invalid``)."""
    return "\n".join(
        [
            sql_comment("a DROP DATABASE was interrupted: finish it (nothing can be kept)"),
            f"DROP DATABASE {quote_ident(database)};",
        ]
    )


def not_inspected(tenancy: Tenancy, rule_id: str, database: str, app: str, what: str) -> Verdict:
    """The error for an app database the collector did not read: its ``what`` are
    unknown, with what would let the next scan read it."""
    db = tenancy.databases[database]
    auditor = tenancy.pg.connected_as
    reason = not_inspected_reason(db, tenancy.detail(database))
    connects = tenancy.can_connect(db, auditor)
    return Verdict(
        resource=f"database/{database}",
        app=app,
        status="error",
        message=f"{rule_id} could not inspect database {database!r} of app {app!r}: "
        f"{reason}; its {what} are unknown",
        evidence={"database": database, "error": reason, "auditor_has_connect": connects},
        remediation=(
            finish_dropping(database)
            if db.invalid
            else f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {quote_ident(auditor)};"
            if db.allow_connections and not connects
            else "-- resolve the error above and scan again"
        ),
    )


def unread_sections(detail: DatabaseDetail, sections: Collection[str]) -> dict[str, str]:
    """Those of ``sections`` that could not be read in ``detail``, each with why, by
    name."""
    return {name: why for name, why in sorted(detail.unread.items()) if name in sections}


def unread_phrase(lost: Mapping[str, str]) -> str:
    """``lost`` (``unread_sections``) as a message names it: ``its routines (why) and
    its large objects (why)``."""
    return " and ".join(f"its {SECTION_NAMES[name]} ({why})" for name, why in lost.items())


# The sections of a database that hold what a role holds there in its own name
# (``access.holdings``): its objects' grants and owners, and default privileges.
HOLDING_SECTIONS = frozenset(
    {"relations", "routines", "default_privileges", "column_grants", "large_objects"}
)


def holdings_unseen(tenancy: Tenancy, rule_id: str) -> Iterator[Verdict]:
    """An error for each app database where what roles hold in their own name could not
    all be read: a database not inspected, or one some of whose ``HOLDING_SECTIONS``
    were refused. What the server's catalog says of it (its owner, its ACL) is judged;
    the rest is not, and never passes."""
    for database, app in sorted(tenancy.app_databases.items()):
        detail = tenancy.detail(database)
        if detail is None or not detail.collected:
            yield not_inspected(tenancy, rule_id, database, app, "objects' grants and owners")
            continue
        lost = unread_sections(detail, HOLDING_SECTIONS)
        if lost:
            yield unread_verdict(
                tenancy,
                database,
                app,
                f"{rule_id} cannot see all that roles hold in their own name in database "
                f"{database!r} of app {app!r}: {unread_phrase(lost)} could not be read",
                lost,
            )
