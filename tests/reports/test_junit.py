"""JUnit XML: one test case per rule and resource, read back with junitparser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped
from junitparser.junitparser import Result

from pgwarden.model.results import Results
from pgwarden.reports.junit import (
    MAX_CASES_PER_RULE,
    MAX_DETAILS_PER_CASE,
    RULE_CASE,
    render_junit,
)
from tests.reports.conftest import HOSTILE, large_results


def parse(text: str, tmp_path: Path) -> JUnitXml:
    path = tmp_path / "junit.xml"
    path.write_text(text, encoding="utf-8")
    return JUnitXml.fromfile(str(path))


def cases(xml: JUnitXml) -> dict[tuple[str, str, str], list[Result]]:
    found: dict[tuple[str, str, str], list[Result]] = {}
    for suite in xml:
        for case in suite:
            key = (suite.name, case.classname, case.name)
            assert key not in found, f"duplicate test case {key}"
            found[key] = list(case.result)
    return found


def test_junit_golden(results: Results, golden: Callable[[str, str], None]) -> None:
    golden("junit.xml", render_junit(results))


def test_statuses_map_to_failure_error_skipped(results: Results, tmp_path: Path) -> None:
    xml = parse(render_junit(results), tmp_path)
    found = cases(xml)
    suite = "pgwarden ctxeco-db"
    (failure,) = found[(suite, "ctxeco-db.PGW-ADM-001", "session/4488")]
    assert isinstance(failure, Failure)
    assert failure.message.startswith("[critical] application 'ctxeco-api'")
    assert "pg_terminate_backend(4488)" in (failure.text or "")
    (skipped,) = found[(suite, "ctxeco-db.PGW-ISO-001", "database/zep")]
    assert isinstance(skipped, Skipped)
    assert "zep moves to its own server in Q1" in skipped.message
    (error,) = found[("pgwarden legacy-db", "legacy-db.PGW-ADM-001", "server/legacy-db")]
    assert isinstance(error, Error)
    assert "grant pg_monitor" in error.message
    assert found[(suite, "ctxeco-db.PGW-MAP-001", RULE_CASE)] == []  # passed
    # A baseline entry no longer found is not a test.
    assert (suite, "ctxeco-db.PGW-ROLE-001", "role/ctxeco_app") not in found


def test_one_case_per_rule_and_resource(results: Results, tmp_path: Path) -> None:
    found = cases(parse(render_junit(results), tmp_path))
    # Two roles reach ctxEco: one test case, failing, that names both.
    (failure,) = found[("pgwarden ctxeco-db", "ctxeco-db.PGW-ISO-002", "database/ctxEco")]
    assert isinstance(failure, Failure)
    assert "role/temporal_app" in (failure.text or "")
    assert "role/zep_app" in (failure.text or "")
    assert "(and 1 more)" in failure.message


def test_counts_add_up(results: Results, tmp_path: Path) -> None:
    xml = parse(render_junit(results), tmp_path)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in xml:
        results_of = [r for case in suite for r in case.result]
        assert suite.tests == len(list(suite))
        assert suite.failures == sum(isinstance(r, Failure) for r in results_of)
        assert suite.errors == sum(isinstance(r, Error) for r in results_of)
        assert suite.skipped == sum(isinstance(r, Skipped) for r in results_of)
        for key in totals:
            totals[key] += getattr(suite, key)
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == tuple(totals.values())
    assert (xml.failures, xml.errors, xml.skipped) == (9, 1, 1)


def test_hostile_names_are_valid_xml_text(hostile_results: Results, tmp_path: Path) -> None:
    text = render_junit(hostile_results)
    assert "\x07" not in text  # XML 1.0 cannot carry it, even escaped
    found = cases(parse(text, tmp_path))
    names = {name for _suite, _classname, name in found}
    assert f"database/{HOSTILE['ctxEco']}" in names
    messages = " ".join((r.message or "") + (r.text or "") for rs in found.values() for r in rs)
    assert HOSTILE["zep_app"] in messages
    assert HOSTILE["temporal_app"].replace("\x07", "\\x07") in messages


def test_a_rule_with_hundreds_of_resources_has_a_bounded_number_of_cases(
    tmp_path: Path,
) -> None:
    many = large_results(2_000, servers=1)
    xml = parse(render_junit(many), tmp_path)
    (suite,) = list(xml)
    per_rule: dict[str, list[str]] = {}
    for case in suite:
        per_rule.setdefault(case.classname, []).append(case.name)
    for names in per_rule.values():
        assert len(names) <= MAX_CASES_PER_RULE + 1
    told = [name for names in per_rule.values() for name in names if name.startswith("(and ")]
    assert told and all(name.endswith(" more resources)") for name in told)
    # Every finding is still counted: in its own case or in its rule's last one.
    counted = sum(
        int(name.split()[1]) if name.startswith("(and ") else 1
        for names in per_rule.values()
        for name in names
        if name != RULE_CASE
    )
    assert counted == len({(f.rule_id, f.resource) for f in many.findings})


def test_a_resource_thousands_of_principals_reach_is_one_bounded_case(
    results: Results, tmp_path: Path
) -> None:
    # One database that 500 logins can reach: 500 findings on one rule and resource,
    # one case that spells out the first few and counts the rest.
    [first] = [f for f in results.findings if f.status == "fail"][:1]
    many = results.model_copy(
        update={
            "findings": tuple(
                first.model_copy(
                    update={"principal": f"role/login{n:04d}", "fingerprint": f"fp{n}"}
                )
                for n in range(500)
            )
        }
    )
    xml = parse(render_junit(many), tmp_path)
    [failure] = [
        r
        for (_suite, _rule, name), rs in cases(xml).items()
        if name != RULE_CASE
        for r in rs
        if isinstance(r, Failure)
    ]
    text = failure.text or ""
    assert text.count("fingerprint: ") == MAX_DETAILS_PER_CASE
    assert f"... and {500 - MAX_DETAILS_PER_CASE} more finding(s) of {first.rule_id}" in text
