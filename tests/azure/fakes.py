"""HTTPS fakes of Azure Resource Manager, Resource Graph, Key Vault and managed identity.

The real SDK clients talk to these over TLS (a trustme CA): JSON shaped like the REST
API, ``nextLink`` paging, Resource Graph's ``$skipToken`` paging and per-user quota
(15 queries in 5 s, answered with 429 and ``x-ms-user-quota-resets-after``), Key
Vault's 401 challenge, role assignments listed with ARM's scope semantics (at, above and
below a scope; ``atScope()``), Azure's own example responses for chosen paths
(``serve_example``), and injectable failures (403, 404, 429 with ``Retry-After``).
Nothing here patches an SDK method.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme
from azure.core.credentials import AccessToken
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

SUBSCRIPTION = "00000000-0000-0000-0000-00000000c0de"
TENANT = "11111111-1111-1111-1111-111111111111"
PG = "Microsoft.DBforPostgreSQL/flexibleServers"
# Values that must never show up in any output, log, snapshot or error message.
SECRET_CANARY = "Canary-Pa55word-7f3c9e"
TOKEN_CANARY = "eyTokenCanary-5b1d2a"


class StaticCredential:
    """A TokenCredential that hands out a fixed token and records the scopes asked for."""

    def __init__(self, token: str = TOKEN_CANARY) -> None:
        self.token = token
        self.scopes: list[str] = []
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            self.scopes.extend(scopes)
        return AccessToken(f"{self.token}.{scopes[0] if scopes else ''}", int(time.time()) + 3600)


class TlsFixture:
    """A throwaway CA and a server certificate for localhost and 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.ca_path = directory / "fake-azure-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.cert.configure_cert(context)
        return context


@dataclass
class Failure:
    """A canned error for requests whose path matches ``path`` (regex), ``times`` times;
    with ``query``, only those whose query string matches it too (one page of a list)."""

    path: str
    status: int
    code: str = "Failure"
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1_000_000
    query: str | None = None


@dataclass
class FakeFlexibleServer:
    name: str
    resource_group: str
    properties: dict[str, Any]
    firewall_rules: dict[str, tuple[str, str]] = field(default_factory=dict)
    configurations: dict[str, str] = field(default_factory=dict)
    administrators: list[dict[str, str]] = field(default_factory=list)
    subscription: str = SUBSCRIPTION
    threat_protection: str | None = "Disabled"  # None: Azure has no setting (404)
    diagnostic_settings: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{PG}/{self.name}"
        )


@dataclass
class FakeSecret:
    value: str
    content_type: str | None = None
    enabled: bool = True
    expires: int | None = None


@dataclass
class FakeVault:
    name: str
    resource_group: str
    soft_delete: bool = True
    purge_protection: bool | None = True
    rbac: bool = True
    public_network_access: str = "Enabled"
    secrets: dict[str, FakeSecret] = field(default_factory=dict)
    forbidden: bool = False
    server: HTTPServer | None = None
    # Access policies as ARM returns them (objectId, tenantId, permissions.secrets, …).
    access_policies: list[dict[str, Any]] = field(default_factory=list)
    network_default_action: str = "Allow"

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"https://localhost:{self.server.port}"

    subscription: str = SUBSCRIPTION

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.KeyVault/vaults/{self.name}"
        )


def metric_alert(
    name: str, scope: str, metrics: list[str], *, enabled: bool = True
) -> dict[str, Any]:
    """A metric alert rule as ARM returns it (single-resource criteria)."""
    return {
        "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/ops/providers/"
        f"Microsoft.Insights/metricAlerts/{name}",
        "name": name,
        "type": "Microsoft.Insights/metricAlerts",
        "location": "global",
        "properties": {
            "description": "",
            "severity": 2,
            "enabled": enabled,
            "scopes": [scope],
            "evaluationFrequency": "PT1M",
            "windowSize": "PT5M",
            "criteria": {
                "odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                "allOf": [
                    {
                        "criterionType": "StaticThresholdCriterion",
                        "name": f"c{index}",
                        "metricName": metric,
                        "metricNamespace": PG,
                        "operator": "GreaterThan",
                        "threshold": 80,
                        "timeAggregation": "Average",
                    }
                    for index, metric in enumerate(metrics)
                ],
            },
            "autoMitigate": True,
            "actions": [],
        },
    }


ROLE_DEFINITIONS = "Microsoft.Authorization/roleDefinitions"
# Built-in roles (their real ids, names and data actions) that matter to Key Vault.
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
KEY_VAULT_READER = "21090545-7ca7-4776-b22c-e363652d74d2"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def role_definition(
    guid: str,
    name: str,
    data_actions: list[str],
    not_data_actions: list[str] | None = None,
    *,
    role_type: str = "BuiltInRole",
    actions: list[str] | None = None,
) -> dict[str, Any]:
    """A role definition as ``GET /{roleDefinitionId}`` returns it (api-version 2022-04-01)."""
    return {
        "id": f"/providers/{ROLE_DEFINITIONS}/{guid}",
        "name": guid,
        "type": ROLE_DEFINITIONS,
        "properties": {
            "roleName": name,
            "type": role_type,
            "description": name,
            "assignableScopes": ["/"],
            "permissions": [
                {
                    "actions": actions or [],
                    "notActions": [],
                    "dataActions": data_actions,
                    "notDataActions": not_data_actions or [],
                }
            ],
        },
    }


BUILT_IN_ROLES = {
    KEY_VAULT_SECRETS_USER: role_definition(
        KEY_VAULT_SECRETS_USER,
        "Key Vault Secrets User",
        [
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    ),
    KEY_VAULT_ADMINISTRATOR: role_definition(
        KEY_VAULT_ADMINISTRATOR,
        "Key Vault Administrator",
        ["Microsoft.KeyVault/vaults/*"],
        actions=["Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read"],
    ),
    KEY_VAULT_READER: role_definition(
        KEY_VAULT_READER,
        "Key Vault Reader",
        [
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    ),
    READER: role_definition(READER, "Reader", [], actions=["*/read"]),
}


def role_assignment(
    scope: str,
    principal_id: str,
    role: str,
    *,
    principal_type: str = "ServicePrincipal",
    condition: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A role assignment as ARM lists it; ``role`` is a role definition's GUID."""
    definition_scope = "" if scope.startswith("/providers/") or scope == "/" else scope
    guid = name or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{principal_id}|{role}"))
    definition = f"{definition_scope.rstrip('/')}/providers/{ROLE_DEFINITIONS}/{role}"
    return {
        "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{guid}",
        "name": guid,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": definition,
            "principalId": principal_id,
            "principalType": principal_type,
            "scope": scope,
            **({"condition": condition, "conditionVersion": "2.0"} if condition else {}),
        },
    }


def graph_row(
    name: str,
    *,
    subscription: str = SUBSCRIPTION,
    resource_group: str = "rg",
    fqdn: str | None = None,
    tags: dict[str, str] | None = None,
    location: str = "westeurope",
) -> dict[str, Any]:
    """A Flexible Server as Resource Graph projects it (FLEET_QUERY's columns)."""
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
        f"/providers/{PG}/{name}",
        "name": name,
        "subscriptionId": subscription,
        "resourceGroup": resource_group,
        "location": location,
        "tags": tags or {},
        "fqdn": fqdn if fqdn is not None else f"{name}.postgres.database.azure.com",
    }


@dataclass
class GraphQuota:
    """Resource Graph's per-user quota: ``limit`` queries in any ``window`` seconds."""

    limit: int = 15
    window: float = 5.0
    sent: list[float] = field(default_factory=list)
    refused: int = 0

    def admit(self) -> tuple[bool, int, float]:
        """Whether one more query fits; the queries left; seconds until one frees up."""
        now = time.monotonic()
        self.sent = [t for t in self.sent if now - t < self.window]
        if len(self.sent) >= self.limit:
            self.refused += 1
            return False, 0, self.window - (now - self.sent[0])
        self.sent.append(now)
        return True, self.limit - len(self.sent), self.window - (now - self.sent[0])


def _hms(seconds: float) -> str:
    whole = max(1, int(seconds + 0.999))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": {"code": code, "message": message}}, status, headers)


class FakeAzure:
    """ARM (with managed identity's token endpoint) plus one HTTPS server per vault."""

    VAULT_SERVERS = 3

    def __init__(self, tls: TlsFixture, page_size: int = 2) -> None:
        self.tls = tls
        self.page_size = page_size
        self.servers: list[FakeFlexibleServer] = []
        self.vaults: list[FakeVault] = []
        self.metric_alerts: list[dict[str, Any]] = []
        self.defender_plans: dict[str, str] = {}
        self.role_assignments: list[dict[str, Any]] = []
        # Role definitions by GUID (the built-in ones are always there).
        self.role_definitions: dict[str, dict[str, Any]] = {}
        # Management groups above every subscription, nearest first.
        self.management_groups: list[str] = []
        self.examples: list[tuple[re.Pattern[str], Any]] = []
        # Resource Graph: rows beyond the servers above (a large fleet, cheaply), the
        # quota it enforces, and each query's body as received.
        self.graph_rows: list[dict[str, Any]] = []
        self.graph_quota = GraphQuota()
        self.graph_queries: list[dict[str, Any]] = []
        self.graph_canned: list[dict[str, Any]] = []  # answers given before any rows
        # Cut the answer after this many rows, as Resource Graph does when it truncates:
        # resultTruncated "true" and no $skipToken.
        self.graph_truncate_at: int | None = None
        self.failures: list[Failure] = []
        # Page the lists ARM documents as one page (metric alerts, diagnostic
        # settings, Defender pricings) as it pages others: a client must follow them.
        self.page_single_page_lists = False
        # Point every nextLink at this base instead of the host that served the page
        # (a misrouted or hostile answer): a client must not follow it there.
        self.link_base: str | None = None
        self.requests: list[tuple[str, str, str]] = []  # (host, path, authorization)
        self.arm = HTTPServer(ssl_context=tls.server_context(), threaded=True)
        self.arm.expect_request(re.compile(".*")).respond_with_handler(self._arm)
        # Each vault needs a host:port of its own (vaults are told apart by vaultUri);
        # a few servers, started once, are lent to the vaults of each test.
        self._vault_servers = [
            HTTPServer(ssl_context=tls.server_context(), threaded=True)
            for _ in range(self.VAULT_SERVERS)
        ]
        for server in self._vault_servers:
            server.expect_request(re.compile(".*")).respond_with_handler(
                functools.partial(self._vault_request, server)
            )
        self._extra: list[HTTPServer] = []
        self._lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self.arm.start()
        for server in self._vault_servers:
            server.start()

    def stop(self) -> None:
        for server in (self.arm, *self._vault_servers, *self._extra):
            if server.is_running():
                server.stop()

    def reset(self) -> None:
        """Forget every resource, failure and request (the servers keep running)."""
        for server in self._extra:
            server.stop()
        self._extra.clear()
        with self._lock:
            self.servers.clear()
            self.vaults.clear()
            self.metric_alerts.clear()
            self.defender_plans.clear()
            self.role_assignments.clear()
            self.role_definitions.clear()
            self.management_groups.clear()
            self.examples.clear()
            self.graph_rows.clear()
            self.graph_quota = GraphQuota()
            self.graph_queries.clear()
            self.graph_canned.clear()
            self.graph_truncate_at = None
            self.page_single_page_lists = False
            self.link_base = None
            self.failures.clear()
            self.requests.clear()

    @property
    def arm_url(self) -> str:
        return f"https://localhost:{self.arm.port}"

    def add_server(self, server: FakeFlexibleServer) -> FakeFlexibleServer:
        self.servers.append(server)
        return server

    def add_vault(self, vault: FakeVault, *, fresh_host: bool = False) -> FakeVault:
        """Serve a vault; ``fresh_host`` gives it a port no client has seen (Key Vault's
        challenge cache is process-wide, keyed by host:port)."""
        if fresh_host:
            server = HTTPServer(ssl_context=self.tls.server_context(), threaded=True)
            server.expect_request(re.compile(".*")).respond_with_handler(
                lambda request: self._vault_request(server, request)
            )
            server.start()
            self._extra.append(server)
            vault.server = server
        else:
            vault.server = self._vault_servers[
                sum(1 for v in self.vaults if v.server in self._vault_servers)
            ]
        self.vaults.append(vault)
        return vault

    def _vault_request(self, server: HTTPServer, request: Request) -> Response:
        vault = next((v for v in self.vaults if v.server is server), None)
        if vault is None:
            return _error(404, "VaultNotFound", "no vault is served here")
        return self._vault(vault, request)

    def serve_example(self, path: str, example: dict[str, Any], *, as_list: bool = False) -> None:
        """Answer requests whose path matches ``path`` (regex) with an example's 200 body.

        The body is Azure's own, verbatim, except that a ``nextLink`` to Azure's hosts
        is pointed at the fake, whose answer to it is an empty last page. ``as_list``
        serves a single resource's example as a one-item list page.
        """
        body = example["responses"]["200"]["body"]
        self.examples.append(
            (re.compile(path, re.IGNORECASE), {"value": [body]} if as_list else body)
        )

    def _example(self, request: Request, base: str) -> Response | None:
        # Azure's FirewallRulesListByServer.json links to ".../ffff//resourceGroups/...":
        # the fake reads the doubled slash as one.
        path = re.sub("/{2,}", "/", request.path)
        for pattern, body in self.examples:
            if not pattern.search(path):
                continue
            if "$skiptoken" in parse_qs(urlsplit(request.url).query):
                return _json({"value": []})
            if isinstance(body, dict) and isinstance(body.get("nextLink"), str):
                link = re.sub(r"^https://[^/]+", base, body["nextLink"])
                body = {**body, "nextLink": link}
            return _json(body)
        return None

    def fail(
        self,
        path: str,
        status: int,
        code: str = "Failure",
        *,
        times: int = 1_000_000,
        headers: dict[str, str] | None = None,
        query: str | None = None,
    ) -> None:
        self.failures.append(Failure(path, status, code, headers or {}, times, query))

    # --- plumbing ------------------------------------------------------------------

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(
                (request.host, request.path, request.headers.get("Authorization", ""))
            )

    def _injected(self, request: Request) -> Response | None:
        with self._lock:
            for failure in self.failures:
                if (
                    failure.times > 0
                    and re.search(failure.path, request.path)
                    and (
                        failure.query is None
                        or re.search(failure.query, urlsplit(request.url).query)
                    )
                ):
                    failure.times -= 1
                    return _error(
                        failure.status, failure.code, f"injected {failure.status}", failure.headers
                    )
        return None

    def _page(self, request: Request, base: str, items: list[dict[str, Any]]) -> Response:
        """One page of a list, with an absolute ``nextLink`` when more remain."""
        query = parse_qs(urlsplit(request.url).query)
        start = int(query.get("$skiptoken", ["0"])[0])
        end = start + self.page_size
        body: dict[str, Any] = {"value": items[start:end]}
        if end < len(items):
            version = query.get("api-version", ["x"])[0]
            link_base = self.link_base or base
            body["nextLink"] = f"{link_base}{request.path}?api-version={version}&$skiptoken={end}"
        return _json(body)

    # --- ARM -----------------------------------------------------------------------

    def _arm(self, request: Request) -> Response:
        self._record(request)
        path = request.path
        if path == "/msi/token":
            return self._managed_identity(request)
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _error(401, "AuthenticationFailed", "no bearer token")
        injected = self._injected(request)
        if injected is not None:
            return injected
        example = self._example(request, self.arm_url)
        if example is not None:
            return example
        if path.lower() == "/providers/microsoft.resourcegraph/resources":
            return self._resource_graph(request)
        sub = r"/subscriptions/(?P<sub>[^/]+)"
        group = rf"{sub}/resourceGroups/(?P<rg>[^/]+)"
        server = rf"{group}/providers/{PG}/(?P<name>[^/]+)"
        routes: list[tuple[str, Callable[[Request, dict[str, str]], Response]]] = [
            (rf"^{sub}/providers/{PG}$", self._list_servers),
            (rf"^{group}/providers/{PG}$", self._list_servers),
            (rf"^{server}$", self._get_server),
            (rf"^{server}/firewallRules$", self._firewall_rules),
            (rf"^{server}/configurations$", self._configurations),
            (rf"^{server}/administrators$", self._administrators),
            (rf"^{server}/advancedThreatProtectionSettings/Default$", self._threat_protection),
            (
                rf"^{server}/providers/Microsoft.Insights/diagnosticSettings$",
                self._diagnostic_settings,
            ),
            (rf"^{sub}/providers/Microsoft.Security/pricings$", self._pricings),
            (rf"^{sub}/providers/Microsoft.KeyVault/vaults$", self._list_vaults),
            (rf"^{group}/providers/Microsoft.KeyVault/vaults/(?P<vault>[^/]+)$", self._get_vault),
            (
                r"^(?P<scope>.*)/providers/Microsoft.Authorization/roleAssignments$",
                self._role_assignments,
            ),
            (
                rf"^(?P<scope>.*)/providers/{ROLE_DEFINITIONS}/(?P<guid>[^/]+)$",
                self._role_definition,
            ),
            (rf"^{sub}/providers/Microsoft.Insights/metricAlerts$", self._alerts),
        ]
        for pattern, handler in routes:
            match = re.match(pattern, path, re.IGNORECASE)
            if match:
                return handler(request, match.groupdict())
        return _error(404, "NotFound", f"no route for {path}")

    def _managed_identity(self, request: Request) -> Response:
        """App Service managed identity (IDENTITY_ENDPOINT / IDENTITY_HEADER)."""
        if request.headers.get("X-IDENTITY-HEADER") != "fake-identity-header":
            return _error(400, "BadRequest", "missing identity header")
        resource = request.args.get("resource", "")
        return _json(
            {
                "access_token": f"{TOKEN_CANARY}.{resource}",
                "expires_on": str(int(time.time()) + 3600),
                "resource": resource,
                "token_type": "Bearer",
            }
        )

    def _server(self, match: dict[str, str]) -> FakeFlexibleServer | None:
        for server in self.servers:
            if (
                server.subscription == match["sub"]
                and server.resource_group.lower() == match["rg"].lower()
                and server.name.lower() == match["name"].lower()
            ):
                return server
        return None

    @staticmethod
    def _server_json(server: FakeFlexibleServer) -> dict[str, Any]:
        return {
            "id": server.id,
            "name": server.name,
            "type": PG,
            "location": "westeurope",
            "sku": {"name": "Standard_B1ms", "tier": "Burstable"},
            "tags": server.tags,
            "properties": server.properties,
        }

    def _resource_graph(self, request: Request) -> Response:
        """``POST /providers/Microsoft.ResourceGraph/resources``: the Flexible Servers of
        the subscriptions asked for (all when none are), at most ``$top`` (<= 1,000) rows
        a page, a ``$skipToken`` for the next page, under the per-user quota."""
        if request.method != "POST" or request.args.get("api-version") is None:
            return _error(400, "BadRequest", "POST with an api-version")
        with self._lock:
            admitted, left, reset = self.graph_quota.admit()
        quota = {
            "x-ms-user-quota-remaining": str(left),
            "x-ms-user-quota-resets-after": _hms(reset),
        }
        if not admitted:
            return _error(429, "RateLimiting", "Please provide below info when asking", quota)
        body = json.loads(request.get_data(as_text=True) or "{}")
        with self._lock:
            self.graph_queries.append(body)
            canned = self.graph_canned.pop(0) if self.graph_canned else None
        if canned is not None:
            return _json(canned, 200, quota)
        query = str(body.get("query", ""))
        if PG.lower() not in query.lower():
            return _json({"totalRecords": 0, "count": 0, "data": [], "facets": []}, 200, quota)
        if not re.search(r"\|\s*project\s+id\b", query):
            return _error(400, "BadRequest", "paging needs id in the projection", quota)
        options = body.get("options") or {}
        top = int(options.get("$top", 100))
        if not 1 <= top <= 1000:
            return _error(400, "BadRequest", "$top must be between 1 and 1000", quota)
        token = options.get("$skipToken")
        start = int(base64.b64decode(token).decode()) if token else int(options.get("$skip", 0))
        wanted = {s.lower() for s in body.get("subscriptions") or ()}
        rows = [
            graph_row(
                s.name,
                subscription=s.subscription,
                resource_group=s.resource_group,
                fqdn=s.properties.get("fullyQualifiedDomainName"),
                tags=s.tags,
            )
            for s in self.servers
        ] + self.graph_rows
        rows = [r for r in rows if not wanted or r["subscriptionId"].lower() in wanted]
        page = rows[start : start + top]
        answer: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(page),
            "resultTruncated": "false",
            "facets": [],
            "data": page,
        }
        if self.graph_truncate_at is not None and start + top >= self.graph_truncate_at:
            answer["data"] = rows[start : self.graph_truncate_at]
            answer["count"] = len(answer["data"])
            answer["resultTruncated"] = "true"
        elif start + top < len(rows):
            answer["$skipToken"] = base64.b64encode(str(start + top).encode()).decode()
        return _json(answer, 200, quota)

    def _list_servers(self, request: Request, match: dict[str, str]) -> Response:
        items = [
            self._server_json(s)
            for s in self.servers
            if s.subscription == match["sub"]
            and (match.get("rg") is None or s.resource_group.lower() == match["rg"].lower())
        ]
        return self._page(request, self.arm_url, items)

    def _get_server(self, request: Request, match: dict[str, str]) -> Response:
        server = self._server(match)
        if server is None:
            return _error(404, "ResourceNotFound", f"server {match['name']} was not found")
        return _json(self._server_json(server))

    def _sub_resources(
        self,
        request: Request,
        match: dict[str, str],
        make: Callable[[FakeFlexibleServer], list[dict[str, Any]]],
    ) -> Response:
        server = self._server(match)
        if server is None:
            return _error(404, "ResourceNotFound", f"server {match['name']} was not found")
        return self._page(request, self.arm_url, make(server))

    def _firewall_rules(self, request: Request, match: dict[str, str]) -> Response:
        return self._sub_resources(
            request,
            match,
            lambda s: [
                {
                    "id": f"{s.id}/firewallRules/{name}",
                    "name": name,
                    "type": f"{PG}/firewallRules",
                    "properties": {"startIpAddress": start, "endIpAddress": end},
                }
                for name, (start, end) in s.firewall_rules.items()
            ],
        )

    def _configurations(self, request: Request, match: dict[str, str]) -> Response:
        return self._sub_resources(
            request,
            match,
            lambda s: [
                {
                    "id": f"{s.id}/configurations/{name}",
                    "name": name,
                    "type": f"{PG}/configurations",
                    "properties": {
                        "value": value,
                        "defaultValue": value,
                        "source": "system-default",
                        "isReadOnly": False,
                        "dataType": "String",
                    },
                }
                for name, value in s.configurations.items()
            ],
        )

    def _administrators(self, request: Request, match: dict[str, str]) -> Response:
        return self._sub_resources(
            request,
            match,
            lambda s: [
                {
                    "id": f"{s.id}/administrators/{a['objectId']}",
                    "name": a["objectId"],
                    "type": f"{PG}/administrators",
                    "properties": {"tenantId": TENANT, **a},
                }
                for a in s.administrators
            ],
        )

    def _threat_protection(self, request: Request, match: dict[str, str]) -> Response:
        server = self._server(match)
        if server is None or server.threat_protection is None:
            return _error(404, "ResourceNotFound", "no advanced threat protection setting")
        return _json(
            {
                "id": f"{server.id}/advancedThreatProtectionSettings/Default",
                "name": "Default",
                "type": f"{PG}/advancedThreatProtectionSettings",
                "properties": {"state": server.threat_protection},
            }
        )

    def _diagnostic_settings(self, request: Request, match: dict[str, str]) -> Response:
        server = self._server(match)
        if server is None:
            return _error(404, "ResourceNotFound", f"server {match['name']} was not found")
        # Not paged at api-version 2021-05-01-preview: one "value" list.
        return self._single_page(
            request,
            [
                {
                    "id": f"{server.id}/providers/microsoft.insights/diagnosticSettings/"
                    f"{setting['name']}",
                    "type": "Microsoft.Insights/diagnosticSettings",
                    "name": setting["name"],
                    "properties": setting["properties"],
                }
                for setting in server.diagnostic_settings
            ],
        )

    def _pricings(self, request: Request, match: dict[str, str]) -> Response:
        return self._single_page(
            request,
            [
                {
                    "id": f"/subscriptions/{match['sub']}/providers/Microsoft.Security/"
                    f"pricings/{name}",
                    "name": name,
                    "type": "Microsoft.Security/pricings",
                    "properties": {"pricingTier": tier, "freeTrialRemainingTime": "PT0S"},
                }
                for name, tier in self.defender_plans.items()
            ],
        )

    @staticmethod
    def _vault_json(v: FakeVault) -> dict[str, Any]:
        return {
            "id": v.id,
            "name": v.name,
            "type": "Microsoft.KeyVault/vaults",
            "location": "westeurope",
            "properties": {
                "tenantId": TENANT,
                "sku": {"family": "A", "name": "standard"},
                "accessPolicies": v.access_policies,
                "vaultUri": v.url + "/",
                "enableSoftDelete": v.soft_delete,
                **({"enablePurgeProtection": True} if v.purge_protection else {}),
                "enableRbacAuthorization": v.rbac,
                "publicNetworkAccess": v.public_network_access,
                "networkAcls": {
                    "defaultAction": v.network_default_action,
                    "bypass": "AzureServices",
                },
            },
        }

    def _list_vaults(self, request: Request, match: dict[str, str]) -> Response:
        items = [self._vault_json(v) for v in self.vaults if v.subscription == match["sub"]]
        return self._page(request, self.arm_url, items)

    def _get_vault(self, request: Request, match: dict[str, str]) -> Response:
        for v in self.vaults:
            if (
                v.subscription == match["sub"]
                and v.resource_group.lower() == match["rg"].lower()
                and v.name.lower() == match["vault"].lower()
            ):
                return _json(self._vault_json(v))
        return _error(404, "ResourceNotFound", f"vault {match['vault']} was not found")

    def _above(self, scope: str, target: str) -> bool:
        """Whether an assignment at ``scope`` applies to ``target`` from above it."""
        scope = scope.rstrip("/").lower()
        if scope == "":
            return True  # the tenant root
        groups = {
            f"/providers/microsoft.management/managementgroups/{g.lower()}"
            for g in self.management_groups
        }
        if scope in groups:
            return target.startswith("/subscriptions/")
        return target.startswith(scope + "/")

    def _role_assignments(self, request: Request, match: dict[str, str]) -> Response:
        """ARM's semantics: without a filter, the assignments at, above and below the
        scope; ``atScope()``, at and above it; ``principalId eq '…'``, one principal's."""
        target = match["scope"].rstrip("/").lower()
        query = parse_qs(urlsplit(request.url).query)
        wanted = query.get("$filter", [""])[0]
        principal = re.match(r"principalId eq '([^']+)'", wanted)
        items = []
        for assignment in self.role_assignments:
            props = assignment["properties"]
            scope = props["scope"].rstrip("/").lower()
            at_or_above = scope == target or self._above(scope, target)
            below = scope.startswith(target + "/")
            if wanted == "atScope()" and not at_or_above:
                continue
            if not (at_or_above or below):
                continue
            if principal and props["principalId"].lower() != principal.group(1).lower():
                continue
            items.append(assignment)
        return self._page(request, self.arm_url, items)

    def _role_definition(self, request: Request, match: dict[str, str]) -> Response:
        guid = match["guid"].lower()
        found = self.role_definitions.get(guid) or BUILT_IN_ROLES.get(guid)
        if found is None:
            return _error(
                404, "RoleDefinitionDoesNotExist", "The specified role definition does not exist."
            )
        scope = match["scope"]
        # A definition read through a subscription carries that subscription in its id.
        return _json({**found, "id": f"{scope}/providers/{ROLE_DEFINITIONS}/{found['name']}"})

    def _alerts(self, request: Request, match: dict[str, str]) -> Response:
        # Metric alerts are not paged by ARM (api-version 2018-03-01): one "value" list.
        return self._single_page(request, self.metric_alerts)

    def _single_page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        """A list ARM documents as one page: one, unless told to page it."""
        if self.page_single_page_lists:
            return self._page(request, self.arm_url, items)
        return _json({"value": items})

    # --- Key Vault -----------------------------------------------------------------

    def _vault(self, vault: FakeVault, request: Request) -> Response:
        self._record(request)
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            # Key Vault's challenge: the client learns tenant and resource from it.
            return _error(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
                {
                    "WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/'
                    f'{TENANT}", resource="https://vault.azure.net"'
                },
            )
        injected = self._injected(request)
        if injected is not None:
            return injected
        example = self._example(request, vault.url)
        if example is not None:
            return example
        if vault.forbidden:
            return _error(
                403,
                "Forbidden",
                "Caller is not authorized to perform action on resource. Assignment: "
                "(not found) Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'",
            )
        base = vault.url
        if request.path.rstrip("/") == "/secrets":
            items = [
                {
                    "id": f"{base}/secrets/{name}",
                    **({"contentType": s.content_type} if s.content_type else {}),
                    "attributes": self._attributes(s),
                    "tags": {},
                }
                for name, s in vault.secrets.items()
            ]
            return self._page(request, base, items)
        match = re.match(r"^/secrets/(?P<name>[^/]+)(/(?P<version>[^/]*))?/?$", request.path)
        if match is None:
            return _error(404, "NotFound", "no such path")
        secret = vault.secrets.get(match["name"])
        if secret is None:
            return _error(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {match['name']} was not found in this key vault.",
            )
        return _json(
            {
                "value": secret.value,
                "id": f"{base}/secrets/{match['name']}/0123456789abcdef",
                **({"contentType": secret.content_type} if secret.content_type else {}),
                "attributes": self._attributes(secret),
                "tags": {},
            }
        )

    @staticmethod
    def _attributes(secret: FakeSecret) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "enabled": secret.enabled,
            "created": 1_700_000_000,
            "updated": 1_700_000_000,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        }
        if secret.expires is not None:
            attributes["exp"] = secret.expires
        return attributes


@contextmanager
def running(fake: FakeAzure) -> Iterator[FakeAzure]:
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


# --- the seed's server, with its mistakes ---------------------------------------------

ADMIN = "ctxecoadmin"
FQDN = "ctxeco-db.postgres.database.azure.com"
FUTURE = 4_102_444_800  # 2100-01-01
NO_ADDRESS = "0.0.0.0"  # noqa: S104 - a firewall rule's bound, nothing binds to it


@dataclass
class SeedAzure:
    """The fakes populated like the seed's ctxeco-db, and what that should produce."""

    fake: FakeAzure
    server: FakeFlexibleServer
    radar_vault: FakeVault
    ctxeco_vault: FakeVault

    def config(
        self,
        *,
        dsn: str = "host=127.0.0.1 port=1 user=pgwarden_auditor dbname=postgres connect_timeout=2",
        extra_policy: str = "",
    ) -> str:
        return f"""
[policy]
min_backup_retention_days = 14
require_geo_redundant_backup = true
require_private_access = true
max_firewall_prefix = 24
session_samples = 1
session_window_seconds = 0
{extra_policy}

[azure]
arm_endpoint = "{self.fake.arm_url}"

[[server]]
name = "ctxeco-db"
dsn = "{dsn}"
platform_roles = ["pgwarden_auditor"]
azure = {{ subscription_id = "{SUBSCRIPTION}", resource_group = "ctxeco-rg" }}

[[server.app]]
name = "secai-radar"
databases = ["secairadar"]
roles = ["secairadar_app"]
secret = "keyvault:{self.radar_vault.url}/secrets/database-url"
backup_retention_days = 30

[[server.app]]
name = "ctxeco"
databases = ["ctxEco", "zep", "temporal", "temporal_visibility"]
roles = ["ctxeco_app"]
secret = "keyvault:{self.ctxeco_vault.url}/secrets/ctxeco-database-url"
"""


def seed_azure(fake: FakeAzure) -> SeedAzure:
    """Populate the fakes like the seed's server (see the e2e test for what is wrong)."""
    server = fake.add_server(
        FakeFlexibleServer(
            name="ctxeco-db",
            resource_group="ctxeco-rg",
            properties={
                "administratorLogin": ADMIN,
                "version": "15",
                "minorVersion": "7",
                "state": "Ready",
                "fullyQualifiedDomainName": FQDN,
                "storage": {"storageSizeGB": 32, "autoGrow": "Disabled"},
                "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
                "network": {"publicNetworkAccess": "Enabled"},
                "highAvailability": {"mode": "Disabled", "state": "NotEnabled"},
                "authConfig": {"activeDirectoryAuth": "Disabled", "passwordAuth": "Enabled"},
            },
            firewall_rules={
                "AllowAll": (NO_ADDRESS, "255.255.255.255"),
                "AllowAllAzureServicesAndResourcesWithinAzureIps_2024-1-1_0-0-0": (
                    NO_ADDRESS,
                    NO_ADDRESS,
                ),
                "office": ("203.0.0.0", "203.0.255.255"),
                "ci-runner": ("198.51.100.7", "198.51.100.7"),
            },
            configurations={
                "require_secure_transport": "off",
                "ssl_min_protocol_version": "TLSv1.2",
                "log_connections": "on",
                "log_disconnections": "on",
                "log_checkpoints": "on",
                "connection_throttle.enable": "on",
                "logfiles.retention_days": "7",
                "password_encryption": "scram-sha-256",
                # Azure's defaults for what the audit and extension rules read.
                "shared_preload_libraries": "pg_cron,pg_stat_statements",
                "pgaudit.log": "none",
                "log_line_prefix": "%t-%c-",
                "log_statement": "none",
                "log_destination": "stderr",
                "azure.extensions": "",
            },
        )
    )
    radar = fake.add_vault(
        FakeVault(
            name="secai-radar-kv",
            resource_group="secai-radar-rg",
            network_default_action="Deny",
            secrets={
                "database-url": FakeSecret(
                    f"postgresql://secairadar_app:{SECRET_CANARY}@{FQDN}:5432/secairadar"
                    "?sslmode=require",
                    expires=FUTURE,
                ),
                "openai-api-key": FakeSecret(f"sk-{SECRET_CANARY}", expires=FUTURE),
            },
        )
    )
    ctxeco = fake.add_vault(
        FakeVault(
            name="ctxeco-kv",
            resource_group="ctxeco-rg",
            purge_protection=None,
            secrets={
                "ctxeco-database-url": FakeSecret(
                    f"postgresql://{ADMIN}:{SECRET_CANARY}@{FQDN}:5432/ctxEco",
                    expires=FUTURE,
                ),
            },
        )
    )
    return SeedAzure(fake, server, radar, ctxeco)
