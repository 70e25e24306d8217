"""PGW-BAK: backups and availability of the shared server (Azure ARM).

Backups and high availability are server-level on Flexible Server: every tenant gets
the weakest setting any of them tolerates, so the strictest app's need is the bar.
"""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import AZURE_POLICY, NIST_800_53
from pgwarden.model.snapshot import AzureServer, ServerSnapshot
from pgwarden.rules.azure_cli import server_args
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict
from pgwarden.rules.control_sets import BASE_BACKUPS

BACKUP = (Control(NIST_800_53, "CP-9"),)


def _server(snapshot: ServerSnapshot) -> AzureServer:
    assert snapshot.azure is not None and snapshot.azure.server is not None
    return snapshot.azure.server


def _unknown_retention(context: ServerContext) -> Verdict:
    return Verdict(
        resource=f"server/{context.name}",
        status="error",
        message="ARM did not report the server's backup retention (properties.backup)",
    )


def _server_passed(context: ServerContext, message: str, evidence: dict[str, object]) -> Verdict:
    return Verdict(
        resource=f"server/{context.name}", status="pass", message=message, evidence=evidence
    )


def _set_retention(snapshot: ServerSnapshot, context: ServerContext, days: int) -> str:
    return (
        f"az postgres flexible-server update {server_args(snapshot, context)} "
        f"--backup-retention {days}"
    )


class BackupRetentionBelowPolicy(Rule):
    """Backup retention is shorter than the policy's minimum.

    Point-in-time restore reaches back only as far as the retention period. A
    corruption, a bad migration or a ransomware run noticed after that is
    unrecoverable, for every database on the server at once.

    Violation: ``backup.backupRetentionDays`` below ``min_backup_retention_days``.

    Fix: raise the retention (7-35 days):
    az postgres flexible-server update … --backup-retention DAYS.
    """

    id = "PGW-BAK-001"
    severity = "high"
    requires = (Section.AZURE_SERVER,)
    controls = (*BASE_BACKUPS, *BACKUP)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        server = _server(snapshot)
        days = server.backup_retention_days
        minimum = context.policy.min_backup_retention_days
        if days is None:
            yield _unknown_retention(context)
            return
        if days >= minimum:
            if context.include_passed:
                yield _server_passed(
                    context,
                    f"backups of server {server.name!r} are kept {days} days (the policy asks "
                    f"for at least {minimum})",
                    {"backup_retention_days": days, "min_backup_retention_days": minimum},
                )
            return
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"backups of server {server.name!r} are kept {days} days; the policy asks "
            f"for at least {minimum}",
            evidence={"backup_retention_days": days, "min_backup_retention_days": minimum},
            remediation=_set_retention(snapshot, context, minimum),
        )


class BackupRetentionBelowAppNeed(Rule):
    """Backup retention is shorter than an app's own requirement.

    Backups are taken of the whole server, so one retention period applies to every
    tenant. An app that promised its users (or its auditors) a longer restore window
    does not get it on this server.

    Violation: ``backup.backupRetentionDays`` below an app's ``backup_retention_days``;
    reported for each of that app's databases.

    Fix: raise the server's retention to the strictest app's need
    (az postgres flexible-server update … --backup-retention DAYS), or move the app
    to a server whose retention it controls.
    """

    id = "PGW-BAK-002"
    severity = "high"
    requires = (Section.TENANCY_MAP, Section.AZURE_SERVER)
    controls = BACKUP

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        server = _server(snapshot)
        days = server.backup_retention_days
        needs = [a for a in context.server.app if a.backup_retention_days is not None]
        if not needs:
            return
        if days is None:
            yield _unknown_retention(context)
            return
        strictest = max(a.backup_retention_days or 0 for a in needs)
        for app in needs:
            need = app.backup_retention_days or 0
            if days >= need:
                if context.include_passed:
                    for database in app.databases:
                        yield Verdict(
                            resource=f"database/{database}",
                            app=app.name,
                            status="pass",
                            message=f"app {app.name!r} needs {need} days of backups; server "
                            f"{server.name!r} keeps {days}",
                            evidence={
                                "backup_retention_days": days,
                                "app_backup_retention_days": need,
                            },
                        )
                continue
            for database in app.databases or (f"(app {app.name})",):
                yield Verdict(
                    resource=f"database/{database}",
                    app=app.name,
                    message=f"app {app.name!r} needs {need} days of backups, but server "
                    f"{server.name!r} keeps {days} (backups are server-wide)",
                    evidence={
                        "backup_retention_days": days,
                        "app_backup_retention_days": need,
                        "strictest_app_need": strictest,
                    },
                    remediation=_set_retention(snapshot, context, strictest),
                )


class GeoRedundantBackupOff(Rule):
    """Geo-redundant backup is off while the policy requires it.

    Without geo-redundant backup, a regional outage or loss leaves no copy to restore
    from in another region; every tenant is affected at once.

    Violation: ``backup.geoRedundantBackup`` is not Enabled while
    ``require_geo_redundant_backup`` is true.

    Fix: geo-redundant backup is chosen when a server is created: create a
    replacement server with it (az postgres flexible-server create …
    --geo-redundant-backup Enabled), move the databases, and retire this one.
    """

    id = "PGW-BAK-003"
    severity = "medium"
    requires = (Section.AZURE_SERVER,)
    controls = (
        *BASE_BACKUPS,
        Control(AZURE_POLICY, "cee2f9fd-3968-44be-a863-bd62c9884423"),
        Control(NIST_800_53, "CP-6"),
        *BACKUP,
    )

    def not_applicable(self, context: ServerContext) -> str | None:
        if context.policy.require_geo_redundant_backup:
            return None
        return (
            "the policy does not require geo-redundant backup "
            "(require_geo_redundant_backup = false)"
        )

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        server = _server(snapshot)
        if (server.geo_redundant_backup or "").lower() == "enabled":
            if context.include_passed:
                yield _server_passed(
                    context,
                    f"backups of server {server.name!r} are geo-redundant",
                    {
                        "geo_redundant_backup": server.geo_redundant_backup,
                        "location": server.location,
                    },
                )
            return
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"geo-redundant backup of server {server.name!r} is "
            f"{server.geo_redundant_backup or 'not reported'}; the policy requires it",
            evidence={
                "geo_redundant_backup": server.geo_redundant_backup,
                "location": server.location,
            },
            remediation=(
                "Geo-redundant backup can only be chosen at creation: az postgres flexible-server "
                "create --resource-group RESOURCE_GROUP --name NEW_SERVER --geo-redundant-backup "
                f"Enabled …, then move the databases of {server.name} to it"
            ),
        )


class HighAvailabilityOff(Rule):
    """High availability is off while the policy requires it.

    Without a standby, a zone failure or host fault takes every tenant offline until
    the server is rebuilt; on a shared server one outage is every app's outage.

    Violation: ``highAvailability.mode`` is Disabled (or absent) while
    ``require_high_availability`` is true.

    Fix: az postgres flexible-server update … --high-availability ZoneRedundant
    (General Purpose or Memory Optimized tiers; Burstable has no HA).
    """

    id = "PGW-BAK-004"
    severity = "medium"
    requires = (Section.AZURE_SERVER,)
    controls = (Control(NIST_800_53, "CP-10"),)

    def not_applicable(self, context: ServerContext) -> str | None:
        if context.policy.require_high_availability:
            return None
        return "the policy does not require high availability (require_high_availability = false)"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        server = _server(snapshot)
        mode = server.high_availability_mode
        if mode is not None and mode.lower() in ("zoneredundant", "samezone"):
            if context.include_passed:
                yield _server_passed(
                    context,
                    f"server {server.name!r} has a standby (high availability {mode})",
                    {"high_availability_mode": mode},
                )
            return
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"server {server.name!r} has no high availability (mode "
            f"{mode or 'not reported'}); the policy requires it",
            evidence={"high_availability_mode": mode},
            remediation=(
                f"az postgres flexible-server update {server_args(snapshot, context)} "
                "--high-availability ZoneRedundant"
            ),
        )


RULES = [
    BackupRetentionBelowPolicy,
    BackupRetentionBelowAppNeed,
    GeoRedundantBackupOff,
    HighAvailabilityOff,
]
