"""PGW-FUNC-001 and -002: SECURITY DEFINER routines without a safe search_path."""

from __future__ import annotations

from pgwarden.access.tenancy import Tenancy
from pgwarden.rules.base import Section, Verdict
from pgwarden.rules.functions._definer import (
    DEFINER_CONTROLS,
    Definer,
    DefinerRule,
)


def _path_problem(definer: Definer) -> str:
    if definer.function.search_path is None:
        return "with its caller's search_path"
    schemas = ", ".join(map(repr, definer.writable_path))
    return f"with a search_path through {schemas}, where anyone may create objects"


class PrivilegedDefinerEscalation(DefinerRule):
    """A SECURITY DEFINER routine owned by a privileged role runs with its caller's
    search_path.

    The routine runs as its owner, and without a pinned ``search_path`` every name in
    it resolves where the caller says: a caller that creates a look-alike table,
    function or operator in a schema of its own (or in a public schema anyone may
    create in) runs arbitrary SQL as the owner. Owned by the admin role, a member of
    ``azure_pg_admin``, a superuser, or a role with CREATEROLE, REPLICATION, BYPASSRLS
    or a high-privilege predefined role, that makes every caller that privileged role:
    the app's own roles included, since the admin owns every app's database.

    Violation: A SECURITY DEFINER routine in an app database, owned by a privileged
    role, pins no ``search_path`` (or pins one through a schema where PUBLIC may
    CREATE), and a principal (an app role or a login of no app) can connect to the
    database and EXECUTE it (PUBLIC holds EXECUTE by default).

    Fix: ALTER ROUTINE <routine> SET search_path = <its schema>, pg_temp; and REVOKE
    EXECUTE ON ROUTINE <routine> FROM PUBLIC (granting it to the roles meant to call
    it); or ALTER ROUTINE <routine> SECURITY INVOKER when it needs none of the owner's
    privileges.
    """

    id = "PGW-FUNC-001"
    severity = "critical"
    controls = DEFINER_CONTROLS
    requires = (
        Section.TENANCY_MAP,
        Section.POSTGRES,
    )

    def judge(self, tenancy: Tenancy, definer: Definer) -> Verdict | None:
        if definer.owner_power is None or definer.pinned or not definer.callers:
            return None
        callers = definer.callers.outside(None)
        return Verdict(
            resource=definer.resource,
            app=definer.app,
            message=f"{definer.function.kind} {definer.signature} in database "
            f"{definer.database!r} runs as {definer.function.owner!r} "
            f"({definer.owner_power}) {_path_problem(definer)}, and {len(callers)} "
            f"principal(s) may call it: each can act as {definer.function.owner!r}",
            evidence=definer.evidence(callers),
            remediation=definer.remediation(tenancy, callers, definer.app),
        )


class ForeignDefinerEscalation(DefinerRule):
    """A SECURITY DEFINER routine owned by an app's role, with its caller's search_path,
    may be called by another app.

    The routine runs as its owner, and without a pinned ``search_path`` a caller runs
    arbitrary SQL as that owner (see PGW-FUNC-001): a role of another app calling a
    routine owned by an app's role becomes that role, with its tables in every
    database of its app, and may change its password (ALTER ROLE <owner> PASSWORD)
    and log in as it.

    Violation: A SECURITY DEFINER routine in an app database, owned by an app role or
    a login of no app (not privileged: that is PGW-FUNC-001), pins no ``search_path``
    (or pins one through a schema where PUBLIC may CREATE), and a principal of another
    app than the owner's (or a login of no app) can connect to the database and
    EXECUTE it.

    Fix: ALTER ROUTINE <routine> SET search_path = <its schema>, pg_temp; and REVOKE
    EXECUTE ON ROUTINE <routine> FROM PUBLIC (granting it to the owner's app's roles
    that call it).
    """

    id = "PGW-FUNC-002"
    severity = "high"
    controls = DEFINER_CONTROLS
    requires = (
        Section.TENANCY_MAP,
        Section.POSTGRES,
    )

    def judge(self, tenancy: Tenancy, definer: Definer) -> Verdict | None:
        if definer.owner_power is not None or not definer.owner_is_principal or definer.pinned:
            return None
        owner = definer.function.owner
        callers = definer.callers.outside(definer.owner_app)
        if not callers:
            return None
        of = f"app {definer.owner_app!r}" if definer.owner_app else "no app"
        return Verdict(
            resource=definer.resource,
            app=definer.owner_app or definer.app,
            message=f"{definer.function.kind} {definer.signature} in database "
            f"{definer.database!r} runs as {owner!r} (of {of}) {_path_problem(definer)}, "
            f"and {len(callers)} principal(s) of other apps may call it: each can act "
            f"as {owner!r}",
            evidence=definer.evidence(callers),
            remediation=definer.remediation(tenancy, callers, definer.owner_app),
        )
