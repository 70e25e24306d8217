"""Who ran the scan in Azure: the claims of the ARM token, never the token."""

from __future__ import annotations

import base64
import json
from typing import Any

from azure.core.credentials import AccessToken

from pgwarden.collect.azure.cloud import AzureClientOptions, open_session
from pgwarden.collect.azure.identity import identity_of_token, signed_in_identity
from pgwarden.model.config import AzureSettings


def _jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class _Credential:
    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        self.scopes += scopes
        return AccessToken(self.token, 4102444800)


def test_a_user_token_names_the_user() -> None:
    identity = identity_of_token(
        _jwt(
            {
                "tid": "tenant-1",
                "oid": "object-1",
                "upn": "auditor@example.com",
                "idtyp": "user",
                "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            }
        )
    )
    assert identity is not None
    assert (identity.tenant_id, identity.object_id, identity.name, identity.kind) == (
        "tenant-1",
        "object-1",
        "auditor@example.com",
        "user",
    )


def test_a_managed_identity_token_names_the_application() -> None:
    identity = identity_of_token(_jwt({"tid": "t", "oid": "o", "azp": "app-2", "idtyp": "app"}))
    assert identity is not None and identity.app_id == "app-2" and identity.name is None


def test_a_token_that_is_not_a_jwt_gives_no_identity() -> None:
    for token in ("opaque-test-token", "a.b.c", _jwt({"nothing": "here"})):
        assert identity_of_token(token) is None


def test_the_session_asks_for_an_arm_token_and_keeps_only_claims() -> None:
    token = _jwt({"tid": "t", "oid": "o", "upn": "me@example.com"})
    credential = _Credential(token)
    session = open_session(AzureSettings(), credential=credential, options=AzureClientOptions())
    identity = signed_in_identity(session)
    assert credential.scopes == ["https://management.azure.com/.default"]
    assert identity is not None and token not in identity.model_dump_json()
