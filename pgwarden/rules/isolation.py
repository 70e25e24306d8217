"""PGW-ISO: isolation between the databases of different apps."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.rules.base import Rule, ServerContext, Verdict, quote_ident
from pgwarden.scanner.model import ServerSnapshot


class PublicConnect(Rule):
    """PUBLIC holds CONNECT on an app database.

    PostgreSQL grants CONNECT and TEMPORARY to PUBLIC on every new database. On a
    shared server that means every login role of every other app can connect to this
    app's database: isolation then rests on object privileges alone. This is the gap
    behind "each database is completely isolated".

    Violation: an app database whose ACL (or the default ACL, when datacl is NULL)
    gives CONNECT to PUBLIC.

    Fix: REVOKE CONNECT ON DATABASE <db> FROM PUBLIC, then GRANT CONNECT to the app's
    own roles (and the admin, platform and auditor roles that need it).
    """

    id = "PGW-ISO-001"
    severity = "high"
    frameworks = ("CIS PostgreSQL 4.7",)
    requires = ("postgres",)

    def check(self, snapshot: ServerSnapshot, config: ServerContext) -> Iterable[Verdict]:
        pg = snapshot.postgres
        assert pg is not None
        app_dbs = config.app_databases()
        for db in pg.databases:
            app = app_dbs.get(db.name)
            if app is None:
                continue
            public = next((i for i in db.acl if i.is_public and "CONNECT" in i.privileges), None)
            if public is None:
                continue
            roles = next(a.roles for a in config.server.app if a.name == app)
            grants = "".join(
                f"\nGRANT CONNECT ON DATABASE {quote_ident(db.name)} TO {quote_ident(r)};"
                for r in roles
            )
            yield Verdict(
                resource=f"database/{db.name}",
                principal="PUBLIC",
                app=app,
                message=f"PUBLIC can connect to database {db.name!r} of app {app!r}: "
                "every login role on the server can",
                evidence={
                    "acl_is_default": db.acl_is_default,
                    "acl_item": {
                        "grantee": "PUBLIC",
                        "grantor": public.grantor,
                        "privileges": list(public.privileges),
                    },
                    "note": "datacl is NULL: the built-in default gives PUBLIC CONNECT, TEMPORARY"
                    if db.acl_is_default
                    else None,
                },
                remediation=f"REVOKE CONNECT ON DATABASE {quote_ident(db.name)} FROM PUBLIC;"
                + grants,
            )


RULES = [PublicConnect]
