"""PGW-ROLE-003: app roles without a connection limit, and limits that oversubscribe the server."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.access.graph import PG16
from pgwarden.access.remediation import capped_statements, sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.config import AppConfig
from pgwarden.model.evidence import put_capped, put_capped_mapping
from pgwarden.model.frameworks.catalogue import CIS_POSTGRESQL_17, NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict, quote_ident
from pgwarden.rules.roles._privileged import role_passed

# Every login's connection limit, unlimited first: how to see what evidence lists in part.
LIMITS_QUERY = (
    "SELECT rolname, rolconnlimit FROM pg_roles WHERE rolcanlogin ORDER BY rolconnlimit, rolname;"
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
    controls = (Control(CIS_POSTGRESQL_17, "5.5"), Control(NIST_800_53, "SC-5"))
    requires = (Section.TENANCY_MAP, Section.POSTGRES)

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
            found = list(self._app(app, roles, app_limits, spare, unbounded))
            yield from found
            if context.include_passed and not found:
                yield from _app_passed(app, app_limits)
        if available is not None:
            verdict = self._server(tenancy, apps, caps, values, available)
            if verdict is not None:
                yield verdict
            elif context.include_passed:
                evidence: dict[str, object] = {
                    "max_connections": values["max_connections"],
                    "available": available,
                }
                put_capped_mapping(evidence, "app_limits", _largest(caps), len(caps), LIMITS_QUERY)
                yield Verdict(
                    resource="setting/max_connections",
                    status="pass",
                    message=f"the apps' connection limits add up to {sum(caps.values())}, "
                    f"within the {available} connections the server has for them",
                    evidence=evidence,
                )

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
        # Every finding of the app shows its roles' limits: the same capped view for all.
        shown: dict[str, object] = {}
        put_capped_mapping(
            shown,
            "app_roles_limits",
            sorted(limits.items(), key=lambda pair: (pair[1] >= 0, pair[0])),
            len(limits),
            LIMITS_QUERY,
        )
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
                    **shown,
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
                evidence={"connection_budget": budget, **shown},
                remediation="\n".join(
                    [
                        sql_comment(f"an even split of the budget of {budget}"),
                        *capped_statements(
                            [
                                f"ALTER ROLE {quote_ident(r)} CONNECTION LIMIT {share};"
                                for r in roles
                            ],
                            f"the same limit for each of app {app.name!r}'s other roles",
                        ),
                    ]
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
        statements: list[str] = []
        for app, roles in apps:
            if app.name in caps:
                share = max(1, available * caps[app.name] // max(committed, 1))
                per_role = max(1, share // max(len(roles), 1))
                statements += [
                    f"ALTER ROLE {quote_ident(r)} CONNECTION LIMIT {per_role};" for r in roles
                ]
        lines += capped_statements(
            statements,
            "each app's share of the available slots follows its limits, split evenly "
            "between its roles",
        )
        evidence: dict[str, object] = {
            "max_connections": values["max_connections"],
            "reserved": reserved,
            "available": available,
        }
        # On a server of a thousand apps the largest consumers are what a reader needs.
        put_capped_mapping(evidence, "app_limits", _largest(caps), len(caps), LIMITS_QUERY)
        put_capped_mapping(evidence, "app_budgets", _largest(budgets), len(budgets))
        without = [a.name for a, roles in apps if roles and a.name not in caps]
        put_capped(evidence, "apps_without_limit", without, len(without), LIMITS_QUERY)
        return Verdict(
            resource="setting/max_connections",
            message=" and ".join(what)
            + f", more than the {available} connections the server has for them",
            evidence=evidence,
            remediation="\n".join(lines),
        )


def _app_passed(app: AppConfig, limits: dict[str, int]) -> Iterable[Verdict]:
    """Pass records of an app's login roles, each with a limit that fits its budget."""
    for role, limit in limits.items():
        yield role_passed(
            role,
            app.name,
            f"role {role!r} of app {app.name!r} may hold at most {limit} connections",
            connection_limit=limit,
            connection_budget=app.connection_budget,
        )


def _largest(values: dict[str, int]) -> list[tuple[str, int]]:
    """``values`` largest first (ties by name): the order a capped list keeps."""
    return sorted(values.items(), key=lambda pair: (-pair[1], pair[0]))
