"""The Key Vault rules' work follows the apps and their vaults' grants, not their product.

A vault shared by a thousand apps holds a thousand designated secrets and a thousand
grants on single secrets; a thousand apps with a vault each make a thousand vaults.
Matching every secret against every grant of its vault, or looking for each secret's
(or vault's) entry among all of them, made the rules' work grow with the square of the
apps: doubling the apps doubles the work now (counted as Python calls, not timed),
where it quadrupled before. The index a vault's grants are found by gives each secret
exactly the grants that cover it.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pgwarden.engine import server_context
from pgwarden.model.snapshot import SecretReader, VaultAccess
from pgwarden.rules.keyvault.readers import _VaultReaders
from pgwarden.rules.registry import load_rules
from tests.calls import counted_calls
from tests.perf.vaults import PEOPLE, reader, vaults_config, vaults_snapshot

SMALL, LARGE = 100, 200
RULES = {entry.rule.id: entry.rule for entry in load_rules() if entry.rule.id.startswith("PGW-KV")}


def _calls(rule_id: str, apps: int, shared: bool) -> tuple[int, int]:
    """Calls made by ``rule_id`` on the shape of ``apps`` apps; how many findings."""
    snapshot = vaults_snapshot(apps, shared=shared)
    config = vaults_config(apps, shared=shared)
    server = snapshot.servers[0]
    context = server_context(server, config.server[0], config)
    calls, verdicts = counted_calls(lambda: list(RULES[rule_id]().check(server, context)))
    assert all(v.status != "error" for v in verdicts), [v.message for v in verdicts]
    return calls, len(verdicts)


@pytest.mark.parametrize("shared", [True, False], ids=["one-vault", "vault-per-app"])
@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_key_vault_rules_work_grows_with_the_apps(rule_id: str, shared: bool) -> None:
    (small, _), (large, _) = _calls(rule_id, SMALL, shared), _calls(rule_id, LARGE, shared)
    assert large / small < 2.6, (small, large)


@pytest.mark.parametrize("shared", [True, False], ids=["one-vault", "vault-per-app"])
def test_the_shape_has_findings_for_the_grant_rules(shared: bool) -> None:
    # Each app's secret is read by the next app's identity and by each person.
    assert _calls("PGW-KV-007", SMALL, shared)[1] == SMALL
    assert _calls("PGW-KV-008", SMALL, shared)[1] == SMALL * PEOPLE


_NAMES = st.sampled_from(["db-dsn", "DB-DSN", "kv", "x"])
# A vault's id, then any number of "/secrets/NAME" steps (in any case), then maybe a slash.
_SCOPES = st.builds(
    lambda base, names, step, end: base + "".join(step + n for n in names) + end,
    st.sampled_from(["", "/subscriptions/s/resourceGroups/rg/vaults/kv"]),
    st.lists(_NAMES, max_size=3),
    st.sampled_from(["/secrets/", "/Secrets/"]),
    st.sampled_from(["", "/"]),
)


def _on(scope: str, principal: str = "a", kind: str = "secret") -> SecretReader:
    """A grant of Key Vault Secrets User at ``scope``."""
    return SecretReader.model_validate(reader(principal, None, scope, kind))


_READERS = st.builds(
    _on,
    _SCOPES,
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["secret", "vault", "subscription"]),
)


@settings(max_examples=300, deadline=None)
@example([_on("/v/kv/secrets/kv/Secrets/x/"), _on("/v/kv/secrets/x")], "KV/secrets/x")
@example([_on("/v/kv/secrets/kv/Secrets/x/"), _on("/v/kv/secrets/x")], "X")
@given(
    st.lists(_READERS, max_size=8),
    st.sampled_from(["db-dsn", "DB-DSN", "x", "kv/secrets/x", "KV/Secrets/x", "secrets/x"]),
)
def test_the_index_finds_exactly_the_readers_that_cover_a_secret(
    readers: list[SecretReader], secret: str
) -> None:
    # The grants a secret meets through the index are those ``covers`` accepts, in the
    # order Azure listed them, whatever the case, slashes and "/secrets/" in the scope.
    index = _VaultReaders(VaultAccess(vault="kv", readers=tuple(readers)))
    assert index.covering(secret) == [r for r in readers if r.covers(secret)]


@pytest.mark.parametrize("shared", [True, False], ids=["one-vault", "vault-per-app"])
def test_the_grant_rules_index_the_vaults_once_per_server(shared: bool) -> None:
    """PGW-KV-007 and -008 find readers through one index of each vault's grants, made
    once for the server's evaluation: the second rule to ask does not index again."""
    snapshot = vaults_snapshot(SMALL, shared=shared)
    config = vaults_config(SMALL, shared=shared)
    server = snapshot.servers[0]
    fresh = server_context(server, config.server[0], config)
    # The index of the map's apps, which any rule asking for an app builds: here first.
    fresh.app_of_identity("00000000-0000-0000-0000-000000000000")
    alone, found = counted_calls(lambda: list(RULES["PGW-KV-008"]().check(server, fresh)))
    context = server_context(server, config.server[0], config)
    list(RULES["PGW-KV-007"]().check(server, context))
    second, again = counted_calls(lambda: list(RULES["PGW-KV-008"]().check(server, context)))
    assert again == found
    assert second < alone, (second, alone)
