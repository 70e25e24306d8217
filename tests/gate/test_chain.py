"""The gate chain: waivers, then the baseline, then the history, then the exit code."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pgwarden.gate.baseline import BaselineFile, create_baseline
from pgwarden.gate.chain import apply_gate, exit_code, scan_day
from pgwarden.gate.history.store import HistoryStore
from pgwarden.gate.waivers import parse_waivers
from pgwarden.model.config import FailOn, Severity
from pgwarden.model.results import (
    BaselineState,
    Coverage,
    Finding,
    Results,
    ScanInfo,
    ServerSummary,
    Status,
    Tool,
    fingerprint,
)

SERVER = "shared-db"
RULE = "PGW-ISO-001"
STARTED = datetime(2026, 5, 10, 12, tzinfo=UTC)
WAIVE_ZEP = """\
[[waiver]]
rule = "PGW-ISO-001"
resource = "database/zep"
reason = "zep moves to its own server in Q1"
owner = "platform-team@example.com"
expires = 2026-06-30
"""


def _finding(
    resource: str,
    *,
    severity: Severity = "high",
    status: Status = "fail",
    baseline_state: BaselineState | None = None,
) -> Finding:
    return Finding(
        rule_id=RULE,
        severity=severity,
        status=status,
        server=SERVER,
        resource=resource,
        principal="PUBLIC",
        message=f"PUBLIC can connect to {resource}",
        fingerprint=fingerprint(RULE, SERVER, resource, "PUBLIC"),
        baseline_state=baseline_state,
    )


def _results(*findings: Finding, complete: bool = True, started: datetime = STARTED) -> Results:
    """A scan of one server where the rule ran (or, when incomplete, was in error)."""
    return Results(
        tool=Tool(version="test"),
        scan=ScanInfo(started_at=started, finished_at=started, complete=complete),
        servers=(ServerSummary(name=SERVER, complete=complete),),
        findings=findings,
        coverage=(
            Coverage(
                rule_id=RULE,
                server=SERVER,
                outcome="failed" if complete else "error",
            ),
        ),
    )


@pytest.mark.parametrize(
    ("findings", "complete", "fail_on", "expected"),
    [
        pytest.param((), True, "high", 0, id="clean"),
        pytest.param((_finding("database/zep"),), True, "high", 1, id="violation"),
        pytest.param(
            (_finding("database/zep", severity="low"),), True, "high", 0, id="below-fail-on"
        ),
        pytest.param((_finding("database/zep"),), False, "high", 1, id="violation-beats-error"),
        pytest.param(
            (_finding("database/zep", severity="low"),),
            False,
            "high",
            3,
            id="incomplete-with-only-lower-findings",
        ),
        pytest.param(
            (_finding(f"server/{SERVER}", status="error"),), False, "low", 3, id="error-only"
        ),
        pytest.param((_finding("database/zep"),), True, "none", 0, id="fail-on-none"),
        pytest.param((_finding("database/zep"),), False, "none", 3, id="none-still-incomplete"),
        pytest.param(
            (_finding("database/zep", status="waived"),), False, "low", 3, id="waived-incomplete"
        ),
        pytest.param(
            (_finding("database/zep", baseline_state="unchanged"),),
            True,
            "low",
            0,
            id="baseline-unchanged",
        ),
        pytest.param(
            (_finding("database/zep", baseline_state="absent"),), True, "low", 0, id="absent"
        ),
        pytest.param(
            (_finding("database/zep", baseline_state="new"),), True, "critical", 0, id="new-low"
        ),
        pytest.param(
            (_finding("database/zep", baseline_state="new"),), False, "high", 1, id="new-high"
        ),
    ],
)
def test_exit_codes_and_their_precedence(
    findings: tuple[Finding, ...], complete: bool, fail_on: FailOn, expected: int
) -> None:
    results = _results(*findings, complete=complete)
    outcome = apply_gate(results, fail_on=fail_on)
    assert outcome.exit_code == expected == exit_code(results, fail_on)
    # With no waivers, baseline or history the results pass through untouched.
    assert outcome.results is results


def test_waivers_then_baseline_then_history(tmp_path: Path) -> None:
    # Yesterday temporal and visibility failed and were accepted into a baseline.
    yesterday = _results(_finding("database/temporal"), _finding("database/visibility"))
    baseline = BaselineFile(
        path="./baseline.json",
        baseline=create_baseline(yesterday, now=STARTED - timedelta(days=1)),
    )
    # Today zep is new (but waived), temporal unchanged and visibility fixed.
    today = _results(_finding("database/zep"), _finding("database/temporal"))
    assert apply_gate(today, fail_on="high", baseline=baseline).exit_code == 1

    with HistoryStore.open(str(tmp_path / "history.db")) as store:
        outcome = apply_gate(
            today,
            fail_on="high",
            waivers=parse_waivers(WAIVE_ZEP, "waivers.toml"),
            baseline=baseline,
            history=store,
        )
        assert outcome.results.history is not None
        recorded = {f.resource: f.status for f in store.findings(outcome.results.history.run_id)}

    states = {f.resource: (f.status, f.baseline_state) for f in outcome.results.findings}
    assert states == {
        "database/zep": ("waived", "new"),
        "database/temporal": ("fail", "unchanged"),
        "database/visibility": ("fail", "absent"),
    }
    # The waiver took zep out of the gate, the baseline temporal: nothing fails.
    assert outcome.exit_code == 0
    assert outcome.results.summary.waived == 1 and outcome.results.summary.fail == 1
    assert outcome.results.baseline is not None
    assert outcome.results.baseline.file == "./baseline.json"
    assert (outcome.results.baseline.new, outcome.results.baseline.absent) == (1, 1)
    # The history stores the run as the reports show it: zep as waived, and the fixed
    # finding, which only the baseline remembers, not as seen today.
    assert recorded == {"database/zep": "waived", "database/temporal": "fail"}
    assert {f.resource: f.first_seen for f in outcome.results.findings} == {
        "database/zep": STARTED,
        "database/temporal": STARTED,
        "database/visibility": None,
    }


def test_waivers_are_judged_on_the_scan_day_in_utc() -> None:
    waivers = parse_waivers(WAIVE_ZEP, "waivers.toml")
    # 01:30 on July 1st at UTC+2 is still June 30th in UTC: the waiver's last day.
    started = datetime(2026, 7, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    results = _results(_finding("database/zep"), started=started)
    assert scan_day(results) == date(2026, 6, 30)

    on_the_day = apply_gate(results, fail_on="high", waivers=waivers)
    assert [f.status for f in on_the_day.results.findings] == ["waived"]
    assert on_the_day.exit_code == 0

    day_after = apply_gate(results, fail_on="high", waivers=waivers, today=date(2026, 7, 1))
    assert [f.status for f in day_after.results.findings] == ["fail"]
    assert day_after.results.waivers is not None
    assert len(day_after.results.waivers.expired) == 1
    assert day_after.exit_code == 1


def test_an_incomplete_scan_stays_incomplete_through_every_step(tmp_path: Path) -> None:
    results = _results(
        _finding("database/zep"), _finding(f"server/{SERVER}", status="error"), complete=False
    )
    baseline = BaselineFile(path="b.json", baseline=create_baseline(results, now=STARTED))
    with HistoryStore.open(str(tmp_path / "history.db")) as store:
        outcome = apply_gate(
            results,
            fail_on="high",
            waivers=parse_waivers(WAIVE_ZEP, "waivers.toml"),
            baseline=baseline,
            history=store,
        )
    # zep is waived, the error is not waivable and has no baseline state: exit 3.
    assert [(f.status, f.baseline_state) for f in outcome.results.findings] == [
        ("waived", "unchanged"),
        ("error", None),
    ]
    assert outcome.exit_code == 3
