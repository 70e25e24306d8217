"""Table-driven rule tests: small snapshot fixtures in, exact findings out (no server).

Each ``fixtures/*.json`` holds a tenancy map, a snapshot, the rules to run (globs),
and what they must report: the exact (rule, status, resource, principal) set, lines
each remediation must contain, and evidence values. The fixtures reach what a local
PostgreSQL 15 cannot show: PostgreSQL 16 membership options and reserved_connections,
Azure's bootstrap superuser, an auditor without pg_read_all_settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pgwarden.engine import evaluate
from pgwarden.model.config import Config
from pgwarden.model.results import Finding, Results
from pgwarden.model.snapshot import Snapshot
from pgwarden.rules.registry import load_rules, select_rules

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.json"))


def _load(path: Path) -> tuple[dict[str, Any], Results]:
    case = json.loads(path.read_text(encoding="utf-8"))
    snapshot = Snapshot.model_validate(case["snapshot"])
    config = Config.model_validate(case["config"])
    rules = select_rules(load_rules(), case["rules"])
    return case, evaluate(snapshot, config, rules)


def _find(results: Results, rule: str, resource: str, principal: str | None) -> Finding:
    for f in results.findings:
        if (f.rule_id, f.resource, f.principal) == (rule, resource, principal):
            return f
    raise AssertionError(f"no finding {rule} {resource} {principal}")


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture(path: Path) -> None:
    case, results = _load(path)
    found = {(f.rule_id, f.status, f.resource, f.principal) for f in results.findings}
    assert found == {tuple(e) for e in case["expected"]}, case["description"]
    for rule, resource, principal, line in case.get("remediation_lines", []):
        remediation = _find(results, rule, resource, principal).remediation or ""
        assert line in remediation.splitlines(), remediation
    for rule, resource, principal, key, value in case.get("evidence", []):
        assert _find(results, rule, resource, principal).evidence[key] == value


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_survives_a_json_round_trip(path: Path) -> None:
    case, results = _load(path)
    snapshot = Snapshot.model_validate(case["snapshot"])
    again = Snapshot.model_validate_json(snapshot.model_dump_json())
    rerun = evaluate(
        again, Config.model_validate(case["config"]), select_rules(load_rules(), case["rules"])
    )
    assert [f.model_dump(exclude={"waiver"}) for f in rerun.findings] == [
        f.model_dump(exclude={"waiver"}) for f in results.findings
    ]


def test_createrole_self_grants_are_not_access() -> None:
    """The ADMIN-only grants of PG16's createrole_self_grant are reported nowhere."""
    _, results = _load(Path(__file__).parent / "fixtures" / "pg16_createrole_self_grant.json")
    principals = {(f.rule_id, f.resource, f.principal) for f in results.findings}
    assert ("PGW-ROLE-002", "role/temporal_app", "role/zep_app") not in principals
    assert ("PGW-ISO-002", "database/temporal", "role/zep_app") not in principals
    assert not any(f.principal == "role/ctxecoadmin" for f in results.findings)
