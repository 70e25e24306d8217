"""A rule its policy switch turns off is skipped with the reason, never counted a pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.engine import evaluate
from pgwarden.model.config import parse_config
from pgwarden.model.snapshot import Snapshot
from pgwarden.rules.registry import load_rules, select_rules

FIXTURE = Path(__file__).parent.parent / "fixtures" / "small_server.json"

SWITCHES = [
    ("PGW-AZ-001", "require_entra_only_auth = false"),
    ("PGW-AZ-002", "require_customer_managed_key = false"),
    ("PGW-AZ-003", "require_private_endpoint = false"),
    ("PGW-AZ-004", "require_threat_protection = false"),
    ("PGW-AZ-005", "require_threat_protection = false"),
    ("PGW-AZ-006", "require_diagnostic_logs = false"),
    ("PGW-KV-009", "require_vault_rbac = false"),
    ("PGW-KV-010", "require_vault_firewall = false"),
    ("PGW-ENTRA-001", "require_entra_app_logins = false"),
    ("PGW-AUD-001", "pgaudit_log = []"),
]


@pytest.mark.parametrize(("rule_id", "switch"), SWITCHES)
def test_a_rule_switched_off_is_skipped_with_its_reason(rule_id: str, switch: str) -> None:
    config = parse_config(
        f'[policy]\n{switch}\n\n[[server]]\nname = "ctxeco-db"\nadmin_role = "ctxecoadmin"\n',
        "pgwarden.toml",
    )
    snapshot = Snapshot.model_validate_json(FIXTURE.read_text())
    results = evaluate(snapshot, config, select_rules(load_rules(), [rule_id]))
    (coverage,) = results.coverage
    assert coverage.outcome == "skipped"
    assert coverage.reason is not None and switch.split(" =")[0] in coverage.reason
    assert not results.findings
