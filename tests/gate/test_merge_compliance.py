"""A merge with shards missing cannot vouch for any control."""

from __future__ import annotations

from pgwarden.gate.merge import merged_compliance
from pgwarden.model.results import (
    ComplianceControl,
    ComplianceFramework,
    ComplianceSummary,
)


def _framework() -> ComplianceFramework:
    return ComplianceFramework(
        id="nist-800-53-r5",
        name="NIST SP 800-53",
        version="5",
        summary=ComplianceSummary.model_validate({"pass": 1, "fail": 1}),
        controls=(
            ComplianceControl(id="AC-6", title="Least Privilege", status="pass"),
            ComplianceControl(id="AC-3", title="Access Enforcement", status="fail"),
        ),
    )


def test_with_every_shard_the_judgement_stands() -> None:
    assert merged_compliance((_framework(),), ()) == (_framework(),)


def test_a_missing_shard_turns_every_pass_into_an_error() -> None:
    (framework,) = merged_compliance((_framework(),), (1, 3))
    passed, failed = framework.controls
    assert passed.status == "error"
    assert passed.reason is not None and "shard(s) 1, 3 missing" in passed.reason
    assert failed.status == "fail" and failed.reason is None
    assert framework.summary == ComplianceSummary.model_validate({"error": 1, "fail": 1})
