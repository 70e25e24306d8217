"""Azure faults (500 then success, DNS, TLS) and firewall arithmetic as properties."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.collect.azure.server import collect_azure
from pgwarden.engine import evaluate
from pgwarden.model.config import parse_config
from pgwarden.model.snapshot import FirewallRule, ServerSnapshot, Snapshot
from pgwarden.rules.network import parse_range
from pgwarden.rules.registry import load_rules
from tests.azure.conftest import make_session
from tests.azure.fakes import (
    FUTURE,
    FakeAzure,
    FakeSecret,
    SeedAzure,
    StaticCredential,
    TlsFixture,
)


def test_a_500_then_success_is_retried(
    seed: SeedAzure, fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    fake.fail(r"/configurations$", 500, "InternalServerError", times=1)
    session = make_session(fake, tls, credential, retry_total=2)
    config = parse_config(seed.config(), "pgwarden.toml")
    snapshot = collect_azure(config, config.server[0], session)
    assert snapshot.gap("azure.configurations") is None
    assert snapshot.configurations is not None and snapshot.configurations


def test_a_500_that_persists_is_a_gap_not_a_pass(
    seed: SeedAzure, fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    fake.fail(r"/configurations$", 500, "InternalServerError")
    session = make_session(fake, tls, credential, retry_total=1)
    config = parse_config(seed.config(), "pgwarden.toml")
    snapshot = collect_azure(config, config.server[0], session)
    gap = snapshot.gap("azure.configurations")
    assert gap is not None and "500" in gap.reason
    assert "\n" not in gap.reason


def test_a_vault_list_cut_short_is_an_error_for_its_secrets_not_a_pass(
    seed: SeedAzure, fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    # A connection string without an expiry on the vault's first page, then a page
    # that keeps failing: the vault's other secrets were never seen, so PGW-KV-002
    # and PGW-KV-005 both say the vault is not shown clean, while the app's designated
    # secret, read on its own, is still judged.
    radar = seed.radar_vault
    radar.secrets = {
        "a-legacy-database-url": FakeSecret(
            "postgresql://old_app@db.example.com/secairadar?sslmode=require"
        ),
        **radar.secrets,
        **{f"z-other-{n}": FakeSecret("not a dsn", expires=FUTURE) for n in range(6)},
    }
    fake.fail(r"^/secrets$", 503, "ServiceUnavailable", query=r"skiptoken=4\b")
    session = make_session(fake, tls, credential, retry_total=1)
    config = parse_config(seed.config(), "pgwarden.toml")
    azure = collect_azure(config, config.server[0], session)
    vault = azure.vault("secai-radar-kv")
    assert vault is not None and vault.secrets is None and vault.secrets_gap is not None
    snapshot = Snapshot(
        tool_version="test",
        collected_at=datetime.now(UTC),
        servers=(ServerSnapshot(name="ctxeco-db", azure=azure),),
    )
    results = evaluate(snapshot, config, load_rules())
    found = {
        (f.rule_id, f.status, f.resource)
        for f in results.findings
        if f.rule_id in ("PGW-KV-002", "PGW-KV-005")
    }
    assert ("PGW-KV-002", "error", "vault/secai-radar-kv") in found
    assert ("PGW-KV-005", "error", "vault/secai-radar-kv") in found
    # The page that failed was asked for (and retried): the listing was not cut silently.
    pages = [p for _h, p, _a in fake.requests if p.rstrip("/") == "/secrets"]
    assert len(pages) >= 3


def _session_at(
    seed: SeedAzure, tls: TlsFixture, endpoint: str, verify: bool | None
) -> AzureSession:
    base = make_session(seed.fake, tls, StaticCredential())
    options = base.options if verify is None else replace(base.options, connection_verify=verify)
    return AzureSession(
        cloud=base.cloud, credential=StaticCredential(), arm_endpoint=endpoint, options=options
    )


def test_dns_that_does_not_resolve_is_one_clear_line(seed: SeedAzure, tls: TlsFixture) -> None:
    config = parse_config(seed.config(), "pgwarden.toml")
    session = _session_at(seed, tls, "https://management.does-not-exist.invalid", None)
    gap = collect_azure(config, config.server[0], session).gap("azure.server")
    assert gap is not None
    assert gap.reason.endswith("management.does-not-exist.invalid: the host name does not resolve")


def test_tls_verification_failure_is_one_clear_line(seed: SeedAzure, tls: TlsFixture) -> None:
    config = parse_config(seed.config(), "pgwarden.toml")
    # The system trust store does not know the fake's CA: verification must fail.
    session = _session_at(seed, tls, seed.fake.arm_url, verify=True)
    gap = collect_azure(config, config.server[0], session).gap("azure.server")
    assert gap is not None and "\n" not in gap.reason
    assert "its TLS certificate is not trusted" in gap.reason


addresses = st.integers(0, 2**32 - 1)


@settings(max_examples=300, deadline=None)
@given(a=addresses, b=addresses)
def test_firewall_range_width_is_exact(a: int, b: int) -> None:
    start, end = sorted((a, b))
    rule = FirewallRule(
        name="r", start_ip=str(ipaddress.IPv4Address(start)), end_ip=str(ipaddress.IPv4Address(end))
    )
    parsed = parse_range(rule)
    assert parsed is not None
    count = end - start + 1
    assert parsed.addresses == count
    # The prefix is that of the smallest CIDR block at least as wide as the range.
    assert 2 ** (32 - parsed.prefix) >= count
    assert parsed.prefix == 32 or 2 ** (32 - parsed.prefix - 1) < count
    blocks = list(ipaddress.summarize_address_range(parsed.start, parsed.end))
    assert sum(block.num_addresses for block in blocks) == count


@given(a=addresses, b=addresses)
def test_reversed_or_malformed_ranges_are_not_ranges(a: int, b: int) -> None:
    if a > b:
        reversed_rule = FirewallRule(
            name="r", start_ip=str(ipaddress.IPv4Address(a)), end_ip=str(ipaddress.IPv4Address(b))
        )
        assert parse_range(reversed_rule) is None
    assert parse_range(FirewallRule(name="r", start_ip="300.1.1.1", end_ip="1.1.1.1")) is None
