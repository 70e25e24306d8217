"""Fixtures: HTTPS fakes of Azure and SDK clients pointed at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pgwarden.collect.azure.cloud import CLOUDS, AzureClientOptions, AzureSession
from tests.azure.fakes import FakeAzure, SeedAzure, StaticCredential, TlsFixture, seed_azure


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFixture:
    return TlsFixture(Path(tmp_path_factory.mktemp("azure-tls")))


@pytest.fixture(scope="session")
def fake_servers(tls: TlsFixture) -> Iterator[FakeAzure]:
    azure = FakeAzure(tls)
    azure.start()
    try:
        yield azure
    finally:
        azure.stop()


@pytest.fixture
def fake(fake_servers: FakeAzure) -> FakeAzure:
    """The fakes, emptied for this test."""
    fake_servers.reset()
    return fake_servers


@pytest.fixture
def credential() -> StaticCredential:
    return StaticCredential()


def make_session(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential, **options: float
) -> AzureSession:
    """A session on the fakes: no retries and no backoff unless a test asks for them."""
    settings: dict[str, float] = {"retry_total": 0, "retry_backoff_factor": 0.0, **options}
    return AzureSession(
        cloud=CLOUDS["AzureCloud"],
        credential=credential,
        arm_endpoint=fake.arm_url,
        options=AzureClientOptions(
            connection_verify=str(tls.ca_path),
            retry_total=int(settings["retry_total"]),
            retry_backoff_factor=settings["retry_backoff_factor"],
            retry_after_budget_s=settings.get("retry_after_budget_s", 5.0),
        ),
    )


@pytest.fixture
def session(fake: FakeAzure, tls: TlsFixture, credential: StaticCredential) -> AzureSession:
    return make_session(fake, tls, credential)


@pytest.fixture
def seed(fake: FakeAzure) -> SeedAzure:
    return seed_azure(fake)
