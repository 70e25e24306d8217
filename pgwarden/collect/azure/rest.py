"""Typed GETs of the two ARM resources the installed SDKs do not cover.

``Microsoft.Insights/diagnosticSettings`` (azure-mgmt-monitor 7.0.0 dropped its
operations) and ``Microsoft.Security/pricings`` (azure-mgmt-security would be a whole
SDK for one GET) are read through an ARM client pipeline pgwarden already holds:
the same credential, token scope, retry budget, call counter and no body logging.
Errors are raised as azure-core's own exceptions, exactly as the SDKs raise them, and
each answer is parsed into the snapshot's models here, checking every value's type.
"""

from __future__ import annotations

from typing import Any, Protocol

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    map_error,
)
from azure.core.rest import HttpRequest, HttpResponse
from azure.mgmt.core.exceptions import ARMErrorFormat

from pgwarden.model.snapshot import DefenderPlan, DiagnosticSetting

DIAGNOSTIC_SETTINGS_API = "2021-05-01-preview"
PRICINGS_API = "2024-01-01"
OPEN_SOURCE_DATABASES_PLAN = "OpenSourceRelationalDatabases"


class ArmRequestSender(Protocol):
    """An SDK management client: ``send_request`` runs a request through its pipeline."""

    def send_request(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse: ...


def arm_get(client: ArmRequestSender, path: str, api_version: str) -> Any:
    """The JSON of ``GET path`` on the client's ARM endpoint; HTTP errors raise."""
    request = HttpRequest(
        "GET", path, params={"api-version": api_version}, headers={"Accept": "application/json"}
    )
    response = client.send_request(request)
    if response.status_code >= 400:
        map_error(
            response.status_code,
            response,
            {401: ClientAuthenticationError, 404: ResourceNotFoundError},
        )
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    return response.json()


class UnexpectedAnswer(ValueError):
    """An answer whose shape is not the documented one (its content is never quoted)."""


def _items(body: Any) -> list[dict[str, Any]]:
    values = body.get("value") if isinstance(body, dict) else None
    if not isinstance(values, list):
        raise UnexpectedAnswer("no 'value' list")
    return [item for item in values if isinstance(item, dict)]


def _text(value: Any) -> str | None:
    """A string field; empty strings (Azure sends ``"workspaceId": ""``) are absent."""
    return value if isinstance(value, str) and value else None


def diagnostic_settings(client: ArmRequestSender, resource_id: str) -> list[DiagnosticSetting]:
    """The diagnostic settings of a resource (not paged at this api-version)."""
    path = f"{resource_id.rstrip('/')}/providers/Microsoft.Insights/diagnosticSettings"
    found: list[DiagnosticSetting] = []
    for item in _items(arm_get(client, path, DIAGNOSTIC_SETTINGS_API)):
        props = item.get("properties")
        props = props if isinstance(props, dict) else {}
        logs = props.get("logs")
        enabled = tuple(
            name
            for log in (logs if isinstance(logs, list) else ())
            if isinstance(log, dict) and log.get("enabled") is True
            if (name := _text(log.get("category")) or _text(log.get("categoryGroup")))
        )
        found.append(
            DiagnosticSetting(
                name=_text(item.get("name")) or _last_segment(_text(item.get("id"))),
                workspace_id=_text(props.get("workspaceId")),
                storage_account_id=_text(props.get("storageAccountId")),
                event_hub=_text(props.get("eventHubAuthorizationRuleId"))
                or _text(props.get("eventHubName")),
                logs=enabled,
            )
        )
    return found


def defender_plan(client: ArmRequestSender, subscription_id: str, plan: str) -> DefenderPlan:
    """A subscription's Defender for Cloud plan, from the list of its pricings."""
    path = f"/subscriptions/{subscription_id}/providers/Microsoft.Security/pricings"
    for item in _items(arm_get(client, path, PRICINGS_API)):
        if (_text(item.get("name")) or "").lower() != plan.lower():
            continue
        props = item.get("properties")
        props = props if isinstance(props, dict) else {}
        return DefenderPlan(
            name=plan,
            pricing_tier=_text(props.get("pricingTier")),
            sub_plan=_text(props.get("subPlan")),
        )
    return DefenderPlan(name=plan)


def _last_segment(resource_id: str | None) -> str:
    return (resource_id or "").rstrip("/").rsplit("/", 1)[-1]
