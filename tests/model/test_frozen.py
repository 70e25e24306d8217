"""Boundary models share the set of fields each was given, copies included: a results
document of 16,000 findings that a baseline, the waivers or the history marked would
otherwise hold 16,000 sets of about 700 bytes. Sharing must never let one model's
fields leak into another's."""

from __future__ import annotations

from datetime import UTC, datetime

from pgwarden.gate.baseline import apply_baseline, create_baseline, parse_baseline
from pgwarden.model.results import Coverage, Finding, Results, ScanInfo, Tool

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _finding(n: int) -> Finding:
    return Finding(
        rule_id="PGW-ISO-001",
        severity="high",
        status="fail",
        server="db",
        resource=f"database/app{n}",
        message=f"PUBLIC can connect to app{n}",
        fingerprint=f"{n:032x}",
    )


def test_a_copy_shares_its_fields_set_and_leaves_the_original_as_it_was() -> None:
    findings = [_finding(n) for n in range(3)]
    marked = [f.model_copy(update={"baseline_state": "new"}) for f in findings]
    assert len({id(f.__pydantic_fields_set__) for f in marked}) == 1
    assert "baseline_state" in marked[0].model_fields_set
    # The originals' shared set never gained the copies' field.
    assert len({id(f.__pydantic_fields_set__) for f in findings}) == 1
    assert "baseline_state" not in findings[0].model_fields_set
    assert findings[0].model_dump(exclude_unset=True).keys() == {
        "rule_id",
        "severity",
        "status",
        "server",
        "resource",
        "message",
        "fingerprint",
    }


def test_a_baseline_read_back_and_applied_keeps_one_set_per_kind() -> None:
    results = Results(
        tool=Tool(version="test"),
        scan=ScanInfo(started_at=NOW, finished_at=NOW, complete=True),
        findings=tuple(_finding(n) for n in range(4)),
        coverage=(Coverage(rule_id="PGW-ISO-001", server="db", outcome="failed"),),
    )
    baseline = create_baseline(results, now=NOW)
    read = parse_baseline(baseline.to_json(), "baseline.json")
    assert read == baseline
    assert len({id(e.__pydantic_fields_set__) for e in read.findings}) == 1
    applied = apply_baseline(results, read, path="baseline.json")
    assert {f.baseline_state for f in applied.findings} == {"unchanged"}
    assert len({id(f.__pydantic_fields_set__) for f in applied.findings}) == 1
