"""PGW-FUNC-003: SECURITY DEFINER routines that another app may run with their owner's
privileges."""

from __future__ import annotations

from pgwarden.access.tenancy import Tenancy
from pgwarden.rules.base import Section, Verdict
from pgwarden.rules.functions._callers import CallerSet
from pgwarden.rules.functions._definer import (
    DEFINER_CONTROLS,
    Definer,
    DefinerRule,
)


def _foreign_callers(definer: Definer) -> CallerSet:
    """The callers outside the app the routine works for (the owner's, else the database's)."""
    home = definer.app if definer.owner_power is not None else definer.owner_app
    return definer.callers.outside(home)


class DefinerCalledAcrossApps(DefinerRule):
    """A SECURITY DEFINER routine with a pinned search_path may be called by another app.

    A pinned ``search_path`` stops callers from planting look-alike objects, but the
    routine still does what its body does with its owner's privileges: for a
    privileged owner (the admin, a member of ``azure_pg_admin``, a superuser) or
    another app's role, that is a door through the tenancy boundary whose width is
    whatever the body allows (dynamic SQL built from arguments makes it arbitrary). A
    routine a privileged role made for its own app's roles, or an app's routine only
    its own roles may call, is the intended pattern and is not reported.

    Violation: A SECURITY DEFINER routine in an app database pins its ``search_path``
    (through no schema where PUBLIC may CREATE) and is owned by a privileged role
    that a principal of another app than the database's may call, or by an app role
    (or a login of no app) that a principal of another app may call (EXECUTE, and
    CONNECT to the database).

    Fix: REVOKE EXECUTE ON ROUTINE <routine> FROM PUBLIC (or from the foreign grantee),
    granting it to the roles meant to call it; review what the body lets its callers
    do as the owner.
    """

    id = "PGW-FUNC-003"
    severity = "medium"
    controls = DEFINER_CONTROLS
    requires = (
        Section.TENANCY_MAP,
        Section.POSTGRES,
    )

    def judge(self, tenancy: Tenancy, definer: Definer) -> Verdict | None:
        if not definer.pinned:
            return None  # PGW-FUNC-001 and -002 judge those
        if definer.owner_power is None and not definer.owner_is_principal:
            return None
        callers = _foreign_callers(definer)
        if not callers:
            return None
        owner = definer.function.owner
        power = (
            definer.owner_power
            if definer.owner_power is not None
            else f"of app {definer.owner_app!r}"
            if definer.owner_app
            else "a login of no app"
        )
        home = definer.app if definer.owner_power is not None else definer.owner_app
        return Verdict(
            resource=definer.resource,
            app=home or definer.app,
            message=f"{definer.function.kind} {definer.signature} in database "
            f"{definer.database!r} runs as {owner!r} ({power}) with search_path "
            f"{definer.function.search_path!r}, and {len(callers)} principal(s) of other "
            f"apps may call it",
            evidence=definer.evidence(callers),
            remediation=definer.remediation(tenancy, callers, home),
        )
