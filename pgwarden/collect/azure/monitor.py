"""The Azure Monitor collector: metric alert rules that watch a server.

``metric_alerts.list_by_subscription()`` has no scope filter, so the alerts are
matched to the server here: an alert scoped to the server itself, or to its resource
group or subscription with Flexible Servers as its target resource type. The list is
read once per subscription and run (``AzureSession.cache``). Every alert of the
subscription is read, other teams' too, so any failure (one odd alert the SDK cannot
deserialize included) costs the alerts section only.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from azure.core.pipeline import PipelineResponse
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.monitor.models import MetricAlertResource

from pgwarden.collect.azure.cloud import AzureSession, azure_gap, host_of
from pgwarden.collect.azure.rest import follow_pages, next_link
from pgwarden.model.snapshot import Gap, MetricAlert

FLEXIBLE_SERVER_TYPE = "microsoft.dbforpostgresql/flexibleservers"


def alert_covers(alert: MetricAlert, server_id: str) -> bool:
    """Whether an alert's scopes include the server (ARM ids compare case-insensitively)."""
    target = server_id.lower().rstrip("/")
    for scope in alert.scopes:
        scope = scope.lower().rstrip("/")
        if scope == target:
            return True
        wide = target.startswith(scope + "/")
        if wide and (alert.target_resource_type or "").lower() == FLEXIBLE_SERVER_TYPE:
            return True
    return False


def _alert(resource: MetricAlertResource) -> MetricAlert:
    criteria = resource.criteria
    metrics = tuple(
        str(name)
        for criterion in (getattr(criteria, "all_of", None) or ())
        if (name := getattr(criterion, "metric_name", None))
    )
    resource_id = resource.id or ""
    return MetricAlert(
        id=resource_id,
        # Azure's own examples list alerts without a name: the id ends with it.
        name=resource.name or resource_id.rstrip("/").rsplit("/", 1)[-1],
        enabled=bool(resource.enabled),
        scopes=tuple(resource.scopes or ()),
        target_resource_type=resource.target_resource_type,
        metrics=metrics,
    )


def collect_metric_alerts(
    session: AzureSession, subscription_id: str, server_id: str
) -> tuple[tuple[MetricAlert, ...] | None, Gap | None]:
    """The subscription's metric alerts that cover the server, or the Gap why not."""
    try:
        alerts = session.cache.get(
            ("metric-alerts", subscription_id.lower()),
            lambda: _subscription_alerts(session, subscription_id),
        )
    except Exception as exc:
        return None, azure_gap(
            "azure.alerts",
            exc,
            action=f"list the metric alerts of subscription {subscription_id}",
            role=f"Monitoring Reader (or Reader) on subscription {subscription_id}",
            host=host_of(session.arm_endpoint),
        )
    return tuple(a for a in alerts if alert_covers(a, server_id)), None


def _subscription_alerts(session: AzureSession, subscription_id: str) -> tuple[MetricAlert, ...]:
    """Every metric alert of the subscription, every page of them.

    The SDK's pager for this list (api-version 2018-03-01, documented as one page)
    drops a ``nextLink``; a list cut short would pass servers whose alerts are on a
    later page. Each page's link is read from its answer and followed here.
    """
    client = MonitorManagementClient(session.credential, subscription_id, **session.arm_kwargs())

    def page(link: str | None) -> tuple[list[MetricAlertResource], str | None]:
        links: list[str | None] = []

        def remember_link(response: PipelineResponse[Any, Any]) -> None:
            try:
                links.append(next_link(response.http_response.json()))
            except ValueError:
                links.append(None)  # not JSON: the SDK raises its own error for the page

        pages = client.metric_alerts.list_by_subscription(raw_response_hook=remember_link)
        items = list(next(pages.by_page(continuation_token=link), ()))
        return items, links[-1] if links else None

    try:
        alerts = [
            _alert(resource)
            for resources, _link in follow_pages(page(None), page, link_of=itemgetter(1))
            for resource in resources
        ]
        return tuple(alerts)
    finally:
        client.close()
