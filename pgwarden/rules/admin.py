"""PGW-ADM: use of the server administrator."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.access.remediation import sql_comment
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict, quote_ident
from pgwarden.rules.control_sets import ADMIN_FOR_APPLICATIONS, ADMIN_PRIVILEGES


class AdminSessionFromApplication(Rule):
    """An application logs in as the server administrator.

    The admin role (on Azure Flexible Server: CREATEROLE, CREATEDB, member of
    azure_pg_admin) can read and change every tenant's database. An application that
    runs as the admin turns any SQL injection or leaked connection string into a
    breach of every database on the server. Sessions are sampled several times over a
    short window; sessions from tools listed in ``admin_application_names`` (psql,
    pgAdmin, ...) are administration, not application use. pgwarden's own sessions are
    never reported. Only the admin role's own logins count (the session user): a role
    that can use the admin's privileges through membership is PGW-ROLE-002's. The
    application name is chosen by the client, so this catches honest mistakes, not an
    application that lies about itself.

    Violation: A live session of the admin role on an app database whose
    application_name matches none of ``admin_application_names``.

    Fix: Give the application its own login role with only the privileges it needs,
    store that role's connection string in the app's vault, rotate the admin
    password, and end the session.
    """

    id = "PGW-ADM-001"
    severity = "critical"
    controls = (*ADMIN_PRIVILEGES, *ADMIN_FOR_APPLICATIONS)
    requires = (Section.TENANCY_MAP, Section.POSTGRES, Section.POSTGRES_SESSIONS)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        pg = snapshot.postgres
        assert pg is not None and pg.sessions is not None
        admin = context.admin_role
        if admin is None:
            yield Verdict(
                resource=f"server/{context.name}",
                status="error",
                message="the admin role is unknown: set admin_role for this server in the config "
                "(or configure its Azure reference so it is read from ARM)",
            )
            return
        app_dbs = context.app_databases()
        reported = False
        for session in pg.sessions:
            if session.user != admin or session.database not in app_dbs:
                continue
            if context.admin_tool_allowed(session.application_name):
                continue
            reported = True
            app = app_dbs[session.database]
            shown = session.application_name or "(empty)"
            yield Verdict(
                resource=f"session/{session.pid}",
                principal=f"role/{admin}",
                app=app,
                message=(
                    f"application {shown!r} is logged in as the admin role {admin!r} "
                    f"on database {session.database!r} (app {app!r})"
                ),
                evidence={
                    "pid": session.pid,
                    "application_name": session.application_name,
                    "database": session.database,
                    "user": session.user,
                    "client_addr": session.client_addr
                    if session.client_visible
                    else "not visible (grant pg_read_all_stats)",
                    "backend_start": session.backend_start.isoformat()
                    if session.backend_start
                    else None,
                    "state": session.state,
                    "seen_in_samples": f"{session.samples} of {pg.session_samples}",
                    "allowed_admin_tools": list(context.policy.admin_application_names),
                },
                remediation="\n".join(
                    [
                        sql_comment(
                            f"give app {app!r} its own login role (the PGW-ROLE rules check it), "
                            "put that role's connection string in the app's vault, then rotate "
                            "the admin password"
                        ),
                        sql_comment(
                            f"then end this session ({shown!r} on database "
                            f"{quote_ident(session.database)}):"
                        ),
                        f"SELECT pg_terminate_backend({session.pid});",
                    ]
                ),
            )
        if context.include_passed and not reported:
            admin_sessions = [s for s in pg.sessions if s.user == admin]
            yield Verdict(
                resource=f"server/{context.name}",
                status="pass",
                message=f"no application was seen logged in as the admin role {admin!r} on an "
                "app database",
                evidence={
                    "admin_role": admin,
                    "sessions_seen": len(pg.sessions),
                    "samples": pg.session_samples,
                    "admin_sessions_from_allowed_tools": sorted(
                        {s.application_name for s in admin_sessions}
                    ),
                    "allowed_admin_tools": list(context.policy.admin_application_names),
                },
            )


RULES = [AdminSessionFromApplication]
