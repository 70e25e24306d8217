"""PGW-MON: Azure Monitor alerts on the shared server's resources."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import resource_group
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict

# What must be watched, and the Flexible Server metrics that count as watching it.
WATCHED: dict[str, tuple[str, ...]] = {
    "cpu": ("cpu_percent",),
    "memory": ("memory_percent",),
    "storage": ("storage_percent", "storage_used", "storage_free"),
    "active connections": ("active_connections",),
}
# The metric each missing alert is created for, with a starting threshold.
SUGGESTED = {
    "cpu": "avg cpu_percent > 80",
    "memory": "avg memory_percent > 85",
    "storage": "avg storage_percent > 80",
    "active connections": "avg active_connections > 80",
}


class MissingMetricAlerts(Rule):
    """No enabled metric alert watches the server's CPU, memory, storage or connections.

    Tenants of a shared server compete for one CPU, one memory, one disk and one
    connection limit; one app's runaway job or connection leak starves the others.
    Without alerts, the first signal is an outage. Alerts scoped to the server, or to
    its resource group or subscription for Flexible Servers, count; disabled ones do not.

    Violation: for at least one of CPU (cpu_percent), memory (memory_percent),
    storage (storage_percent, storage_used or storage_free) and active connections
    (active_connections), no enabled metric alert covers the server.

    Fix: create the missing alerts, e.g. az monitor metrics alert create --name
    pg-cpu --resource-group RG --scopes SERVER_ID --condition "avg cpu_percent > 80".
    """

    id = "PGW-MON-001"
    severity = "low"
    requires = (Section.AZURE_ALERTS, Section.AZURE_SERVER)
    controls = (Control(NIST_800_53, "SI-4"),)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        azure = snapshot.azure
        assert azure is not None and azure.metric_alerts is not None and azure.server is not None
        enabled = [a for a in azure.metric_alerts if a.enabled]
        watched = {metric.lower() for alert in enabled for metric in alert.metrics}
        missing = [what for what, metrics in WATCHED.items() if not watched & set(metrics)]
        if not missing:
            if context.include_passed:
                yield Verdict(
                    resource=f"server/{context.name}",
                    status="pass",
                    message=f"enabled metric alerts watch the {', '.join(WATCHED)} of server "
                    f"{azure.server.name!r}",
                    evidence={
                        "enabled_alerts": sorted(a.name for a in enabled),
                        "watched_metrics": sorted(watched),
                    },
                )
            return
        group = resource_group(snapshot, context)
        commands = "\n".join(
            f"az monitor metrics alert create --name {context.name}-{what.replace(' ', '-')} "
            f"--resource-group {group} --scopes {azure.server.id} "
            f'--condition "{SUGGESTED[what]}" --action ACTION_GROUP_ID'
            for what in missing
        )
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"no enabled metric alert watches the {', '.join(missing)} of server "
            f"{azure.server.name!r}",
            evidence={
                "missing": missing,
                "alerts_on_server": sorted(a.name for a in azure.metric_alerts),
                "disabled_alerts": sorted(a.name for a in azure.metric_alerts if not a.enabled),
                "watched_metrics": sorted(watched),
            },
            remediation=commands,
        )


RULES = [MissingMetricAlerts]
