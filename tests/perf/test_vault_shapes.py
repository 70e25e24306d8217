"""The Key Vault rules' work follows the apps and their vaults' grants, not their product.

A vault shared by a thousand apps holds a thousand designated secrets and a thousand
grants on single secrets; a thousand apps with a vault each make a thousand vaults.
Matching every secret against every grant of its vault, or looking for each secret's
(or vault's) entry among all of them, made the rules' work grow with the square of the
apps: doubling the apps doubles the work now (counted as Python calls, not timed),
where it quadrupled before.
"""

from __future__ import annotations

import pytest

from pgwarden.engine import server_context
from pgwarden.rules.registry import load_rules
from tests.calls import counted_calls
from tests.perf.vaults import PEOPLE, vaults_config, vaults_snapshot

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
