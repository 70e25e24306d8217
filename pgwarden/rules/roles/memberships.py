"""PGW-ROLE-002: app roles that can use the admin role, another app's role or a privileged role."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain

from pgwarden.access.grants import shown_paths
from pgwarden.access.graph import RolePath
from pgwarden.access.remediation import verify_membership
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.evidence import put_capped
from pgwarden.model.snapshot import AZURE_ADMIN_GROUP, ServerSnapshot
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict, quote_ident
from pgwarden.rules.control_sets import ADMIN_PRIVILEGES, PREDEFINED_ROLES, PRIVILEGED_ACCOUNTS
from pgwarden.rules.roles._privileged import (
    admin_unknown,
    cut_script,
    group_risk,
    held_attributes,
    role_passed,
)


def _membership_risk(tenancy: Tenancy, role: str, holder: str) -> str | None:
    """Why ``role`` (an app role) must not use ``holder``'s privileges, or None."""
    other = tenancy.role_apps.get(holder)
    if (
        holder not in (tenancy.context.admin_role, AZURE_ADMIN_GROUP)
        and other is not None
        and other != tenancy.role_apps.get(role)
    ):
        return f"a role of app {other!r}: its privileges and ownership in that app's databases"
    return group_risk(tenancy, holder)


# pg_auth_members rows a finding shows (a deep chain has a row per grant).
MAX_ROWS_SHOWN = 10
MEMBERSHIPS_QUERY = (
    "SELECT m.rolname AS member, r.rolname AS role, a.* FROM pg_auth_members a "
    "JOIN pg_roles m ON m.oid = a.member JOIN pg_roles r ON r.oid = a.roleid ORDER BY 1, 2;"
)


def _membership_rows(
    tenancy: Tenancy, paths: Sequence[RolePath], limit: int
) -> tuple[list[dict[str, object]], int]:
    """The first ``limit`` pg_auth_members rows behind ``paths`` as findings show them
    (what an auditor can check by hand), and how many there are: a deep chain has a row
    per grant, and only the first few are shown."""
    graph = tenancy.graph
    edges = dict.fromkeys(chain.from_iterable(path.edges for path in paths))
    rows: list[dict[str, object]] = []
    for member, role in edges:
        if len(rows) >= limit:
            break
        rows += graph.grant_rows_evidence(member, role)[: limit - len(rows)]
    return rows, sum(map(graph.grant_row_count, edges))


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
    controls = (*ADMIN_PRIVILEGES, *PREDEFINED_ROLES, *PRIVILEGED_ACCOUNTS)
    requires = (Section.TENANCY_MAP, Section.POSTGRES)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        if context.admin_role is None:
            yield admin_unknown(context, "so membership in it cannot be checked")
        # Asked from the groups' side: only a group with members can be used by anyone,
        # and only an app role's or a privileged one is a risk; their users are few.
        found: list[tuple[str, str, str]] = []
        for group in tenancy.graph.groups:
            group_app = tenancy.role_apps.get(group)
            own_risk = group_risk(tenancy, group)
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
        if context.include_passed and context.admin_role is not None:
            members = {role for role, _holder, _risk in found}
            for role, app in sorted(tenancy.role_apps.items()):
                if role in members or role not in tenancy.roles:
                    continue
                yield role_passed(
                    role,
                    app,
                    f"role {role!r} of app {app!r} can use neither the admin role, "
                    "azure_pg_admin, another app's role nor a high-privilege predefined role",
                    member_of=sorted(tenancy.graph.holders(role).keys() - {role}),
                )

    @staticmethod
    def _verdict(tenancy: Tenancy, role: str, app: str, holder: str, risk: str) -> Verdict:
        paths = tenancy.graph.paths(role, holder)
        set_role = all(p.mode == "set role" for p in paths)
        lines, cuts = cut_script(tenancy, paths, app, f"{role!r} must not use {holder!r}: {risk}")
        evidence: dict[str, object] = {"role": role, "app": app, "member_of": holder, "risk": risk}
        # Deep chains make long paths, each grant a row: the first few show the way in.
        shown = shown_paths(paths)
        put_capped(evidence, "paths", [p.evidence() for p in shown], len(paths), limit=len(shown))
        # The grants of the paths shown, as pg_auth_members holds them; the query lists all.
        rows, total = _membership_rows(tenancy, shown, MAX_ROWS_SHOWN)
        put_capped(
            evidence,
            "membership_grants",
            rows,
            total,
            MEMBERSHIPS_QUERY,
            limit=MAX_ROWS_SHOWN,
        )
        revoke = [f"{m} in {r}" for m, r in cuts]
        put_capped(evidence, "revoke", revoke, len(revoke))
        evidence["verify"] = verify_membership(role, holder, tenancy.version_num)
        gained = held_attributes(tenancy.roles.get(holder))
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
