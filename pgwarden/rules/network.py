"""PGW-NET: who can reach the server over the network (Azure firewall and access mode).

Firewall rules are arbitrary inclusive IPv4 ranges, not CIDRs: their true width is
counted with ``ipaddress``. A firewall rule is server-wide, so every finding names all
the app databases it exposes.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

from pgwarden.model.context import BuiltInKey
from pgwarden.model.evidence import put_capped_mapping
from pgwarden.model.frameworks.catalogue import AZURE_POLICY, CIS_AZURE
from pgwarden.model.snapshot import AzureServer, FirewallRule, ServerSnapshot
from pgwarden.rules.azure_cli import server_args
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict
from pgwarden.rules.control_sets import BOUNDARY

IPV4_SPACE = 2**32
# All public unicast space (1.0.0.0 - 223.255.255.255): a range covering it admits
# the whole internet, whatever its exact bounds.
_INTERNET_FIRST = IPv4Address("1.0.0.0")
_INTERNET_LAST = IPv4Address("223.255.255.255")
_AZURE_SERVICES = IPv4Address("0.0.0.0")  # noqa: S104 - an address compared, not bound
_EXPOSED_DATABASES = BuiltInKey("exposed_databases")


@dataclass(frozen=True)
class IpRange:
    """A firewall rule's range, parsed."""

    rule: FirewallRule
    start: IPv4Address
    end: IPv4Address

    @property
    def addresses(self) -> int:
        return int(self.end) - int(self.start) + 1

    @property
    def prefix(self) -> int:
        """The prefix length of the smallest CIDR block as wide as the range."""
        return 32 - math.ceil(math.log2(self.addresses))

    @property
    def whole_internet(self) -> bool:
        return self.start <= _INTERNET_FIRST and self.end >= _INTERNET_LAST

    @property
    def azure_services(self) -> bool:
        return self.start == _AZURE_SERVICES and self.end == _AZURE_SERVICES

    def cidrs(self, limit: int = 8) -> list[str]:
        blocks = [str(n) for n in ipaddress.summarize_address_range(self.start, self.end)]
        return (
            blocks if len(blocks) <= limit else [*blocks[:limit], f"… {len(blocks) - limit} more"]
        )


def parse_range(rule: FirewallRule) -> IpRange | None:
    """The rule's range, or None when ARM returned something that is not an IPv4 range."""
    try:
        start, end = IPv4Address(rule.start_ip), IPv4Address(rule.end_ip)
    except ValueError:
        return None
    return IpRange(rule, start, end) if start <= end else None


def put_exposed_databases(evidence: dict[str, object], context: ServerContext) -> None:
    """The app databases (with their apps) a public endpoint opens: all of them, for a
    firewall rule opens the whole server; the first ``MAX_LISTED`` by name and the count
    (sorted once per server, not once per rule)."""
    pairs = context.analysis(
        _EXPOSED_DATABASES, context.server, lambda: sorted(context.app_databases().items())
    )
    put_capped_mapping(evidence, "exposed_databases", pairs, len(pairs))


def firewall_evidence(context: ServerContext, span: IpRange) -> dict[str, object]:
    evidence: dict[str, object] = {
        "start_ip": span.rule.start_ip,
        "end_ip": span.rule.end_ip,
        "addresses": span.addresses,
        "equivalent_prefix": f"/{span.prefix}",
        "as_cidrs": span.cidrs(),
    }
    put_exposed_databases(evidence, context)
    return evidence


def _firewall_ranges(
    snapshot: ServerSnapshot, context: ServerContext
) -> Iterable[IpRange | Verdict]:
    azure = snapshot.azure
    assert azure is not None and azure.firewall_rules is not None
    for rule in azure.firewall_rules:
        span = parse_range(rule)
        if span is None:
            yield Verdict(
                resource=f"firewall-rule/{rule.name}",
                status="error",
                message=f"firewall rule {rule.name!r} is not an IPv4 range "
                f"({rule.start_ip!r} - {rule.end_ip!r}); its width cannot be judged",
            )
            continue
        yield span


def _range_evidence(span: IpRange) -> dict[str, object]:
    """A firewall rule as a pass record shows it: its range and its true width."""
    return {
        "start_ip": span.rule.start_ip,
        "end_ip": span.rule.end_ip,
        "addresses": span.addresses,
        "equivalent_prefix": f"/{span.prefix}",
    }


def _firewall_passed(span: IpRange, message: str, **facts: object) -> Verdict:
    return Verdict(
        resource=f"firewall-rule/{span.rule.name}",
        status="pass",
        message=f"firewall rule {span.rule.name!r} ({span.rule.start_ip} - {span.rule.end_ip}) "
        + message,
        evidence={**_range_evidence(span), **facts},
    )


def _no_firewall_rules(snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
    """The pass record of a server whose firewall admits nobody (no rules at all)."""
    assert snapshot.azure is not None
    if context.include_passed and not snapshot.azure.firewall_rules:
        yield Verdict(
            resource=f"server/{context.name}",
            status="pass",
            message=f"server {context.name!r} has no firewall rules: its firewall admits no "
            "public address",
            evidence={"firewall_rules": []},
        )


def _delete_rule(snapshot: ServerSnapshot, context: ServerContext, rule: str) -> str:
    return (
        f"az postgres flexible-server firewall-rule delete {server_args(snapshot, context)} "
        f"--rule-name {rule} --yes"
    )


class FirewallOpenToInternet(Rule):
    """A firewall rule admits the whole internet.

    A rule such as 0.0.0.0-255.255.255.255 lets every address on the internet reach
    the server's PostgreSQL port; only passwords stand between attackers and every
    tenant's database on a shared server. Password spraying against the admin login
    needs nothing more.

    Violation: a firewall rule whose range covers all public IPv4 unicast space
    (1.0.0.0-223.255.255.255).

    Fix: delete the rule and add rules for the addresses that need access
    (az postgres flexible-server firewall-rule delete …), or move the server to
    private access.
    """

    id = "PGW-NET-001"
    severity = "critical"
    requires = (Section.AZURE_FIREWALL,)
    controls = BOUNDARY

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        yield from _no_firewall_rules(snapshot, context)
        for span in _firewall_ranges(snapshot, context):
            if isinstance(span, Verdict):
                yield span
                continue
            if not span.whole_internet:
                if context.include_passed:
                    yield _firewall_passed(span, "does not span the public internet")
                continue
            yield Verdict(
                resource=f"firewall-rule/{span.rule.name}",
                message=f"firewall rule {span.rule.name!r} ({span.rule.start_ip} - "
                f"{span.rule.end_ip}) admits the whole internet to every database on the server",
                evidence=firewall_evidence(context, span),
                remediation=_delete_rule(snapshot, context, span.rule.name),
            )


class FirewallAllowsAzureServices(Rule):
    """ "Allow public access from any Azure service" is on.

    The 0.0.0.0-0.0.0.0 firewall rule admits connections from every Azure IP address:
    any VM, function or container of any Azure customer, not only yours. It is often
    switched on for convenience while deploying and then forgotten.

    Violation: a firewall rule from 0.0.0.0 to 0.0.0.0 while ``allow_azure_services``
    is false in the policy.

    Fix: delete the rule (az postgres flexible-server firewall-rule delete …) and
    admit your own Azure resources by their outbound addresses or through a private
    endpoint or VNet integration.
    """

    id = "PGW-NET-002"
    severity = "high"
    requires = (Section.AZURE_FIREWALL,)
    controls = (Control(CIS_AZURE, "5.2.5"), *BOUNDARY)

    def not_applicable(self, context: ServerContext) -> str | None:
        if not context.policy.allow_azure_services:
            return None
        return "the policy allows Azure services (allow_azure_services = true)"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        yield from _no_firewall_rules(snapshot, context)
        for span in _firewall_ranges(snapshot, context):
            if isinstance(span, Verdict):
                continue
            if not span.azure_services:
                if context.include_passed:
                    yield _firewall_passed(span, "is not the allow-all-Azure-services rule")
                continue
            yield Verdict(
                resource=f"firewall-rule/{span.rule.name}",
                message=f"firewall rule {span.rule.name!r} (0.0.0.0 - 0.0.0.0) admits every "
                "Azure service, of any tenant, to every database on the server",
                evidence={**firewall_evidence(context, span), "policy_allow_azure_services": False},
                remediation=_delete_rule(snapshot, context, span.rule.name),
            )


class FirewallRangeTooWide(Rule):
    """A firewall rule is wider than the policy allows.

    Firewall rules are arbitrary start-end ranges; a rule written as a convenience
    (a whole office /16, a cloud region) admits far more hosts than need the database.
    The rule's true width is counted address by address and compared with
    ``max_firewall_prefix`` (default /24, 256 addresses). Rules that admit the whole
    internet or all Azure services are PGW-NET-001's and PGW-NET-002's.

    Violation: a firewall rule spanning more addresses than a /max_firewall_prefix
    block.

    Fix: replace the rule with narrower rules for the hosts that connect
    (az postgres flexible-server firewall-rule update … --start-ip-address …
    --end-ip-address …).
    """

    id = "PGW-NET-003"
    severity = "medium"
    requires = (Section.AZURE_FIREWALL,)
    controls = BOUNDARY

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        limit = context.policy.max_firewall_prefix
        allowed = 2 ** (32 - limit)
        yield from _no_firewall_rules(snapshot, context)
        for span in _firewall_ranges(snapshot, context):
            if isinstance(span, Verdict):
                continue  # PGW-NET-001 reports rules it cannot parse
            if span.whole_internet or span.azure_services:
                continue
            if span.addresses <= allowed:
                if context.include_passed:
                    yield _firewall_passed(
                        span,
                        f"admits {span.addresses} addresses, within the policy's /{limit}",
                        max_firewall_prefix=limit,
                    )
                continue
            yield Verdict(
                resource=f"firewall-rule/{span.rule.name}",
                message=f"firewall rule {span.rule.name!r} ({span.rule.start_ip} - "
                f"{span.rule.end_ip}) admits {span.addresses} addresses, wider than the "
                f"policy's /{limit} ({allowed})",
                evidence={**firewall_evidence(context, span), "max_firewall_prefix": limit},
                remediation=(
                    f"az postgres flexible-server firewall-rule update "
                    f"{server_args(snapshot, context)} --rule-name {span.rule.name} "
                    "--start-ip-address FIRST_HOST --end-ip-address LAST_HOST"
                ),
            )


class PublicNetworkAccess(Rule):
    """Public network access is enabled while the policy asks for private access.

    With public access, the server has a public endpoint guarded only by its firewall
    rules; with private access (VNet integration or a private endpoint) it is not
    reachable from the internet at all. A shared server carries every tenant's data,
    so one firewall mistake exposes all of them.

    Violation: ``publicNetworkAccess`` is Enabled while ``require_private_access`` is
    true in the policy.

    Fix: add a private endpoint for the server, then turn public access off:
    az postgres flexible-server update … --public-access Disabled. (A server created
    with VNet integration is private from the start.)
    """

    id = "PGW-NET-004"
    severity = "medium"
    requires = (Section.AZURE_SERVER,)
    controls = (Control(AZURE_POLICY, "5e1de0e3-42cb-4ebc-a86d-61d0c619ca48"), *BOUNDARY)

    def not_applicable(self, context: ServerContext) -> str | None:
        if context.policy.require_private_access:
            return None
        return "the policy does not require private access (require_private_access = false)"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        assert snapshot.azure is not None and snapshot.azure.server is not None
        server: AzureServer = snapshot.azure.server
        if (server.public_network_access or "").lower() != "enabled":
            # Only a reported value is evidence; an unreported one is no pass.
            if context.include_passed and server.public_network_access is not None:
                yield Verdict(
                    resource=f"server/{context.name}",
                    status="pass",
                    message=f"server {server.name!r} has no public endpoint (public network "
                    f"access {server.public_network_access})",
                    evidence={
                        "public_network_access": server.public_network_access,
                        "delegated_subnet": server.delegated_subnet_id,
                        "private_endpoint_connections": server.private_endpoint_connections,
                    },
                )
            return
        evidence: dict[str, object] = {
            "public_network_access": server.public_network_access,
            "delegated_subnet": server.delegated_subnet_id,
            "private_endpoint_connections": server.private_endpoint_connections,
            "firewall_rules": len(snapshot.azure.firewall_rules or ()),
        }
        put_exposed_databases(evidence, context)
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"server {server.name!r} accepts connections from the internet (public "
            "network access is enabled) while the policy requires private access",
            evidence=evidence,
            remediation=(
                "Create a private endpoint for the server, then: az postgres flexible-server "
                f"update {server_args(snapshot, context)} --public-access Disabled"
            ),
        )


RULES = [
    FirewallOpenToInternet,
    FirewallAllowsAzureServices,
    FirewallRangeTooWide,
    PublicNetworkAccess,
]
