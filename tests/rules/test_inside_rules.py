"""The PGW-CHAN, -FUNC, -EXT and -AUD rules: metadata, ``explain``, and old snapshots.

A snapshot made before pgwarden read foreign servers, routines, extensions and pg_cron
holds none of them: judged by these rules, each database it read is an ``error`` that
asks for a new collection, never a pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgwarden.cli.main import cli
from pgwarden.engine import evaluate
from pgwarden.model.config import Config
from pgwarden.model.frameworks.catalogue import CIS_POSTGRESQL_16, CIS_POSTGRESQL_17
from pgwarden.model.snapshot import Snapshot
from pgwarden.rules.registry import find_rule, load_rules, select_rules

SEVERITIES = {
    "PGW-AUD-001": "medium",
    "PGW-AUD-002": "low",
    "PGW-AUD-003": "low",
    "PGW-CHAN-001": "medium",
    "PGW-CHAN-002": "high",
    "PGW-CHAN-003": "critical",
    "PGW-CHAN-004": "high",
    "PGW-FUNC-001": "critical",
    "PGW-FUNC-002": "high",
    "PGW-FUNC-003": "medium",
    "PGW-EXT-001": "medium",
    "PGW-EXT-002": "medium",
    "PGW-EXT-003": "high",
    "PGW-EXT-004": "low",
}
# The CIS PostgreSQL Benchmark items the rules are mapped to: (16 edition, 17 edition).
CIS_ITEMS = {
    "PGW-AUD-001": ("3.2", "3.2"),
    "PGW-AUD-002": ("3.1.24", "3.1.24"),
    "PGW-AUD-003": ("3.1.25", "3.1.25"),
    # "Ensure excessive function privileges are revoked" (17's 4.3 is another item).
    "PGW-FUNC-001": ("4.3", "4.5"),
    "PGW-FUNC-002": ("4.3", "4.5"),
    "PGW-FUNC-003": ("4.3", "4.5"),
}
# A case written before pgwarden read what these rules need: two databases read.
OLD_CASE = Path(__file__).parent / "fixtures" / "pg15_schemas_and_defaults.json"


@pytest.mark.parametrize("rule_id", sorted(SEVERITIES))
def test_rule_metadata(rule_id: str) -> None:
    entry = find_rule(load_rules(), rule_id)
    rule = entry.rule
    assert entry.source == "built-in"
    assert rule.severity == SEVERITIES[rule_id]
    assert rule.controls and isinstance(rule.controls, tuple)
    assert not rule.frameworks  # built-ins map to controls, not free text
    cis = {(c.framework, c.id) for c in rule.controls if c.framework.startswith("cis-postgresql")}
    if rule_id in CIS_ITEMS:
        sixteen, seventeen = CIS_ITEMS[rule_id]
        assert cis == {(CIS_POSTGRESQL_16, sixteen), (CIS_POSTGRESQL_17, seventeen)}
    else:
        assert not cis
    doc = rule.doc()
    assert doc.title and doc.rationale and doc.violation and doc.fix


@pytest.mark.parametrize("rule_id", sorted(SEVERITIES))
def test_explain(rule_id: str) -> None:
    result = CliRunner().invoke(cli, ["explain", rule_id])
    assert result.exit_code == 0, result.output
    rule = find_rule(load_rules(), rule_id).rule
    assert result.output.startswith(f"{rule_id} — {rule.title()}")
    for heading in ("Why it matters", "What is checked", "How to fix it"):
        assert heading in result.output


def test_an_old_snapshot_is_an_error_not_a_pass() -> None:
    case = json.loads(OLD_CASE.read_text(encoding="utf-8"))
    snapshot = Snapshot.model_validate(case["snapshot"])
    pg = snapshot.servers[0].postgres
    assert pg is not None and pg.pg_cron is None
    read = sorted(d.name for d in pg.database_details if d.collected)
    assert read == ["Old DB", "new_db"]
    policy = {"allowed_extensions": ["citext"]}
    config = Config.model_validate({**case["config"], "policy": policy})
    rules = select_rules(load_rules(), ["PGW-CHAN-*", "PGW-FUNC-*", "PGW-EXT-00[123]"])
    results = evaluate(snapshot, config, rules)
    assert not [f for f in results.findings if f.status == "fail"]
    errors = {(f.rule_id, f.resource) for f in results.findings if f.status == "error"}
    for rule_id in SEVERITIES:
        if rule_id.startswith(("PGW-AUD", "PGW-EXT-004")) or rule_id == "PGW-CHAN-004":
            continue
        assert {(rule_id, f"database/{name}") for name in read} <= errors, rule_id
    old_db = next(f for f in results.findings if f.resource == "database/Old DB")
    assert "older pgwarden" in old_db.message
    (cron,) = [f for f in results.findings if f.rule_id == "PGW-CHAN-004"]
    assert cron.status == "error" and "older pgwarden" in cron.message
    assert not results.scan.complete
