"""Pass records (``--include-passed``): what was checked and found compliant, with evidence."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.engine import evaluate
from pgwarden.model.config import parse_config
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Rule, ServerContext, Verdict
from pgwarden.rules.registry import RegisteredRule, load_rules
from tests.engine.test_engine import CONFIG, _snapshot


def test_no_pass_records_unless_asked() -> None:
    results = evaluate(_snapshot(), parse_config(CONFIG, "c.toml"), load_rules())
    assert not [f for f in results.findings if f.status == "pass"]


def test_pass_records_carry_the_evidence_and_never_contradict_a_finding() -> None:
    results = evaluate(
        _snapshot(), parse_config(CONFIG, "c.toml"), load_rules(), include_passed=True
    )
    passes = [f for f in results.findings if f.status == "pass"]
    others = {(f.rule_id, f.resource) for f in results.findings if f.status != "pass"}
    assert passes and not {(p.rule_id, p.resource) for p in passes} & others
    for record in passes:
        assert record.message and record.evidence, record
    # ctxEco gives PUBLIC nothing: its ACL is the evidence; zep gives PUBLIC CONNECT.
    public = {p.resource: p for p in passes if p.rule_id == "PGW-ISO-001"}
    assert set(public) == {"database/ctxEco"}
    assert public["database/ctxEco"].evidence["datacl"] == [
        "ctxecoadmin=CTc/ctxecoadmin",
        "ctxeco_app=c/ctxecoadmin",
    ]
    assert public["database/ctxEco"].app == "ctxeco"
    # Counts and coverage are the same as without pass records.
    plain = evaluate(_snapshot(), parse_config(CONFIG, "c.toml"), load_rules())
    assert results.summary == plain.summary and results.coverage == plain.coverage
    assert [f for f in results.findings if f.status != "pass"] == list(plain.findings)


class _Eager(Rule):
    """A plug-in that reports passes whatever the context says.

    Fix: nothing.
    """

    id = "ACME-EAGER-001"
    severity = "low"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        yield Verdict(resource="database/a", message="a is fine", status="pass")
        yield Verdict(resource="database/b", message="b is fine", status="pass")
        yield Verdict(resource="database/b", message="b is not fine")


class _OptIn(Rule):
    """A plug-in that only applies when the policy asks for private access.

    Fix: nothing.
    """

    id = "ACME-OPTIN-001"
    severity = "low"

    def not_applicable(self, context: ServerContext) -> str | None:
        return None if context.policy.require_private_access else "private access not required"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        raise AssertionError("a rule that does not apply is never run")


def test_passes_are_only_kept_when_asked_and_never_for_a_resource_found_wanting() -> None:
    rules = [RegisteredRule(_Eager, "acme"), RegisteredRule(_OptIn, "acme")]
    config = parse_config(CONFIG, "c.toml")
    without = evaluate(_snapshot(), config, rules)
    assert [(f.resource, f.status) for f in without.findings] == [("database/b", "fail")]
    with_passes = evaluate(_snapshot(), config, rules, include_passed=True)
    assert sorted((f.resource, f.status) for f in with_passes.findings) == [
        ("database/a", "pass"),
        ("database/b", "fail"),
    ]


def test_a_rule_that_does_not_apply_is_skipped_with_its_reason() -> None:
    rules = [RegisteredRule(_OptIn, "acme")]
    results = evaluate(_snapshot(), parse_config(CONFIG, "c.toml"), rules)
    (entry,) = results.coverage
    assert (entry.outcome, entry.reason) == ("skipped", "private access not required")
    assert results.summary.pass_ == 0  # not a check that passed


class _Confused(_OptIn):
    """A plug-in that cannot tell whether it applies.

    Fix: nothing.
    """

    id = "ACME-CONFUSED-001"

    def not_applicable(self, context: ServerContext) -> str | None:
        raise KeyError("policy key")


def test_a_rule_that_crashes_deciding_whether_it_applies_is_an_error() -> None:
    results = evaluate(
        _snapshot(), parse_config(CONFIG, "c.toml"), [RegisteredRule(_Confused, "acme")]
    )
    (finding,) = results.findings
    assert finding.status == "error" and "KeyError" in finding.message
    assert results.coverage[0].outcome == "error"
