"""What the PGW-ROLE rules share: privileged attributes and groups, and cutting a membership.

Role attributes are never inherited: a role gets SUPERUSER, CREATEROLE, CREATEDB,
REPLICATION or BYPASSRLS only by having it, or by ``SET ROLE`` to a role that has it.
Group privileges are used through membership (inherit, or one ``SET ROLE`` away); an
ADMIN-only grant (PostgreSQL 16's ``createrole_self_grant``: no INHERIT, no SET) is
administrative and gives neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from pgwarden.access.graph import RolePath
from pgwarden.access.remediation import sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.snapshot import AZURE_ADMIN_GROUP, Role
from pgwarden.rules.base import ServerContext, Verdict

# Alternative cuts a remediation script suggests, beside the cut it makes.
MAX_ALTERNATIVES = 5

ATTRIBUTES: dict[str, str] = {
    "superuser": "bypasses every permission check on the server, in every database",
    "createrole": "creates, alters and drops roles (before PostgreSQL 16: any non-superuser "
    "role, and grants itself membership in any of them, every other app's role included)",
    "createdb": "creates databases on the shared server (outside every tenancy check)",
    "replication": "streams the whole cluster — every tenant's data — as a replication client",
    "bypassrls": "ignores every row-level security policy on the tables it can read",
}

HIGH_PRIVILEGE_ROLES: dict[str, str] = {
    "pg_read_all_data": "reads every table, view and sequence in every database — including "
    "pg_authid, the password verifiers of every role on the server",
    "pg_write_all_data": "inserts, updates and deletes rows of every table in every database",
    "pg_execute_server_program": "runs programs on the database host as its operating-system "
    "user (COPY ... PROGRAM)",
    "pg_read_server_files": "reads any file the server process can read",
    "pg_write_server_files": "writes any file the server process can write",
    "pg_signal_backend": "cancels and terminates other roles' sessions: every tenant's",
    # PostgreSQL 17+.
    "pg_maintain": "locks, vacuums, reindexes and clusters every table in every database: "
    "any tenant's tables can be locked out",
}


_ATTRIBUTE_VALUES = attrgetter(*ATTRIBUTES)


def held_attributes(role: Role | None) -> list[str]:
    """The attributes of ``ATTRIBUTES`` that ``role`` has, in that order (none for None)."""
    if role is None:
        return []
    # Asked of every role on the server, nearly all of which have none: all five are
    # read at once, and only a role with one is spelt out.
    values = _ATTRIBUTE_VALUES(role)
    if not any(values):
        return []
    return [name for name, has in zip(ATTRIBUTES, values, strict=True) if has]


def _own_cut(tenancy: Tenancy, path: RolePath, app: str) -> tuple[str, str]:
    """The first membership on ``path`` that leaves the roles of ``app``.

    The role keeps the groups of its own app; the grant where the chain reaches
    beyond them is the one to revoke.
    """
    for member, role in path.edges:
        if tenancy.role_apps.get(role) != app:
            return (member, role)
    return path.edges[-1]


def cut_script(
    tenancy: Tenancy, paths: Sequence[RolePath], app: str, describe: str
) -> tuple[list[str], list[tuple[str, str]]]:
    """REVOKEs cutting every path where it leaves the app's own roles, with the cuts."""
    cuts = list(dict.fromkeys(_own_cut(tenancy, path, app) for path in paths))
    lines = [sql_comment(describe)]
    for member, role in cuts:
        lines.extend(tenancy.revoke(member, role))
    # Deep chains offer a cut at every grant of every path: the nearest few are
    # written, the other memberships only counted (writing them all cost a finding its
    # paths times their length in statements).
    alternatives: list[str] = []
    edges = dict.fromkeys(edge for path in paths for edge in path.edges)
    for cut in cuts:
        edges.pop(cut, None)
    # A membership's REVOKEs (one per grantor from 16) are written together or not at
    # all: one cut short would leave a grant standing that the count does not name.
    written = 0
    for member, role in edges:
        statements = tenancy.revoke(member, role)
        if len(alternatives) + len(statements) > MAX_ALTERNATIVES:
            break
        written += 1
        alternatives += [
            sql_comment(f"or, for every member of {member!r}: {s}") for s in statements
        ]
    if len(edges) > written:
        alternatives.append(
            sql_comment(
                f"… and {len(edges) - written} more memberships further along the chains "
                "could be cut"
            )
        )
    return list(dict.fromkeys(lines + alternatives)), cuts


def role_passed(role: str, app: str | None, message: str, **evidence: object) -> Verdict:
    """The pass record of a role found as it should be, with what shows it."""
    return Verdict(
        resource=f"role/{role}",
        principal=f"role/{role}",
        app=app,
        status="pass",
        message=message,
        evidence={"role": role, "app": app, **evidence},
    )


def admin_unknown(context: ServerContext, consequence: str) -> Verdict:
    """The blind spot of a server whose admin role neither the config nor ARM names."""
    return Verdict(
        resource=f"server/{context.name}",
        status="error",
        message=f"the admin role is unknown, {consequence}: set admin_role for this server "
        "in the config (or its Azure reference, so it is read from ARM)",
    )


def group_risk(tenancy: Tenancy, holder: str) -> str | None:
    """Why no app role may use ``holder``'s privileges, whatever the apps, or None."""
    if holder == tenancy.context.admin_role:
        return "the server's admin role: everything the admin may do, on every database"
    if holder == AZURE_ADMIN_GROUP:
        return "Azure's administrators group (azure_pg_admin)"
    return HIGH_PRIVILEGE_ROLES.get(holder)
