"""The map's Entra identities and the policy's secret readers: object ids, checked."""

from __future__ import annotations

import pytest

from pgwarden.model.config import parse_config
from pgwarden.model.errors import ConfigError

MI = "6F1B8C1E-0D7A-4D59-9A57-3F6F0F6F1A01"
PIPELINE = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"


def config(
    identities: str = f'["{MI}"]', readers: str = f'["{PIPELINE}"]', other: str = "[]"
) -> str:
    return f"""\
[policy]
secret_readers = {readers}

[[server]]
name = "ctxeco-db"

[[server.app]]
name = "secai-radar"
roles = ["secairadar_app"]
identities = {identities}

[[server.app]]
name = "zep"
identities = {other}
"""


def test_object_ids_load_in_lower_case_with_their_app() -> None:
    loaded = parse_config(config(), "pgwarden.toml")
    server = loaded.server[0]
    assert server.app[0].identities == (MI.lower(),)
    assert loaded.policy.secret_readers == (PIPELINE,)
    found = server.app_of_identity(MI)
    assert found is not None and found.name == "secai-radar"
    assert server.app_of_identity(PIPELINE) is None
    # The vault and Entra switches default to checking.
    assert loaded.policy.require_vault_rbac and loaded.policy.require_vault_firewall
    assert loaded.policy.require_entra_app_logins


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            config(identities='["secai-radar-mi"]'),
            "pgwarden.toml: server[name='ctxeco-db'].app[name='secai-radar'].identities: "
            "'secai-radar-mi' is not a Microsoft Entra object id "
            "(a GUID like 00000000-0000-0000-0000-000000000000)",
        ),
        (
            config(readers='["deployment pipeline"]'),
            "pgwarden.toml: policy.secret_readers: 'deployment pipeline' is not a Microsoft "
            "Entra object id (a GUID like 00000000-0000-0000-0000-000000000000)",
        ),
        (
            config(other=f'["{MI.lower()}"]'),
            f"pgwarden.toml: server[name='ctxeco-db'].app: identity '{MI.lower()}' belongs to "
            "both 'secai-radar' and 'zep'",
        ),
    ],
)
def test_bad_object_ids_are_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "pgwarden.toml")
    assert str(raised.value) == message
