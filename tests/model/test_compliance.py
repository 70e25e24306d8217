"""Each control's status, worked out from the results: pass, fail, error, manual, n/a."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pgwarden.model.compliance import compliance_of
from pgwarden.model.results import (
    ComplianceControl,
    Coverage,
    Finding,
    MappedControl,
    Results,
    RuleInfo,
    ScanInfo,
    ServerSummary,
    Tool,
    fingerprint,
)

OWN = "acme-dbsec-2"
NOW = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)


def _rule(rule_id: str, *controls: MappedControl) -> RuleInfo:
    return RuleInfo(
        id=rule_id,
        title=rule_id,
        severity="high",
        family=rule_id.split("-")[1],
        description="",
        controls=controls,
    )


def _control(control_id: str, **narrowed: Any) -> MappedControl:
    return MappedControl(framework=OWN, id=control_id, title=f"control {control_id}", **narrowed)


def _finding(rule_id: str, server: str, resource: str, status: str, **more: Any) -> Finding:
    return Finding(
        rule_id=rule_id,
        severity="high",
        status=status,
        server=server,
        resource=resource,
        message="m",
        fingerprint=fingerprint(rule_id, server, resource, None),
        **more,
    )


def _results(
    rules: list[RuleInfo],
    coverage: dict[tuple[str, str], str],
    findings: list[Finding] = [],  # noqa: B006 - never mutated
    servers: dict[str, tuple[str, ...] | None] | None = None,
) -> Results:
    shown = servers if servers is not None else {"db-1": None, "db-2": None}
    return Results(
        tool=Tool(version="t"),
        scan=ScanInfo(started_at=NOW, finished_at=NOW, complete=True),
        servers=tuple(ServerSummary(name=n, sections=s) for n, s in shown.items()),
        findings=tuple(findings),
        rules=tuple(rules),
        coverage=tuple(
            Coverage(
                rule_id=r,
                server=s,
                outcome=o,
                reason=None if o in ("passed", "failed") else f"why {r} {o}",
            )
            for (r, s), o in coverage.items()
        ),
    )


def _judged(results: Results, control_id: str, framework: str = OWN) -> ComplianceControl:
    chosen = next(f for f in compliance_of(results) if f.id == framework)
    return next(c for c in chosen.controls if c.id == control_id)


def _everywhere(rule: str, outcome: str = "passed") -> dict[tuple[str, str], str]:
    return {(rule, "db-1"): outcome, (rule, "db-2"): outcome}


def test_pass_only_when_every_rule_ran_everywhere_and_found_nothing() -> None:
    rules = [_rule("ACME-A-001", _control("C-1")), _rule("ACME-B-001", _control("C-1"))]
    clean = _results(rules, {**_everywhere("ACME-A-001"), **_everywhere("ACME-B-001")})
    passed = _judged(clean, "C-1")
    assert (passed.status, passed.reason, passed.rules) == (
        "pass",
        None,
        ("ACME-A-001", "ACME-B-001"),
    )
    # Pass records count as evidence, not as trouble.
    with_evidence = _results(
        rules,
        {**_everywhere("ACME-A-001"), **_everywhere("ACME-B-001")},
        [_finding("ACME-A-001", "db-1", "database/a", "pass")],
    )
    judged = _judged(with_evidence, "C-1")
    assert judged.status == "pass" and judged.findings.pass_ == 1


def test_a_violation_fails_the_control_even_when_waived() -> None:
    rules = [_rule("ACME-A-001", _control("C-1")), _rule("ACME-B-001", _control("C-1"))]
    coverage = {**_everywhere("ACME-A-001"), **_everywhere("ACME-B-001", "failed")}
    failing = _results(rules, coverage, [_finding("ACME-B-001", "db-2", "database/b", "fail")])
    judged = _judged(failing, "C-1")
    assert judged.status == "fail" and judged.findings.fail == 1
    assert "ACME-B-001" in (judged.reason or "")
    waived = _results(rules, coverage, [_finding("ACME-B-001", "db-2", "database/b", "waived")])
    judged = _judged(waived, "C-1")
    assert judged.status == "fail" and "1 of them waived" in (judged.reason or "")
    # A baseline entry the scan no longer finds is gone, not a violation.
    gone = _results(
        rules,
        {**_everywhere("ACME-A-001"), **_everywhere("ACME-B-001")},
        [_finding("ACME-B-001", "db-2", "database/b", "fail", baseline_state="absent")],
    )
    assert _judged(gone, "C-1").status == "pass"


def test_a_rule_that_could_not_see_makes_the_control_an_error() -> None:
    rules = [_rule("ACME-A-001", _control("C-1"))]
    blind = _results(
        rules,
        {("ACME-A-001", "db-1"): "passed", ("ACME-A-001", "db-2"): "error"},
        [_finding("ACME-A-001", "db-2", "server/db-2", "error")],
    )
    judged = _judged(blind, "C-1")
    assert judged.status == "error"
    assert judged.reason == "ACME-A-001 could not be evaluated on db-2: why ACME-A-001 error"
    # A violation elsewhere outranks the blind spot.
    failing = _results(
        rules,
        {("ACME-A-001", "db-1"): "failed", ("ACME-A-001", "db-2"): "error"},
        [_finding("ACME-A-001", "db-1", "database/a", "fail")],
    )
    assert _judged(failing, "C-1").status == "fail"


def test_a_rule_that_did_not_run_everywhere_leaves_the_control_to_a_person() -> None:
    rules = [_rule("ACME-A-001", _control("C-1"))]
    skipped = _results(rules, {("ACME-A-001", "db-1"): "passed", ("ACME-A-001", "db-2"): "skipped"})
    judged = _judged(skipped, "C-1")
    assert judged.status == "manual"
    assert judged.reason == "ACME-A-001 was skipped on db-2: why ACME-A-001 skipped"
    not_selected = _results(rules, {("ACME-A-001", "db-1"): "passed"})
    assert "did not run on db-2 (not selected)" in (_judged(not_selected, "C-1").reason or "")
    nothing_scanned = _results(rules, {}, servers={})
    assert _judged(nothing_scanned, "C-1").reason == "no server was scanned"


def test_shipped_controls_without_rules_are_manual_and_host_items_not_applicable() -> None:
    results = _results([_rule("ACME-A-001", _control("C-1"))], _everywhere("ACME-A-001"))
    unchecked = _judged(results, "AC-2", "nist-800-53-r5")
    assert unchecked.status == "manual" and unchecked.reason == "no rule of this scan checks it"
    host = _judged(results, "2.1", "cis-postgresql-17-1.0.0")
    assert host.status == "not_applicable" and "file system" in (host.reason or "")
    partly = _judged(results, "3.2", "cis-postgresql-16-1.0.0")
    assert partly.status == "manual" and "pgaudit" in (partly.reason or "")


def test_a_shipped_control_that_needs_a_person_too_is_manual_when_its_rules_pass() -> None:
    mapped = MappedControl(framework="cis-azure-3.0.0", id="3.3.3", title="expiry")
    results = _results([_rule("ACME-A-001", mapped)], _everywhere("ACME-A-001"))
    judged = _judged(results, "3.3.3", "cis-azure-3.0.0")
    assert judged.status == "manual"
    assert (judged.reason or "").startswith("ACME-A-001 found nothing; pgwarden reads only")


def test_a_mapping_narrowed_to_resources_counts_only_their_findings() -> None:
    rules = [
        _rule(
            "ACME-A-001",
            _control("C-1", resources=("setting/log_checkpoints",)),
            _control("C-2", resources=("setting/log_connections",)),
        )
    ]
    coverage = {("ACME-A-001", "db-1"): "failed", ("ACME-A-001", "db-2"): "passed"}
    results = _results(
        rules,
        coverage,
        [
            _finding("ACME-A-001", "db-1", "setting/log_connections", "fail"),
            _finding("ACME-A-001", "db-1", "setting/log_checkpoints", "pass"),
        ],
    )
    assert _judged(results, "C-1").status == "pass"
    assert _judged(results, "C-1").findings.pass_ == 1
    assert _judged(results, "C-2").status == "fail"


def test_a_mapping_that_needs_sections_does_not_judge_servers_without_them() -> None:
    rules = [_rule("ACME-A-001", _control("C-1", sections=("azure.configurations",)))]
    coverage = {("ACME-A-001", "db-1"): "passed", ("ACME-A-001", "db-2"): "failed"}
    servers: dict[str, tuple[str, ...] | None] = {
        "db-1": ("postgres", "azure.configurations"),
        "db-2": ("postgres",),
    }
    # db-2 is outside Azure: its failure is no Azure control's, and the control is not
    # judged there.
    results = _results(
        rules, coverage, [_finding("ACME-A-001", "db-2", "setting/ssl", "fail")], servers
    )
    judged = _judged(results, "C-1")
    assert judged.status == "manual" and judged.findings.fail == 0
    assert (
        judged.reason == "ACME-A-001 does not judge it on db-2: azure.configurations not collected"
    )
    only_azure = _results(
        rules, {("ACME-A-001", "db-1"): "passed"}, servers={"db-1": servers["db-1"]}
    )
    assert _judged(only_azure, "C-1").status == "pass"


def test_a_plugin_framework_gets_a_section_of_its_own() -> None:
    results = _results([_rule("ACME-A-001", _control("C-1"))], _everywhere("ACME-A-001"))
    frameworks = compliance_of(results)
    assert [f.id for f in frameworks][-1] == OWN
    own = frameworks[-1]
    assert (own.name, own.version, own.summary.pass_) == (OWN, "", 1)
    assert own.controls[0].title == "control C-1"
