"""PGW-AZ-006: diagnostic settings that keep the server's PostgreSQL logs."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import AZURE_POLICY, CIS_AZURE, NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict

# Log categories (or category groups) that carry the server's PostgreSQL logs.
POSTGRES_LOGS = frozenset({"alllogs", "postgresqllogs"})


class NoDiagnosticLogs(Rule):
    """No diagnostic setting sends the server's PostgreSQL logs anywhere.

    The server keeps its own log files for a few days at most (``logfiles.retention_days``,
    7 at the very most), on the server itself. Connection attempts, errors and audit
    records of every tenant are evidence an investigation needs weeks later; a
    diagnostic setting streams them to Log Analytics, a storage account or an event
    hub, outside the server's reach. CIS asks for resource logs;
    ``require_diagnostic_logs = false`` turns the check off.

    Violation: no diagnostic setting of the server has the PostgreSQLLogs category (or
    the allLogs category group) enabled with at least one destination.

    Fix: az monitor diagnostic-settings create --name pgwarden-logs --resource
    SERVER_ID --logs '[{"categoryGroup": "allLogs", "enabled": true}]' --workspace
    WORKSPACE_ID (or --storage-account / --event-hub-rule).
    """

    id = "PGW-AZ-006"
    severity = "medium"
    # One definition per destination (Log Analytics, Event Hub, Storage): the rule
    # accepts any, so each definition's own destination is left to a person.
    controls = (
        Control(AZURE_POLICY, "cdd1dbc6-0004-4fcd-afd7-b67550de37ff"),
        Control(AZURE_POLICY, "bd0079c6-6f2d-42f4-9cee-e23930968f10"),
        Control(AZURE_POLICY, "499b7900-f44e-40ea-b8d3-2f3cf75f2ca4"),
        Control(CIS_AZURE, "6.4"),
        Control(NIST_800_53, "AU-12"),
    )
    requires = (Section.AZURE_DIAGNOSTIC_SETTINGS, Section.AZURE_SERVER)
    policy_switch = "require_diagnostic_logs"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        azure = snapshot.azure
        assert azure is not None and azure.diagnostic_settings is not None
        assert azure.server is not None
        settings = azure.diagnostic_settings
        for setting in settings:
            if setting.destinations and {log.lower() for log in setting.logs} & POSTGRES_LOGS:
                return
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"server {context.name!r}: "
            + (
                f"none of its {len(settings)} diagnostic setting(s) sends the PostgreSQL logs "
                "anywhere"
                if settings
                else "no diagnostic setting sends its PostgreSQL logs anywhere"
            ),
            evidence={
                "diagnostic_settings": {
                    s.name: {"logs": list(s.logs), "destinations": list(s.destinations)}
                    for s in sorted(settings, key=lambda s: s.name)[:10]
                },
                "total": len(settings),
            },
            remediation="az monitor diagnostic-settings create --name pgwarden-logs "
            f"--resource {azure.server.id} "
            '--logs \'[{"categoryGroup": "allLogs", "enabled": true}]\' '
            "--workspace WORKSPACE_ID",
        )
