"""PGW-ROLE-001: app roles with SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.access.graph import PG16
from pgwarden.access.remediation import capped_blocks, sql_comment, verify_membership
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.evidence import MAX_WAYS_SHOWN, put_capped, summarize_targets
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict, quote_ident
from pgwarden.rules.control_sets import ADMIN_PRIVILEGES, PRIVILEGED_ACCOUNTS
from pgwarden.rules.roles._privileged import (
    ATTRIBUTES,
    cut_script,
    group_risk,
    held_attributes,
    role_passed,
)


class PrivilegedAppRole(Rule):
    """An app role has SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS.

    An application's login needs to read and write its own tables, nothing more. Any
    of these attributes reaches beyond its database: SUPERUSER bypasses every check;
    CREATEROLE manages roles (before PostgreSQL 16 it can grant itself membership in
    any non-superuser role, so it is nearly superuser); CREATEDB creates databases no
    tenancy map knows; REPLICATION streams every tenant's data; BYPASSRLS ignores
    row-level security. Attributes are not inherited, but SET ROLE confers them: a
    role that can SET ROLE to one holding them has them too.

    Violation: A role named in the tenancy map has one of these attributes, or can SET
    ROLE to a role of no app that has one (memberships in the admin, Azure's roles or
    another app's role are PGW-ROLE-002's; an app role's own attributes are reported
    on that role).

    Fix: ALTER ROLE <role> NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION
    NOBYPASSRLS (only those it has), done by the admin; do schema changes and role
    management as the admin, not as the app. For an attribute reached through SET ROLE,
    revoke the membership.
    """

    id = "PGW-ROLE-001"
    severity = "high"
    controls = (*ADMIN_PRIVILEGES, *PRIVILEGED_ACCOUNTS)
    requires = (Section.TENANCY_MAP, Section.POSTGRES)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        # The roles whose attributes an app role would gain by SET ROLE: an app role's
        # own attributes are its own finding; the admin's and Azure's are PGW-ROLE-002's.
        sources = {
            name: attributes
            for name, found in tenancy.roles.items()
            if name not in tenancy.role_apps
            and group_risk(tenancy, name) is None
            and (attributes := held_attributes(found))
        }
        # Only the few roles that can SET ROLE to one of them are worth a walk of their own.
        gaining = frozenset().union(*(tenancy.graph.set_role_users(name) for name in sources))
        for role, app in sorted(tenancy.role_apps.items()):
            direct = held_attributes(tenancy.roles[role])
            settable = tenancy.graph.settable(role) if role in gaining else {}
            gained = [
                (target, sources[target], path)
                for target, path in sorted(settable.items())
                if target in sources
            ]
            if not direct and not gained:
                if context.include_passed:
                    yield role_passed(
                        role,
                        app,
                        f"role {role!r} of app {app!r} has none of "
                        f"{', '.join(a.upper() for a in ATTRIBUTES)}, itself or by SET ROLE",
                        attributes=[],
                    )
                continue
            lines: list[str] = []
            evidence: dict[str, object] = {
                "role": role,
                "app": app,
                "attributes": [a.upper() for a in direct],
                "risks": {a.upper(): ATTRIBUTES[a] for a in direct},
            }
            if direct:
                lines.append(
                    f"ALTER ROLE {quote_ident(role)} "
                    + " ".join(f"NO{a.upper()}" for a in direct)
                    + ";"
                )
            if "createrole" in direct:
                admin_of = tenancy.graph.admin_of(role)
                put_capped(evidence, "admin_option_on", admin_of, len(admin_of))
                evidence["note"] = (
                    "PostgreSQL 16+: CREATEROLE manages the roles it holds ADMIN OPTION on"
                    if tenancy.version_num >= PG16
                    else "before PostgreSQL 16, CREATEROLE can alter any non-superuser role and "
                    "grant itself membership in any of them: treat it as nearly superuser"
                )
                if admin_of:
                    lines.append(
                        sql_comment(
                            "it keeps ADMIN OPTION (it may grant them to anyone) on: "
                            + summarize_targets([repr(r) for r in admin_of[:3]], len(admin_of))
                        )
                    )
            if gained:
                # A role that can SET ROLE to hundreds: the first few, and how many.
                put_capped(
                    evidence,
                    "via_set_role",
                    (
                        {
                            "role": target,
                            "attributes": [a.upper() for a in attributes],
                            **path.roles_evidence(),
                            "verify": verify_membership(role, target, tenancy.version_num),
                        }
                        for target, attributes, path in gained
                    ),
                    len(gained),
                    limit=MAX_WAYS_SHOWN,
                )
                blocks = (
                    cut_script(
                        tenancy,
                        tenancy.graph.set_paths(role, target),
                        app,
                        f"{role!r} can SET ROLE {target!r} and so take "
                        + ", ".join(a.upper() for a in attributes),
                    )[0]
                    for target, attributes, _path in gained
                )
                lines += capped_blocks(
                    blocks,
                    len(gained),
                    "one for each other role it can SET ROLE to (via_set_role_total)",
                )
            held = [a.upper() for a in direct] + [
                f"{a.upper()} (via SET ROLE {t!r})"
                for t, attrs, _ in gained[:MAX_WAYS_SHOWN]
                for a in attrs
            ]
            if len(gained) > MAX_WAYS_SHOWN:
                held.append(
                    f"the attributes of {len(gained) - MAX_WAYS_SHOWN} more roles by SET ROLE"
                )
            yield Verdict(
                resource=f"role/{role}",
                principal=f"role/{role}",
                app=app,
                message=f"role {role!r} of app {app!r} has {', '.join(held)}",
                evidence=evidence,
                remediation="\n".join(dict.fromkeys(lines)),
            )
