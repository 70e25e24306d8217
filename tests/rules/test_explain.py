"""The rule pack's metadata and ``pgwarden explain``: docs come from the docstrings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pgwarden.cli.main import cli
from pgwarden.model.frameworks.catalogue import control_title, framework_label
from pgwarden.rules.registry import find_rule, load_rules
from tests.rules.scenario import OWN_RULES

SEVERITIES = {
    "PGW-ADM-001": "critical",
    "PGW-ISO-001": "high",
    "PGW-ISO-002": "high",
    "PGW-ISO-003": "medium",
    "PGW-ISO-004": "high",
    "PGW-ISO-005": "low",
    "PGW-ISO-006": "medium",
    "PGW-ROLE-001": "high",
    "PGW-ROLE-002": "critical",
    "PGW-ROLE-003": "medium",
    "PGW-ROLE-004": "low",
    "PGW-AUTH-001": "medium",
}


@pytest.mark.parametrize("rule_id", OWN_RULES)
def test_rule_metadata(rule_id: str) -> None:
    entry = find_rule(load_rules(), rule_id)
    rule = entry.rule
    assert entry.source == "built-in"
    assert rule.severity == SEVERITIES[rule_id]  # PRODUCT.md's defaults
    assert rule.controls and isinstance(rule.controls, tuple)
    assert not rule.frameworks  # built-ins map to controls, not free text
    doc = rule.doc()
    assert doc.title and doc.rationale and doc.violation and doc.fix


@pytest.mark.parametrize("rule_id", OWN_RULES)
def test_explain_prints_rationale_check_and_fix(rule_id: str) -> None:
    result = CliRunner().invoke(cli, ["explain", rule_id.lower()])
    assert result.exit_code == 0, result.output
    rule = find_rule(load_rules(), rule_id).rule
    out = result.output
    assert out.startswith(f"{rule_id} — {rule.title()}")
    for heading in ("Why it matters", "What is checked", "How to fix it"):
        assert heading in out
    assert "\ncontrols:\n" in out
    for control in rule.controls:
        assert (
            f"  {framework_label(control.framework)} {control.id}: {control_title(control)}" in out
        )
