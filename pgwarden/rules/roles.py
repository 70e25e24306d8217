"""PGW-ROLE: what the apps' roles are, what they belong to, and who else logs in.

Role attributes are never inherited: a role gets SUPERUSER, CREATEROLE, CREATEDB,
REPLICATION or BYPASSRLS only by having it, or by ``SET ROLE`` to a role that has it.
Group privileges are used through membership (inherit, or one ``SET ROLE`` away); an
ADMIN-only grant (PostgreSQL 16's ``createrole_self_grant``: no INHERIT, no SET) is
administrative and gives neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter

from pgwarden.access.analysis import (
    PG16,
    RolePath,
    Tenancy,
    revoke_membership,
    sql_comment,
    verify_membership,
)
from pgwarden.model.config import AppConfig
from pgwarden.model.snapshot import Role, ServerSnapshot
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict, quote_ident

CIS_PG_ADMIN = "CIS PostgreSQL 16 Benchmark 4.2"
CIS_PG_PREDEFINED = "CIS PostgreSQL 16 Benchmark 4.7"
NIST_PRIVILEGED = "NIST SP 800-53 AC-6(5)"

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


def _attributes(role: Role | None) -> list[str]:
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


def _membership_rows(tenancy: Tenancy, paths: Sequence[RolePath]) -> list[dict[str, object]]:
    """The pg_auth_members rows behind ``paths``: what an auditor can check by hand."""
    rows: list[dict[str, object]] = []
    for path in paths:
        for member, role in path.edges:
            for grant in tenancy.graph.grants(member, role):
                row = grant.model_dump()
                if row not in rows:
                    rows.append(row)
    return rows


def _cut_script(
    tenancy: Tenancy, paths: Sequence[RolePath], app: str, describe: str
) -> tuple[list[str], list[tuple[str, str]]]:
    """REVOKEs cutting every path where it leaves the app's own roles, with the cuts."""
    cuts = list(dict.fromkeys(_own_cut(tenancy, path, app) for path in paths))
    lines = [sql_comment(describe)]
    for member, role in cuts:
        lines.extend(revoke_membership(tenancy.graph, member, role, tenancy.version_num))
    for path in paths:
        for member, role in path.edges:
            if (member, role) in cuts:
                continue
            for statement in revoke_membership(tenancy.graph, member, role, tenancy.version_num):
                lines.append(sql_comment(f"or, for every member of {member!r}: {statement}"))
    return list(dict.fromkeys(lines)), cuts


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
    frameworks = (CIS_PG_ADMIN, NIST_PRIVILEGED)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        # The roles whose attributes an app role would gain by SET ROLE: an app role's
        # own attributes are its own finding; the admin's and Azure's are PGW-ROLE-002's.
        sources = {
            name: attributes
            for name, found in tenancy.roles.items()
            if name not in tenancy.role_apps
            and _group_risk(tenancy, name) is None
            and (attributes := _attributes(found))
        }
        # Only the few roles that can SET ROLE to one of them are worth a walk of their own.
        gaining = frozenset().union(*(tenancy.graph.set_role_users(name) for name in sources))
        for role, app in sorted(tenancy.role_apps.items()):
            direct = _attributes(tenancy.roles[role])
            settable = tenancy.graph.settable(role) if role in gaining else {}
            gained = [
                (target, sources[target], path)
                for target, path in sorted(settable.items())
                if target in sources
            ]
            if not direct and not gained:
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
                evidence["admin_option_on"] = list(admin_of)
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
                            + ", ".join(map(repr, admin_of))
                        )
                    )
            if gained:
                evidence["via_set_role"] = [
                    {
                        "role": target,
                        "attributes": [a.upper() for a in attributes],
                        "path": list(path.path),
                        "verify": verify_membership(role, target, tenancy.version_num),
                    }
                    for target, attributes, path in gained
                ]
                for target, attributes, _path in gained:
                    paths = tenancy.graph.set_paths(role, target)
                    cut_lines, _cuts = _cut_script(
                        tenancy,
                        paths,
                        app,
                        f"{role!r} can SET ROLE {target!r} and so take "
                        + ", ".join(a.upper() for a in attributes),
                    )
                    lines.extend(cut_lines)
            held = [a.upper() for a in direct] + [
                f"{a.upper()} (via SET ROLE {t!r})" for t, attrs, _ in gained for a in attrs
            ]
            yield Verdict(
                resource=f"role/{role}",
                principal=f"role/{role}",
                app=app,
                message=f"role {role!r} of app {app!r} has {', '.join(held)}",
                evidence=evidence,
                remediation="\n".join(dict.fromkeys(lines)),
            )


def _admin_unknown(context: ServerContext, consequence: str) -> Verdict:
    """The blind spot of a server whose admin role neither the config nor ARM names."""
    return Verdict(
        resource=f"server/{context.name}",
        status="error",
        message=f"the admin role is unknown, {consequence}: set admin_role for this server "
        "in the config (or its Azure reference, so it is read from ARM)",
    )


def _membership_risk(tenancy: Tenancy, role: str, holder: str) -> str | None:
    """Why ``role`` (an app role) must not use ``holder``'s privileges, or None."""
    other = tenancy.role_apps.get(holder)
    if (
        holder not in (tenancy.context.admin_role, "azure_pg_admin")
        and other is not None
        and other != tenancy.role_apps.get(role)
    ):
        return f"a role of app {other!r}: its privileges and ownership in that app's databases"
    return _group_risk(tenancy, holder)


def _group_risk(tenancy: Tenancy, holder: str) -> str | None:
    """Why no app role may use ``holder``'s privileges, whatever the apps, or None."""
    if holder == tenancy.context.admin_role:
        return "the server's admin role: everything the admin may do, on every database"
    if holder == "azure_pg_admin":
        return "Azure's administrators group (azure_pg_admin)"
    return HIGH_PRIVILEGE_ROLES.get(holder)


class AppRoleInPrivilegedRole(Rule):
    """An app role is a member of the admin role, azure_pg_admin, another app's role or a
    high-privilege predefined role.

    Membership hands over the group's privileges (by inheritance, or one SET ROLE
    away when the grant has no INHERIT), so it crosses tenant boundaries wholesale:
    another app's role brings that app's tables and ownership; the admin role or
    azure_pg_admin brings everything; pg_read_all_data reads every tenant's tables and
    pg_authid, the password verifiers of every role; pg_write_all_data,
    pg_execute_server_program, pg_read_server_files, pg_write_server_files,
    pg_signal_backend and pg_maintain (17+) reach the data, the host, the sessions or
    the tables' locks of every tenant.
    ADMIN-only grants (PostgreSQL 16's createrole_self_grant: no INHERIT, no SET) give
    no access and are not reported.

    Violation: A role named in the tenancy map can use — directly or through any
    chain of groups, with or without INHERIT — the admin role, azure_pg_admin, a role
    of another app, or pg_read_all_data, pg_write_all_data, pg_execute_server_program,
    pg_read_server_files, pg_write_server_files, pg_signal_backend or pg_maintain.

    Fix: REVOKE <group> FROM <member> where the chain leaves the app's own roles
    (GRANTED BY the grantor on PostgreSQL 16+, where memberships are recorded per
    grantor); give the app what it needs as grants on its own objects instead.
    """

    id = "PGW-ROLE-002"
    severity = "critical"
    frameworks = (CIS_PG_ADMIN, CIS_PG_PREDEFINED, NIST_PRIVILEGED)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        if context.admin_role is None:
            yield _admin_unknown(context, "so membership in it cannot be checked")
        # Asked from the groups' side: only a group with members can be used by anyone,
        # and only an app role's or a privileged one is a risk; their users are few.
        found: list[tuple[str, str, str]] = []
        for group in tenancy.graph.groups:
            group_app = tenancy.role_apps.get(group)
            own_risk = _group_risk(tenancy, group)
            if group_app is None and own_risk is None:
                continue
            for role in tenancy.graph.user_names(group):
                app = tenancy.role_apps.get(role)
                if app is None:
                    continue
                # Most users of an app's group are that app's roles: for them the risk
                # is the group's own (``_membership_risk``), known already.
                risk = own_risk if app == group_app else _membership_risk(tenancy, role, group)
                if risk is not None:
                    found.append((role, group, risk))
        for role, holder, risk in sorted(found):
            yield self._verdict(tenancy, role, tenancy.role_apps[role], holder, risk)

    @staticmethod
    def _verdict(tenancy: Tenancy, role: str, app: str, holder: str, risk: str) -> Verdict:
        paths = tenancy.graph.paths(role, holder)
        set_role = all(p.mode == "set role" for p in paths)
        lines, cuts = _cut_script(tenancy, paths, app, f"{role!r} must not use {holder!r}: {risk}")
        evidence: dict[str, object] = {
            "role": role,
            "app": app,
            "member_of": holder,
            "risk": risk,
            "paths": [p.evidence() for p in paths],
            "membership_grants": _membership_rows(tenancy, paths),
            "revoke": [f"{m} in {r}" for m, r in cuts],
            "verify": verify_membership(role, holder, tenancy.version_num),
        }
        gained = _attributes(tenancy.roles.get(holder))
        if gained and holder in tenancy.graph.settable(role):
            evidence["gains_attributes_by_set_role"] = [a.upper() for a in gained]
        if set_role:
            evidence["needs_set_role"] = True
            evidence["note"] = (
                "membership without INHERIT: the privileges are not used automatically, but "
                f"they are one SET ROLE {quote_ident(paths[0].set_role or holder)} away"
            )
        chain = paths[0].describe() if paths else f"{role} → {holder}"
        return Verdict(
            resource=f"role/{holder}",
            principal=f"role/{role}",
            app=app,
            message=f"role {role!r} of app {app!r} is a member of {holder!r} ({chain}"
            + (", after SET ROLE" if set_role else "")
            + f"): {risk}",
            evidence=evidence,
            remediation="\n".join(lines),
        )


def _setting_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


class ConnectionLimits(Rule):
    """An app role has no connection limit, or the apps' limits oversubscribe the server.

    Every tenant shares one max_connections. An app role without a CONNECTION LIMIT
    can take every free slot — a leak in a connection pool becomes an outage for every
    other app on the server. Limits that add up to more than the server has (after
    superuser_reserved_connections and, on PostgreSQL 16+, reserved_connections) only
    look like limits. An app's ``connection_budget`` in the map is what it may hold:
    its roles' limits must fit in it.

    Violation: A login role named in the map has CONNECTION LIMIT -1; or an app's
    roles' limits add up to more than its connection_budget; or the apps' limits (or
    budgets) add up to more than max_connections minus the reserved slots.

    Fix: ALTER ROLE <role> CONNECTION LIMIT <n> for each app role, with limits that fit
    the app's budget and, together, the server; or raise max_connections (on Azure a
    server parameter whose maximum depends on the SKU).
    """

    id = "PGW-ROLE-003"
    severity = "medium"
    frameworks = ("NIST SP 800-53 SC-5",)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        pg = tenancy.pg
        names = ["max_connections", "superuser_reserved_connections"]
        if tenancy.version_num >= PG16:
            names.append("reserved_connections")
        values: dict[str, int] = {}
        for name in names:
            setting = pg.setting(name)
            number = _setting_int(setting.value) if setting is not None else None
            if number is None:
                gap = pg.gap(f"setting:{name}")
                yield Verdict(
                    resource=f"setting/{name}",
                    status="error",
                    message=f"setting {name} is not visible to {pg.connected_as!r}"
                    + (f" (value {setting.value!r})" if setting is not None else "")
                    + ": the apps' limits cannot be compared with the server's",
                    evidence={"setting": name, "connected_as": pg.connected_as},
                    remediation=gap.fix.replace("<auditor>", quote_ident(pg.connected_as))
                    if gap is not None and gap.fix
                    else f"GRANT pg_read_all_settings TO {quote_ident(pg.connected_as)};",
                )
            else:
                values[name] = number
        available = (
            values["max_connections"]
            - values["superuser_reserved_connections"]
            - values.get("reserved_connections", 0)
            if len(values) == len(names)
            else None
        )
        apps = [
            (app, [r for r in tenancy.app_roles(app.name) if tenancy.roles[r].login])
            for app in context.server.app
        ]
        # Each app role's limit, read once (in ``apps`` order): every sum below, and each
        # app's findings, ask for it again (thousands of roles on a big server).
        limits = [{r: tenancy.roles[r].connection_limit for r in roles} for _app, roles in apps]
        caps = {
            app.name: sum(app_limits.values())
            for (app, roles), app_limits in zip(apps, limits, strict=True)
            if roles and all(n >= 0 for n in app_limits.values())
        }
        unbounded = sum(1 for app_limits in limits for n in app_limits.values() if n < 0)
        spare = None if available is None else available - sum(caps.values())
        for (app, roles), app_limits in zip(apps, limits, strict=True):
            yield from self._app(app, roles, app_limits, spare, unbounded)
        if available is not None:
            verdict = self._server(tenancy, apps, caps, values, available)
            if verdict is not None:
                yield verdict

    @staticmethod
    def _app(
        app: AppConfig,
        roles: list[str],
        limits: dict[str, int],
        spare: int | None,
        unbounded: int,
    ) -> Iterable[Verdict]:
        bounded = sum(n for n in limits.values() if n >= 0)
        budget = app.connection_budget
        for role in roles:
            if limits[role] >= 0:
                continue
            if budget is not None:
                suggested = max(1, budget - bounded)
                why = f"what is left of app {app.name!r}'s connection_budget ({budget})"
            elif spare is not None:
                suggested = max(1, spare // (unbounded + 1))
                why = "a share of the slots the other apps' limits leave free"
            else:
                suggested, why = 20, "a placeholder: size it to the app's pool"
            yield Verdict(
                resource=f"role/{role}",
                principal=f"role/{role}",
                app=app.name,
                message=f"role {role!r} of app {app.name!r} has no connection limit: it can "
                "take every free connection slot of the shared server",
                evidence={
                    "role": role,
                    "connection_limit": -1,
                    "connection_budget": budget,
                    "app_roles_limits": limits,
                },
                remediation="\n".join(
                    [
                        sql_comment(f"{suggested} is {why}"),
                        f"ALTER ROLE {quote_ident(role)} CONNECTION LIMIT {suggested};",
                    ]
                ),
            )
        if budget is not None and roles and all(n >= 0 for n in limits.values()):
            if bounded <= budget:
                return
            share = max(1, budget // len(roles))
            yield Verdict(
                resource=f"role/{roles[0]}",
                principal=f"role/{roles[0]}",
                app=app.name,
                message=f"app {app.name!r}'s roles may hold {bounded} connections together, "
                f"more than its connection_budget of {budget}",
                evidence={"connection_budget": budget, "app_roles_limits": limits},
                remediation="\n".join(
                    [sql_comment(f"an even split of the budget of {budget}")]
                    + [f"ALTER ROLE {quote_ident(r)} CONNECTION LIMIT {share};" for r in roles]
                ),
            )

    @staticmethod
    def _server(
        tenancy: Tenancy,
        apps: list[tuple[AppConfig, list[str]]],
        caps: dict[str, int],
        values: dict[str, int],
        available: int,
    ) -> Verdict | None:
        committed = sum(caps.values())
        budgets = {a.name: a.connection_budget for a, _ in apps if a.connection_budget is not None}
        over_limits = committed > available
        over_budgets = sum(budgets.values()) > available
        if not over_limits and not over_budgets:
            return None
        what = []
        if over_limits:
            what.append(f"the apps' connection limits add up to {committed}")
        if over_budgets:
            what.append(f"their connection budgets add up to {sum(budgets.values())}")
        reserved = " - ".join(
            f"{name} ({values[name]})" for name in values if name != "max_connections"
        )
        lines = [
            sql_comment(
                f"{available} slots are left for applications: lower the limits (or budgets) "
                "to fit, or raise max_connections (Azure: az postgres flexible-server parameter "
                "set --name max_connections ...; the maximum depends on the SKU)"
            )
        ]
        for app, roles in apps:
            if app.name in caps:
                share = max(1, available * caps[app.name] // max(committed, 1))
                per_role = max(1, share // max(len(roles), 1))
                lines += [
                    f"ALTER ROLE {quote_ident(r)} CONNECTION LIMIT {per_role};" for r in roles
                ]
        return Verdict(
            resource="setting/max_connections",
            message=" and ".join(what)
            + f", more than the {available} connections the server has for them",
            evidence={
                "max_connections": values["max_connections"],
                "reserved": reserved,
                "available": available,
                "app_limits": caps,
                "app_budgets": budgets,
                "apps_without_limit": [a.name for a, roles in apps if roles and a.name not in caps],
            },
            remediation="\n".join(lines),
        )


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
    frameworks = ("NIST SP 800-53 AC-2",)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        if context.admin_role is None:
            yield _admin_unknown(context, "so the admin's login looks like a stray one")
        for name, role in sorted(tenancy.roles.items()):
            if not role.login or name in tenancy.role_apps or tenancy.is_non_tenant(name):
                continue
            owns = tenancy.owned_databases(name)
            admin = quote_ident(context.admin_role) if context.admin_role else "<admin>"
            yield Verdict(
                resource=f"role/{name}",
                principal=f"role/{name}",
                message=f"login role {name!r} belongs to no app and is neither the admin nor a "
                "platform role",
                evidence={
                    "role": name,
                    "attributes": [a.upper() for a in _attributes(role)],
                    "connection_limit": role.connection_limit,
                    "valid_until": role.valid_until,
                    "member_of": sorted(tenancy.graph.holders(name).keys() - {name}),
                    "can_connect_to": tenancy.connectable(name),
                    "owns_databases": owns,
                },
                remediation="\n".join(
                    [
                        sql_comment(
                            f"if an app uses it, add {name!r} to that app's roles in "
                            "pgwarden.toml instead; if nobody does, stop its logins now:"
                        ),
                        f"ALTER ROLE {quote_ident(name)} NOLOGIN;",
                        sql_comment(
                            f"later, in each database: REASSIGN OWNED BY {quote_ident(name)} TO "
                            f"{admin}; DROP OWNED BY {quote_ident(name)}; then DROP ROLE "
                            f"{quote_ident(name)};"
                        ),
                    ]
                ),
            )


RULES = [PrivilegedAppRole, AppRoleInPrivilegedRole, ConnectionLimits, UnmappedLogin]
