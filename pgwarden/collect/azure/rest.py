"""Typed GETs of the two ARM resources the installed SDKs do not cover.

``Microsoft.Insights/diagnosticSettings`` (azure-mgmt-monitor 7.0.0 dropped its
operations) and ``Microsoft.Security/pricings`` (azure-mgmt-security would be a whole
SDK for one GET) are read through an ARM client pipeline pgwarden already holds:
the same credential, token scope, retry budget, call counter and no body logging.
Errors are raised as azure-core's own exceptions, exactly as the SDKs raise them, and
each answer is parsed into the snapshot's models here, checking every value's type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

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


def arm_get(client: ArmRequestSender, path: str, api_version: str | None) -> Any:
    """The JSON of ``GET path`` on the client's ARM endpoint; HTTP errors raise.

    ``api_version`` None: ``path`` is a whole URL that carries its own (a nextLink).
    """
    params = {"api-version": api_version} if api_version is not None else {}
    request = HttpRequest("GET", path, params=params, headers={"Accept": "application/json"})
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


T = TypeVar("T")

# Pages of one list followed before the answer is taken as endless (a nextLink that
# never ends, or leads back): the section is then an error, never a partial list.
MAX_PAGES = 1000


def next_link(body: Any) -> str | None:
    """The ``nextLink`` of a list page, when there is one."""
    link = body.get("nextLink") if isinstance(body, dict) else None
    return link if isinstance(link, str) and link else None


def follow_pages(
    first: T, page: Callable[[str], T], link_of: Callable[[T], str | None] = next_link
) -> Iterator[T]:
    """``first`` and every page after it, each read with ``page(link_of(previous))``.

    The lists read this way are documented as one page, but ARM may page any list: a
    ``nextLink`` left unread would be a silent gap, so every one is followed.
    """
    body, seen = first, set[str]()
    yield body
    while (link := link_of(body)) is not None:
        if link in seen or len(seen) >= MAX_PAGES:
            raise UnexpectedAnswer("a list whose pages do not end")
        seen.add(link)
        body = page(link)
        yield body


def _items(client: ArmRequestSender, path: str, api_version: str) -> list[dict[str, Any]]:
    """Every item of a list, its pages followed."""
    items: list[dict[str, Any]] = []
    for body in follow_pages(
        arm_get(client, path, api_version), lambda link: arm_get(client, link, None)
    ):
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list):
            raise UnexpectedAnswer("no 'value' list")
        items.extend(item for item in values if isinstance(item, dict))
    return items


def _text(value: Any) -> str | None:
    """A string field; empty strings (Azure sends ``"workspaceId": ""``) are absent."""
    return value if isinstance(value, str) and value else None


def diagnostic_settings(client: ArmRequestSender, resource_id: str) -> list[DiagnosticSetting]:
    """The diagnostic settings of a resource (documented as one page at this api-version)."""
    path = f"{resource_id.rstrip('/')}/providers/Microsoft.Insights/diagnosticSettings"
    found: list[DiagnosticSetting] = []
    for item in _items(client, path, DIAGNOSTIC_SETTINGS_API):
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
    for item in _items(client, path, PRICINGS_API):
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
