"""PGW-BAK: backups and availability of the shared server (Azure ARM).

Backups and high availability are server-level on Flexible Server: every tenant gets
the weakest setting any of them tolerates, so the strictest app's need is the bar.
"""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.snapshot import AzureServer, ServerSnapshot
from pgwarden.rules.azure_cli import server_args
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict


def _server(snapshot: ServerSnapshot) -> AzureServer:
    assert snapshot.azure is not None and snapshot.azure.server is not None
    return snapshot.azure.server


def _unknown_retention(context: ServerContext) -> Verdict:
    return Verdict(
        resource=f"server/{context.name}",
        status="error",
        message="ARM did not report the server's backup retention (properties.backup)",
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

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        server = _server(snapshot)
        days = server.backup_retention_days
        minimum = context.policy.min_backup_retention_days
        if days is None:
            yield _unknown_retention(context)
            return
        if days >= minimum:
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

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if not context.policy.require_geo_redundant_backup:
            return
        server = _server(snapshot)
        if (server.geo_redundant_backup or "").lower() == "enabled":
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

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if not context.policy.require_high_availability:
            return
        server = _server(snapshot)
        mode = server.high_availability_mode
        if mode is not None and mode.lower() in ("zoneredundant", "samezone"):
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
