"""Azure Resource Graph: every Flexible Server the identity can read, in one paged query.

``POST /providers/Microsoft.ResourceGraph/resources`` (api-version 2024-04-01) answers
at most 1,000 rows a page and a ``$skipToken`` for the next; the projection keeps
``id`` so the pages come back in a stable order. Queries go through azure-core's ARM
pipeline with the session's credential, token scope, bounded retries and silenced
body logging, like every other Azure client of a scan. (The ``azure-mgmt-resourcegraph``
package would add ``msrest``, which Microsoft has deprecated, for this one call.)

Resource Graph throttles per user, about 15 queries in 5 seconds, and says how many
are left (``x-ms-user-quota-remaining``) and when the window resets
(``x-ms-user-quota-resets-after``). Queries are paced under that quota, a page that
leaves none waits for the reset, and a 429 waits the reset out (within the session's
``Retry-After`` budget) and asks again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from azure.core.configuration import Configuration
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline.policies import (
    CustomHookPolicy,
    HeadersPolicy,
    ProxyPolicy,
    RedirectPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest, HttpResponse
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

from pgwarden import __version__
from pgwarden.collect.azure.cloud import AzureSession, azure_gap, host_of
from pgwarden.collect.azure.throttle import QueryPacer, quota_remaining, quota_reset_seconds
from pgwarden.model.errors import ConfigError
from pgwarden.model.snapshot import Gap

API_VERSION = "2024-04-01"
PATH = "/providers/Microsoft.ResourceGraph/resources"
PAGE_ROWS = 1000
SERVICE = "resource-graph"
# A 429 without a reset time still waits a little before asking again.
DEFAULT_THROTTLE_WAIT_S = 5.0
MAX_THROTTLED_TRIES = 5
# The quota is the user's, whatever the client: one pacer for the process.
_PACER = QueryPacer()


@dataclass(frozen=True)
class GraphQuery:
    """One Resource Graph query: KQL text and the subscriptions it runs over (all when
    empty: every subscription the identity can read in the tenant)."""

    query: str
    subscriptions: tuple[str, ...] = ()

    def body(self, skip_token: str | None) -> dict[str, Any]:
        options: dict[str, Any] = {"$top": PAGE_ROWS, "resultFormat": "objectArray"}
        if skip_token is not None:
            options["$skipToken"] = skip_token
        body: dict[str, Any] = {"query": self.query, "options": options}
        if self.subscriptions:
            body["subscriptions"] = list(self.subscriptions)
        return body


@dataclass(frozen=True)
class GraphPage:
    """One page of rows, and the token for the next (None on the last)."""

    rows: tuple[dict[str, Any], ...]
    skip_token: str | None
    total_records: int | None = None
    # resultTruncated: Resource Graph left rows out and gave no token to read them.
    truncated: bool = False


@dataclass
class GraphStats:
    """What a query cost: pages, throttled answers, and seconds spent waiting on quota."""

    pages: int = 0
    throttled: int = 0
    waited_s: float = 0.0
    seconds: float = 0.0
    rows: int = 0
    pages_rows: list[int] = field(default_factory=list)


class ResourceGraphClient:
    """Runs Resource Graph queries for one scan's AzureSession."""

    def __init__(self, session: AzureSession, pacer: QueryPacer | None = None) -> None:
        self._session = session
        self._pacer = pacer or _PACER
        kwargs = session.client_kwargs(session.arm_endpoint, (session.cloud.arm_endpoint,))
        config: Configuration[Any, Any] = Configuration(**kwargs)
        config.headers_policy = HeadersPolicy()
        config.user_agent_policy = UserAgentPolicy(sdk_moniker=f"pgwarden/{__version__}")
        config.proxy_policy = ProxyPolicy()
        config.redirect_policy = RedirectPolicy()
        config.retry_policy = kwargs["retry_policy"]
        config.custom_hook_policy = CustomHookPolicy()
        config.logging_policy = kwargs["logging_policy"]
        config.http_logging_policy = ARMHttpLoggingPolicy()
        config.authentication_policy = ARMChallengeAuthenticationPolicy(
            session.credential, session.cloud.arm_scope
        )
        self._client: ARMPipelineClient[HttpRequest, HttpResponse] = ARMPipelineClient(
            base_url=session.arm_endpoint, config=config, **kwargs
        )
        self.stats = GraphStats()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ResourceGraphClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def rows(self, query: GraphQuery) -> Iterator[dict[str, Any]]:
        """Every row of the query, page after page."""
        started = time.perf_counter()
        token: str | None = None
        read = 0
        try:
            while True:
                page = self.page(query, token)
                read += len(page.rows)
                yield from page.rows
                if not page.skip_token:
                    break
                token = page.skip_token
        finally:
            self.stats.seconds += time.perf_counter() - started
        # A list cut short would leave servers unaudited and unnamed: never taken as whole.
        total = page.total_records
        if page.truncated or (total is not None and read < total):
            shown = f"{read} of {total}" if total is not None else f"only {read}"
            raise ConfigError(
                f"[fleet] discover: Azure Resource Graph returned {shown} rows and no way to "
                "read the rest (fix: narrow the discovery's scope, or run the scan again)"
            )

    def page(self, query: GraphQuery, skip_token: str | None) -> GraphPage:
        """One page; throttling is waited out, every other failure is one ConfigError."""
        for _attempt in range(MAX_THROTTLED_TRIES):
            self._pacer.take()
            self.stats.waited_s += self._session.gate.wait(SERVICE)
            response = self._send(query, skip_token)
            reset = quota_reset_seconds(response.headers)
            if response.status_code == 429:
                self.stats.throttled += 1
                wait = reset if reset is not None else DEFAULT_THROTTLE_WAIT_S
                if not self._session.budget.take(wait):
                    raise self._failure(response)
                self._session.gate.hold(SERVICE, wait)
                continue
            if response.status_code != 200:
                raise self._failure(response)
            if quota_remaining(response.headers) == 0 and reset is not None:
                # The window is spent: the next query would be refused until it resets.
                self._session.gate.hold(SERVICE, reset)
            return self._parse(response)
        raise self._failure(response)

    def _send(self, query: GraphQuery, skip_token: str | None) -> HttpResponse:
        request = HttpRequest(
            "POST",
            self._client.format_url(PATH),
            params={"api-version": API_VERSION},
            json=query.body(skip_token),
        )
        try:
            return self._client.send_request(request)
        except AzureError as exc:
            gap = self._gap(exc)
            fix = f" ({gap.fix})" if gap.fix else ""
            raise ConfigError(f"[fleet] discover: {gap.reason}{fix}") from None

    def _parse(self, response: HttpResponse) -> GraphPage:
        try:
            body = response.json()
            rows = body["data"]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise TypeError("data is not a list of objects")
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                "[fleet] discover: Resource Graph answered with something other than rows "
                "(is arm_endpoint an Azure Resource Manager endpoint?)"
            ) from None
        token = body.get("$skipToken")
        self.stats.pages += 1
        self.stats.rows += len(rows)
        self.stats.pages_rows.append(len(rows))
        total = body.get("totalRecords")
        truncated = body.get("resultTruncated")
        return GraphPage(
            rows=tuple(rows),
            skip_token=token if isinstance(token, str) and token else None,
            total_records=total if isinstance(total, int) else None,
            truncated=truncated is True or str(truncated).lower() == "true",
        )

    def _failure(self, response: HttpResponse) -> ConfigError:
        gap = self._gap(HttpResponseError(response=response, error_format=ARMErrorFormat))
        fix = f" ({gap.fix})" if gap.fix else ""
        return ConfigError(f"[fleet] discover: {gap.reason}{fix}")

    def _gap(self, exc: AzureError) -> Gap:
        return azure_gap(
            "fleet",
            exc,
            action="query Azure Resource Graph for Flexible Servers",
            role="Reader on the subscriptions (or management group) to audit",
            host=host_of(self._session.arm_endpoint),
        )
