"""Pass records take no part in the gate: no waiver matches one, no baseline accepts
one, the history stores none, and none changes the exit code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pgwarden.engine import evaluate
from pgwarden.gate.baseline import BaselineFile, create_baseline
from pgwarden.gate.chain import apply_gate
from pgwarden.gate.history.store import HistoryStore
from pgwarden.gate.waivers import parse_waivers
from pgwarden.model.config import parse_config
from pgwarden.model.results import Results
from pgwarden.rules.registry import load_rules
from tests.engine.test_engine import CONFIG, _snapshot

EVERYTHING = """
[[waiver]]
rule = "*"
resource = "*"
reason = "accept everything, to see what a waiver may touch"
owner = "audit@example.com"
expires = 2999-12-31
"""


def _scan() -> Results:
    return evaluate(
        _snapshot(),
        parse_config(CONFIG, "pgwarden.toml"),
        load_rules(),
        started_at=datetime(2027, 1, 15, 9, 0, tzinfo=UTC),
        include_passed=True,
    )


def _passes(results: Results) -> list[tuple[str, str, str]]:
    return sorted(
        (f.rule_id, f.resource, f.fingerprint) for f in results.findings if f.status == "pass"
    )


def test_waivers_baseline_and_history_leave_pass_records_alone(tmp_path: Path) -> None:
    results = _scan()
    before = _passes(results)
    assert before
    baseline = create_baseline(results, now=datetime(2027, 1, 15, tzinfo=UTC))
    assert all(entry.status == "fail" for entry in baseline.findings)
    with HistoryStore.open(str(tmp_path / "history.sqlite")) as store:
        outcome = apply_gate(
            results,
            fail_on="critical",
            waivers=parse_waivers(EVERYTHING, "waivers.toml"),
            baseline=BaselineFile("baseline.json", baseline),
            history=store,
        )
        gated = outcome.results
        recorded = store.findings(gated.history.run_id if gated.history else 0)
    assert _passes(gated) == before
    for finding in gated.findings:
        if finding.status == "pass":
            assert finding.waiver is None and finding.baseline_state is None
            assert finding.first_seen is None
    assert gated.waivers is not None and gated.waivers.applied == results.summary.fail
    assert {f.status for f in recorded} <= {"fail", "waived", "error"}
    assert len(recorded) == len(results.findings) - len(before)
    # Everything failing is waived; pass records do not fail the gate either.
    assert gated.summary.fail == 0
    assert outcome.exit_code in (0, 3)


def test_the_compliance_section_follows_the_gate() -> None:
    results = _scan()
    outcome = apply_gate(
        results, fail_on="critical", waivers=parse_waivers(EVERYTHING, "waivers.toml")
    )
    assert outcome.results.compliance is not None
    before = {(f.id, c.id): c.findings for f in results.compliance or () for c in f.controls}
    after = {(f.id, c.id): c for f in outcome.results.compliance for c in f.controls}
    for key, control in after.items():
        counts = before[key]
        # Waived violations still fail the control; pass records are counted as before.
        assert control.findings.fail + control.findings.waived == counts.fail + counts.waived
        assert control.findings.pass_ == counts.pass_
        if counts.fail:
            assert control.status == "fail" and control.findings.fail == 0
