"""PGW-ROLE-004: login roles that belong to no app."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.access.remediation import sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.evidence import MAX_LISTED, put_capped
from pgwarden.model.frameworks.catalogue import CIS_POSTGRESQL_17, NIST_800_53
from pgwarden.model.identifiers import regrole
from pgwarden.model.snapshot import Role, ServerSnapshot
from pgwarden.rules.base import (
    Control,
    Rule,
    Section,
    ServerContext,
    Verdict,
    quote_ident,
    quote_literal,
)
from pgwarden.rules.roles._privileged import admin_unknown, held_attributes, role_passed


class UnmappedLogin(Rule):
    """A login role belongs to no app and is not the admin or a platform role.

    On a shared server every login should be accounted for: an app's role, the admin,
    or a platform role (monitoring, the auditor) listed in the map. A login nobody
    owns is a credential nobody rotates — a leftover migration user, a departed
    colleague's account — and it reaches every database that PUBLIC may connect to.
    Azure's own roles and the bootstrap superuser are not tenants and are exempt.

    Violation: A role with LOGIN that no app lists, and that is not the admin, a
    platform role, pgwarden's own role, an Azure role or the bootstrap superuser.

    Fix: Add it to its app's roles (or platform_roles) in pgwarden.toml; if nobody
    uses it, ALTER ROLE <role> NOLOGIN now, and drop it once it owns nothing.
    """

    id = "PGW-ROLE-004"
    severity = "low"
    controls = (Control(CIS_POSTGRESQL_17, "4.4"), Control(NIST_800_53, "AC-2"))
    requires = (Section.TENANCY_MAP, Section.POSTGRES)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        if context.admin_role is None:
            yield admin_unknown(context, "so the admin's login looks like a stray one")
        admin = quote_ident(context.admin_role) if context.admin_role else "<admin>"
        ask = sql_comment(
            "an app's? add it to the app's roles in pgwarden.toml; nobody's? stop its logins:"
        )
        for name, role in sorted(tenancy.roles.items()):
            if not role.login:
                continue
            if name in tenancy.role_apps or tenancy.is_non_tenant(name):
                if context.include_passed:
                    app = tenancy.role_apps.get(name)
                    yield role_passed(
                        name,
                        app,
                        f"login role {name!r} is accounted for: "
                        + (f"a role of app {app!r}" if app else "not a tenant"),
                        accounted_as=f"app {app}" if app else _non_tenant_kind(context, name),
                    )
                continue
            quoted = quote_ident(name)
            yield Verdict(
                resource=f"role/{name}",
                principal=f"role/{name}",
                message=f"login role {name!r} belongs to no app and is neither the admin nor a "
                "platform role",
                evidence=_evidence(tenancy, name, role),
                remediation="\n".join(
                    [
                        ask,
                        f"ALTER ROLE {quoted} NOLOGIN;",
                        sql_comment(
                            f"later, in each database: REASSIGN OWNED BY {quoted} TO "
                            f"{admin}; DROP OWNED BY {quoted}; then DROP ROLE {quoted};"
                        ),
                    ]
                ),
            )


def _non_tenant_kind(context: ServerContext, role: str) -> str:
    """Why a login that belongs to no app is still accounted for."""
    if role == context.admin_role:
        return "the admin role"
    if role == context.auditor_role:
        return "pgwarden's own role"
    if role in context.server.platform_roles:
        return "a platform role"
    return "an Azure role, a predefined role or the bootstrap superuser"


def _evidence(tenancy: Tenancy, name: str, role: Role) -> dict[str, object]:
    """What the login holds and reaches, its lists capped (``model.evidence``).

    The databases it can log in to come from ``Tenancy.reach``: those PUBLIC opens are
    one fact about PUBLIC (counted, and listed by a query, not with every role), those
    its grants and groups open are listed; never a question per role and database.
    """
    literal = quote_literal(name)
    evidence: dict[str, object] = {
        "role": name,
        "attributes": [a.upper() for a in held_attributes(role)],
        "connection_limit": role.connection_limit,
        "valid_until": role.valid_until,
    }
    inherited, set_only = tenancy.graph.usable_groups(name)
    groups = sorted(inherited | set_only)
    put_capped(
        evidence,
        "member_of",
        groups,
        len(groups),
        f"SELECT rolname FROM pg_roles WHERE pg_has_role({literal}, oid, 'MEMBER') "
        f"AND rolname <> {literal} ORDER BY 1;",
    )
    reach = tenancy.reach.of(name, MAX_LISTED, inherited)
    put_capped(
        evidence,
        "can_connect_to",
        reach.first,
        reach.total,
        "SELECT datname FROM pg_database WHERE datallowconn AND "
        f"has_database_privilege({literal}, oid, 'CONNECT') ORDER BY 1;",
    )
    if reach.through_public:
        # The same for every login on the server: one fact about PUBLIC (PGW-ISO-001
        # reports it per app database), counted here, not listed again for each role.
        evidence["can_connect_through_public"] = reach.through_public
    owned = tenancy.owned_databases(name)
    put_capped(
        evidence,
        "owns_databases",
        owned,
        len(owned),
        f"SELECT datname FROM pg_database WHERE datdba = {regrole(name)} ORDER BY 1;",
    )
    return evidence
