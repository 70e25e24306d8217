"""Azure clouds, credentials and the client settings every Azure collector shares.

One ``AzureSession`` per scan holds the cloud (ARM endpoint, token scopes, Key Vault
DNS suffix, PostgreSQL Entra scope), the credential (``DefaultAzureCredential``, so
``AZURE_TOKEN_CREDENTIALS``, managed identity, workload identity and ``az login`` all
work) and the HTTP settings: bounded retries, a bounded budget for ``Retry-After``
waits, and no body logging. It also counts the Azure calls each collecting thread
makes and keeps subscription-wide answers (metric alerts, Defender plans, the key
vault list, role definitions, the servers ``[azure] discover`` listed) for the run, so
a fleet of servers in one subscription reads them once. Azure failures become
one-line ``Gap``s naming the role assignment that is missing; nothing here ever
formats a token or a response body (``collect.failure`` reduces an exception to its
status, error code and request id).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy, SansIOHTTPPolicy

from pgwarden.collect.azure.throttle import ThrottleGate
from pgwarden.collect.failure import describe_failure, http_status
from pgwarden.model.snapshot import Gap

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline import PipelineRequest, PipelineResponse

    from pgwarden.model.config import AzureSettings

T = TypeVar("T")


@dataclass(frozen=True)
class AzureCloud:
    """The endpoints and token scopes of one Azure cloud."""

    name: str
    arm_endpoint: str
    arm_scope: str
    keyvault_suffix: str
    postgres_scope: str
    authority_host: str


CLOUDS: dict[str, AzureCloud] = {
    "AzureCloud": AzureCloud(
        name="AzureCloud",
        arm_endpoint="https://management.azure.com/",
        arm_scope="https://management.azure.com/.default",
        keyvault_suffix="vault.azure.net",
        postgres_scope="https://ossrdbms-aad.database.windows.net/.default",
        authority_host="login.microsoftonline.com",
    ),
    "AzureChinaCloud": AzureCloud(
        name="AzureChinaCloud",
        arm_endpoint="https://management.chinacloudapi.cn/",
        arm_scope="https://management.chinacloudapi.cn/.default",
        keyvault_suffix="vault.azure.cn",
        postgres_scope="https://ossrdbms-aad.database.chinacloudapi.cn/.default",
        authority_host="login.chinacloudapi.cn",
    ),
    "AzureUSGovernment": AzureCloud(
        name="AzureUSGovernment",
        arm_endpoint="https://management.usgovcloudapi.net/",
        # The US Government ARM audience differs from its endpoint's host.
        arm_scope="https://management.core.usgovcloudapi.net/.default",
        keyvault_suffix="vault.usgovcloudapi.net",
        postgres_scope="https://ossrdbms-aad.database.usgovcloudapi.net/.default",
        authority_host="login.microsoftonline.us",
    ),
}

DEFAULT_RETRY_TOTAL = 3
DEFAULT_RETRY_AFTER_BUDGET_S = 60.0
DEFAULT_CONNECTION_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 30.0


class RetryAfterBudget:
    """Seconds a whole scan may spend waiting on ``Retry-After``, shared by all clients.

    A throttled request whose ``Retry-After`` does not fit what is left fails at once
    (the collector records "throttled"), so a scan never sleeps for an hour because
    Azure asked it to.
    """

    def __init__(self, seconds: float) -> None:
        self._left = seconds
        self._lock = threading.Lock()

    def take(self, seconds: float) -> bool:
        with self._lock:
            if seconds > self._left:
                return False
            self._left -= seconds
            return True


class BoundedRetryPolicy(RetryPolicy[Any, Any]):
    """azure-core's retry policy, honouring ``Retry-After`` only within a budget.

    With a ``gate``, a throttled call holds every call of the scan to the same host
    for as long as Azure asked (one server's 429 pauses the others' calls too).
    """

    def __init__(
        self, budget: RetryAfterBudget, gate: ThrottleGate | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._budget = budget
        self._gate = gate

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        if self._gate is not None:
            self._gate.wait(host_of(request.http_request.url))
        return super().send(request)

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        status = response.http_response.status_code
        if status >= 400:
            wait = self.get_retry_after(response)
            if wait is not None and not self._budget.take(wait):
                return False
            if wait is not None and status == 429 and self._gate is not None:
                self._gate.hold(host_of(response.http_request.url), wait)
        return bool(super().is_retry(settings, response))


class AzureCallCounter(SansIOHTTPPolicy[Any, Any]):
    """Counts the calls each thread sends (one per operation or page; retries and Key
    Vault's challenge round trip are not counted again)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def on_request(self, request: PipelineRequest[Any]) -> None:
        self._local.calls = self.calls() + 1

    def calls(self) -> int:
        """Calls sent so far by the current thread."""
        return int(getattr(self._local, "calls", 0))


def origin(url: str) -> tuple[str, str, int | None] | None:
    """A URL's scheme, host (lower case) and port (the scheme's default when absent):
    ``https://management.azure.com:443/x`` and ``https://Management.Azure.com/y`` are
    one origin. None when the URL cannot be read (an invalid port, say)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


_DEFAULT_PORTS = {"https": 443, "http": 80}


class OffEndpointRequest(AzureError):
    """A request a client was about to send away from its own endpoint: refused.

    Its message is pgwarden's own (the endpoint it was pinned to, from the config or
    the cloud), never the link that Azure's answer carried.
    """

    def __init__(self, endpoint: str) -> None:
        self.safe_reason = (
            f"a link in Azure's answer led away from {endpoint}: not followed, and no "
            "credential sent there"
        )
        super().__init__(self.safe_reason)


class PinnedEndpointPolicy(SansIOHTTPPolicy[Any, Any]):
    """Lets a client send requests only to the endpoint it was made for.

    Every page after the first is read from the ``nextLink`` (or Key Vault's
    ``nextLink``) of the page before, a URL taken from the answer; the SDK's pipeline
    would send the bearer token wherever it points. A link to another scheme, host or
    port is refused before anything is sent: that list is then a gap for its section,
    never a token handed to another host. (A redirect is azure-core's
    ``RedirectPolicy``'s, which drops the token when it leaves the host.) ``also``:
    another endpoint the token is meant for (an ARM client given a private or test
    ``arm_endpoint`` may still follow links to its cloud's own ARM endpoint).
    """

    def __init__(self, endpoint: str, also: tuple[str, ...] = ()) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._origins = {o for url in (endpoint, *also) if (o := origin(url)) is not None}

    def on_request(self, request: PipelineRequest[Any]) -> None:
        if origin(request.http_request.url) not in self._origins:
            raise OffEndpointRequest(self._endpoint)


class RunCache:
    """Answers computed once per run, whichever thread asks first (others wait).

    A failure is kept too: every server of the subscription then records the same
    gap, and the call that failed is not repeated once per server.
    """

    def __init__(self) -> None:
        self._outcomes: dict[Hashable, tuple[Any, BaseException | None]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._outcomes:
                try:
                    self._outcomes[key] = (compute(), None)
                except Exception as exc:
                    self._outcomes[key] = (None, exc)
            value, failure = self._outcomes[key]
        if failure is not None:
            raise failure
        result: T = value
        return result

    def put(self, key: Hashable, value: object) -> None:
        """Keep ``value`` as the answer for ``key`` (an answer that came with another)."""
        with self._lock:
            self._outcomes.setdefault(key, (value, None))

    def peek(self, key: Hashable) -> Any:
        """The answer kept for ``key``; None when there is none (or it was a failure)."""
        with self._lock:
            value, _failure = self._outcomes.get(key, (None, None))
        return value


@dataclass(frozen=True)
class AzureClientOptions:
    """HTTP settings of every Azure SDK client pgwarden builds.

    ``connection_verify`` is passed to the transport (a CA bundle path for private
    or test endpoints; ``REQUESTS_CA_BUNDLE`` works as well).
    """

    connection_verify: str | bool = True
    retry_total: int = DEFAULT_RETRY_TOTAL
    retry_backoff_factor: float = 0.8
    retry_after_budget_s: float = DEFAULT_RETRY_AFTER_BUDGET_S
    connection_timeout_s: float = DEFAULT_CONNECTION_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S


def default_credential(cloud: AzureCloud) -> TokenCredential:
    """``DefaultAzureCredential`` for the cloud's authority (``AZURE_AUTHORITY_HOST`` wins)."""
    from azure.identity import DefaultAzureCredential

    # MSAL logs whole token responses at DEBUG (the token masked, the rest not); keep
    # it as quiet as the CLI keeps the azure loggers, whatever -vv asks for.
    if logging.getLogger("msal").getEffectiveLevel() < logging.WARNING:
        logging.getLogger("msal").setLevel(logging.WARNING)
    if os.environ.get("AZURE_AUTHORITY_HOST"):
        return DefaultAzureCredential()
    return DefaultAzureCredential(authority=cloud.authority_host)


@dataclass
class AzureSession:
    """What every Azure collector of one scan shares: cloud, credential, HTTP settings."""

    cloud: AzureCloud
    credential: TokenCredential
    arm_endpoint: str
    options: AzureClientOptions = field(default_factory=AzureClientOptions)
    budget: RetryAfterBudget = field(init=False)
    counter: AzureCallCounter = field(init=False)
    cache: RunCache = field(init=False)
    gate: ThrottleGate = field(init=False)

    def __post_init__(self) -> None:
        self.budget = RetryAfterBudget(self.options.retry_after_budget_s)
        self.counter = AzureCallCounter()
        self.cache = RunCache()
        self.gate = ThrottleGate()

    def calls_in_thread(self) -> int:
        """Azure calls the current thread has sent with this session's clients."""
        return self.counter.calls()

    def client_kwargs(self, endpoint: str, also: tuple[str, ...] = ()) -> dict[str, Any]:
        """Keyword arguments for an azure-core based client of ``endpoint`` (the base
        URL every request it sends must stay on, or on ``also``: ``PinnedEndpointPolicy``)."""
        options = self.options
        return {
            "retry_policy": BoundedRetryPolicy(
                self.budget,
                self.gate,
                retry_total=options.retry_total,
                retry_backoff_factor=options.retry_backoff_factor,
                retry_backoff_max=10,
            ),
            # NetworkTraceLoggingPolicy logs request and response bodies (secret values,
            # tokens in token responses) when anything turns it on; replace it with a
            # policy that does nothing. HttpLoggingPolicy (headers, redacted) stays.
            "logging_policy": SansIOHTTPPolicy(),
            "per_call_policies": [PinnedEndpointPolicy(endpoint, also), self.counter],
            "connection_verify": options.connection_verify,
            "connection_timeout": options.connection_timeout_s,
            "read_timeout": options.read_timeout_s,
        }

    def arm_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for an ARM management client (endpoint and token scope)."""
        return {
            "base_url": self.arm_endpoint,
            # A list: a plain string would be split into one scope per character. The
            # scope stays the cloud's even when arm_endpoint points elsewhere.
            "credential_scopes": [self.cloud.arm_scope],
            **self.client_kwargs(self.arm_endpoint, (self.cloud.arm_endpoint,)),
        }

    def vault_url(self, vault: str) -> str:
        return f"https://{vault}.{self.cloud.keyvault_suffix}"


def cloud_named(name: str) -> AzureCloud:
    return CLOUDS[name]


def open_session(
    settings: AzureSettings,
    *,
    credential: TokenCredential | None = None,
    options: AzureClientOptions | None = None,
) -> AzureSession:
    """An AzureSession for the ``[azure]`` settings (credential: DefaultAzureCredential)."""
    cloud = cloud_named(settings.cloud)
    return AzureSession(
        cloud=cloud,
        credential=credential if credential is not None else default_credential(cloud),
        arm_endpoint=(settings.arm_endpoint or cloud.arm_endpoint).rstrip("/"),
        options=options or AzureClientOptions(),
    )


def entra_token(cloud: AzureCloud, credential: TokenCredential | None = None) -> str:
    """An Entra access token for PostgreSQL logins in the cloud (``password=entra``)."""
    cred = credential if credential is not None else default_credential(cloud)
    return cred.get_token(cloud.postgres_scope).token


# --- turning Azure failures into one clear line ---------------------------------------

_NETWORK_HINTS = (
    (
        re.compile(r"Name or service not known|nodename nor servname|getaddrinfo|resolve", re.I),
        "the host name does not resolve",
    ),
    (
        re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed", re.I),
        "its TLS certificate is not trusted (set REQUESTS_CA_BUNDLE for a private CA)",
    ),
    (re.compile(r"Connection refused", re.I), "the connection was refused"),
    (re.compile(r"timed out|timeout", re.I), "the connection timed out"),
)


def network_reason(exc: BaseException) -> str:
    """A short, fixed description of a network failure (never the raw message)."""
    text = str(exc)
    for pattern, reason in _NETWORK_HINTS:
        if pattern.search(text):
            return reason
    return "the network request failed"


def error_code(exc: BaseException) -> str:
    """``HTTP 403 AuthorizationFailed, request id …``: never the exception's message."""
    return describe_failure(exc)


def credential_hint(exc: ClientAuthenticationError) -> str:
    """The first line of a credential's own explanation, cut before anything that
    looks like a quoted response (a token endpoint's JSON or HTML)."""
    lines = str(exc.message or "").strip().splitlines()
    first = lines[0] if lines else ""
    first = re.split(r"[{<]", first, maxsplit=1)[0].strip()
    return first[:200]


def azure_gap(section: str, exc: BaseException, *, action: str, role: str, host: str) -> Gap:
    """One Gap for a failed Azure call: what was refused and which role would allow it.

    ``action`` says what pgwarden tried ("read server ctxeco-db"), ``role`` the role
    assignment that allows it ("Reader on the server ctxeco-db"), ``host`` where.
    Any exception is accepted (SDK errors, unreadable responses, unexpected values);
    messages carry status, error code and request id only: response bodies stay out.
    """
    status = http_status(exc)
    if isinstance(exc, HttpResponseError) and status is not None:
        if status in (401, 403):
            return Gap(
                section=section,
                reason=f"Azure refused to {action} ({error_code(exc)})",
                fix=f"assign {role}",
            )
        if status == 429:
            return Gap(
                section=section,
                reason=f"Azure throttled the request to {action} ({error_code(exc)}) beyond "
                "pgwarden's retry budget",
                fix="run the scan again later",
            )
        return Gap(section=section, reason=f"Azure could not {action} ({error_code(exc)})")
    if isinstance(exc, ClientAuthenticationError):
        # DefaultAzureCredential explains itself over many lines; its first says which
        # credentials it tried. Credential errors never carry a token.
        hint = credential_hint(exc)
        return Gap(
            section=section,
            reason=f"no Azure credential could {action}" + (f": {hint}" if hint else ""),
            fix="sign in with 'az login', or use a managed or workload identity "
            "(AZURE_TOKEN_CREDENTIALS narrows DefaultAzureCredential)",
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return Gap(section=section, reason=f"cannot {action}: {host}: {network_reason(exc)}")
    if isinstance(exc, AzureError):
        return Gap(section=section, reason=f"cannot {action}: {describe_failure(exc)}")
    # Not an Azure error: a response the SDK could not read (DeserializationError is a
    # ValueError), or a value pgwarden did not expect. Only this part is lost.
    return Gap(
        section=section,
        reason=f"cannot {action}: {describe_failure(exc)} (an unexpected answer from Azure)",
    )


def enum_text(value: object) -> str | None:
    """An SDK enum or string as its wire value ("Enabled"), None when absent."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url
