"""PGW-LOG: server logging that an audit trail needs."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import (
    AZURE_POLICY,
    CIS_AZURE,
    CIS_POSTGRESQL_16,
    CIS_POSTGRESQL_17,
    NIST_800_53,
)
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import set_parameter
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict
from pgwarden.rules.server_settings import (
    SettingsView,
    alter_system,
    read_settings,
    setting_passed,
)

# What an Azure control needs the rule to have read: Azure's server parameters, not
# pg_settings (which the rule falls back to on a server outside Azure).
AZURE_ONLY = (Section.AZURE_CONFIGURATIONS,)
# Settings that must be on.
LOGGED = ("log_connections", "log_disconnections", "log_checkpoints")
THROTTLE = "connection_throttle.enable"
# connection_throttle.enable exists on Azure for PostgreSQL 11-15 only.
THROTTLE_LAST_MAJOR = 15
RETENTION = "logfiles.retention_days"
MIN_RETENTION_DAYS = 4
NAMES = (*LOGGED, THROTTLE, RETENTION)
# PostgreSQL 18's log_connections is a list of these ('' logs none; on/true still mean
# receipt,authentication,authorization). Only 'authorization' logs role and database.
CONNECTION_ASPECTS = frozenset(
    {"receipt", "authentication", "authorization", "setup_durations", "all"}
)


def _omits_roles(value: str | None) -> bool:
    """A PostgreSQL 18 aspect list that never logs which role reached which database."""
    aspects = {a.strip().lower() for a in (value or "").split(",")}
    return aspects <= CONNECTION_ASPECTS and aspects.isdisjoint({"authorization", "all"})


class LoggingDisabled(Rule):
    """Connection, disconnection or checkpoint logging is off, or logs are kept too briefly.

    Without connection and disconnection logs nobody can tell which role reached
    which tenant's database, and when: the question every incident review of a
    shared server starts with. Checkpoint logs explain I/O stalls that hit all
    tenants. On Azure, connection throttling slows password guessing (PostgreSQL 15
    and older; the parameter does not exist on 16+), and server logs kept 3 days or
    less are gone before most incidents are noticed.

    Violation: ``log_connections``, ``log_disconnections`` or ``log_checkpoints`` is off
    (Azure server parameters, else pg_settings; from PostgreSQL 18 a ``log_connections``
    list without ``authorization`` names no role or database, and counts as off); on Azure,
    ``connection_throttle.enable`` is off on PostgreSQL 15 or older, or
    ``logfiles.retention_days`` is 3 or less.

    Fix: on Azure, az postgres flexible-server parameter set … --name NAME --value on
    (logfiles.retention_days: 7); elsewhere ALTER SYSTEM SET NAME = on;
    SELECT pg_reload_conf().
    """

    id = "PGW-LOG-001"
    severity = "low"
    controls = (
        Control(CIS_AZURE, "5.2.2", resources=("setting/log_checkpoints",), sections=AZURE_ONLY),
        Control(CIS_AZURE, "5.2.3", resources=(f"setting/{THROTTLE}",), sections=AZURE_ONLY),
        Control(CIS_AZURE, "5.2.4", resources=(f"setting/{RETENTION}",), sections=AZURE_ONLY),
        Control(CIS_POSTGRESQL_16, "3.1.20", resources=("setting/log_connections",)),
        Control(CIS_POSTGRESQL_16, "3.1.21", resources=("setting/log_disconnections",)),
        Control(CIS_POSTGRESQL_17, "3.1.20", resources=("setting/log_connections",)),
        Control(CIS_POSTGRESQL_17, "3.1.21", resources=("setting/log_disconnections",)),
        Control(
            AZURE_POLICY,
            "70be9e12-c935-49ac-9bd8-fd64b85c1f87",
            resources=("setting/log_checkpoints",),
            sections=AZURE_ONLY,
        ),
        Control(
            AZURE_POLICY,
            "086709ac-11b5-478d-a893-9567a16d2ae3",
            resources=("setting/log_connections",),
            sections=AZURE_ONLY,
        ),
        Control(
            AZURE_POLICY,
            "1d14b021-1bae-4f93-b36b-69695e14984a",
            resources=("setting/log_disconnections",),
            sections=AZURE_ONLY,
        ),
        Control(
            AZURE_POLICY,
            "dacf07fa-0eea-4486-80bc-b93fae88ac40",
            resources=(f"setting/{THROTTLE}",),
            sections=AZURE_ONLY,
        ),
        Control(NIST_800_53, "AU-2"),
        Control(NIST_800_53, "AU-11", resources=(f"setting/{RETENTION}",), sections=AZURE_ONLY),
        Control(NIST_800_53, "AU-12"),
    )
    # Either Azure's server parameters or pg_settings will do: the rule decides.
    requires = ()

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        view = read_settings(snapshot, NAMES)
        if isinstance(view, str):
            yield Verdict(
                resource=f"server/{context.name}",
                status="error",
                message=f"logging settings cannot be judged: {view}",
            )
            return
        for name in LOGGED:
            yield from self._must_be_on(snapshot, context, view, name)
        if view.source != "azure":
            return
        major = view.major_version
        # Unknown major version: judge the parameter only where the server shows it.
        if (major is not None and major <= THROTTLE_LAST_MAJOR) or (
            major is None and view.values.get(THROTTLE) is not None
        ):
            yield from self._must_be_on(snapshot, context, view, THROTTLE)
        yield from self._retention(snapshot, context, view)

    def _must_be_on(
        self, snapshot: ServerSnapshot, context: ServerContext, view: SettingsView, name: str
    ) -> Iterable[Verdict]:
        if (unreported := view.unreported(name)) is not None:
            yield unreported
            return
        value = view.values.get(name)
        if not view.is_off(name) and not (name == "log_connections" and _omits_roles(value)):
            if context.include_passed:
                yield setting_passed(view, name, f"{name} is {value!r} on server {context.name!r}")
            return
        yield Verdict(
            resource=f"setting/{name}",
            message=f"{name} is {value!r} on server {context.name!r}",
            evidence={
                "setting": name,
                "value": value,
                "source": view.where,
                "major_version": view.major_version,
            },
            remediation=set_parameter(snapshot, context, name, "on")
            if view.source == "azure"
            else alter_system(name, "on"),
        )

    def _retention(
        self, snapshot: ServerSnapshot, context: ServerContext, view: SettingsView
    ) -> Iterable[Verdict]:
        if (unreported := view.unreported(RETENTION)) is not None:
            yield unreported
            return
        value = view.values.get(RETENTION) or ""
        try:
            days = int(value)
        except ValueError:
            yield Verdict(
                resource=f"setting/{RETENTION}",
                status="error",
                message=f"{RETENTION} is {value!r}, not a number of days",
            )
            return
        if days >= MIN_RETENTION_DAYS:
            if context.include_passed:
                yield setting_passed(
                    view, RETENTION, f"server logs of {context.name!r} are kept {days} days"
                )
            return
        yield Verdict(
            resource=f"setting/{RETENTION}",
            message=(
                f"server logs of {context.name!r} are kept {days} day(s); keep them more than 3"
            ),
            evidence={"setting": RETENTION, "value": value, "minimum": MIN_RETENTION_DAYS},
            remediation=set_parameter(snapshot, context, RETENTION, "7"),
        )


RULES = [LoggingDisabled]
