"""JUnit XML (``--junit``): for CI systems that show test results.

One test suite per server. Each (rule, resource) pair with a finding is a test case:
``failure`` when any finding on it fails, else ``error`` when the rule could not be
evaluated, else ``skipped`` (waived); a rule's resources beyond ``MAX_CASES_PER_RULE``
are one more case, ``(and N more resources)``, that tells them together. A rule that
ran and found nothing on a server is one passing test case, so the counts show what
was checked, not only what failed.
Baseline entries the scan no longer finds are not tests: nothing was checked there;
nor are pass records (``--include-passed``): their rule's case passes.

Built with ElementTree rather than a template: it escapes text and attributes (line
breaks in attributes included) the way XML requires. Characters XML 1.0 cannot carry
at all (control characters a role name may hold) are written as ``\\xNN``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime

from pgwarden.gcpause import collector_paused
from pgwarden.model.results import Coverage, Finding, Results, RuleInfo
from pgwarden.reports.rule_groups import EXAMPLES, where
from pgwarden.reports.view import (
    is_current,
    is_pass,
    rules_by_id,
    server_names,
    severity_first,
    waiver_text,
)

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
RULE_CASE = "(every resource)"
# Test cases a rule has on one server, one per resource; the rest are one more case
# that tells them together (how many, the first of them, the fix): a CI test tab of
# thousands of cases of one rule hides every other.
MAX_CASES_PER_RULE = 100
# Coverage outcomes of rules with no finding to show; "passed" is a plain test case.
# "failed" and "error" only happen here in a hand-edited document, and still show.
_COVERAGE_OUTCOME: dict[str, tuple[str, str]] = {
    "skipped": ("skipped", "skipped"),
    "error": ("error", "errors"),
    "failed": ("failure", "failures"),
}


def _xml_text(value: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def _element(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


def render_junit(results: Results) -> str:
    """The results as a JUnit XML document (``testsuites`` root)."""
    with collector_paused():
        return _render(results)


def _render(results: Results) -> str:
    rules = rules_by_id(results)
    duration = f"{(results.scan.finished_at - results.scan.started_at).total_seconds():.3f}"
    root = ET.Element("testsuites", {"name": "pgwarden", "time": duration})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for server in server_names(results):
        suite = _suite(results, server, rules, duration)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _suite(results: Results, server: str, rules: dict[str, RuleInfo], duration: str) -> ET.Element:
    suite = ET.Element(
        "testsuite",
        {
            "name": _xml_text(f"pgwarden {server}"),
            "timestamp": _timestamp(results.scan.started_at),
            "time": duration,
        },
    )
    properties = _element(suite, "properties")
    _element(properties, "property", name="pgwarden.version", value=results.tool.version)
    _element(properties, "property", name="server", value=server)
    if results.scan.config is not None:
        _element(properties, "property", name="config", value=results.scan.config)
    if results.scan.config_sha256 is not None:
        _element(properties, "property", name="config_sha256", value=results.scan.config_sha256)
    _element(properties, "property", name="complete", value=str(results.scan.complete).lower())

    groups: dict[tuple[str, str], list[Finding]] = {}
    current = (
        f for f in results.findings if f.server == server and is_current(f) and not is_pass(f)
    )
    for finding in sorted(current, key=_by_rule):
        groups.setdefault((finding.rule_id, finding.resource), []).append(finding)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    cases_of_rule: dict[str, int] = {}
    rest: dict[str, list[Finding]] = {}
    for (rule_id, resource), findings in groups.items():
        cases = cases_of_rule.get(rule_id, 0)
        if cases >= MAX_CASES_PER_RULE:
            rest.setdefault(rule_id, []).extend(findings)
            continue
        cases_of_rule[rule_id] = cases + 1
        counts[_case(suite, server, rules[rule_id], resource, findings)] += 1
    for rule_id, findings in rest.items():
        resources = len(dict.fromkeys(f.resource for f in findings))
        counts[_told_case(suite, server, rules[rule_id], resources, findings)] += 1
    for entry in _quiet_coverage(results, server, {rule_id for rule_id, _ in groups}):
        case = _element(suite, "testcase", classname=f"{server}.{entry.rule_id}", name=RULE_CASE)
        outcome = _COVERAGE_OUTCOME.get(entry.outcome)
        if outcome is not None:
            tag, counter = outcome
            _element(case, tag, message=entry.reason or f"rule {entry.outcome}")
            counts[counter] += 1
    counts["tests"] = len(suite.findall("testcase"))
    for key, value in counts.items():
        suite.set(key, str(value))
    return suite


def _by_rule(finding: Finding) -> tuple[str, str, tuple[int, int]]:
    return (finding.rule_id, finding.resource, severity_first(finding))


def _quiet_coverage(results: Results, server: str, reported: set[str]) -> Iterable[Coverage]:
    """Coverage entries of rules that produced no finding on this server."""
    for entry in results.coverage:
        if entry.server == server and entry.rule_id not in reported:
            yield entry


def _case(
    suite: ET.Element, server: str, rule: RuleInfo, resource: str, findings: list[Finding]
) -> str:
    """Add one test case; return the counter it adds to."""
    case = _element(suite, "testcase", classname=f"{server}.{rule.id}", name=resource)
    failing = [f for f in findings if f.status == "fail"]
    errors = [f for f in findings if f.status == "error"]
    if failing:
        first = failing[0]
        _element(
            case,
            "failure",
            _details(rule, findings),
            message=f"[{first.severity}] {first.message}"
            + (f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""),
            type=f"{rule.id} {first.severity}",
        )
        return "failures"
    if errors:
        _element(
            case, "error", _details(rule, findings), message=errors[0].message, type="not evaluated"
        )
        return "errors"
    waiver = findings[0].waiver
    _element(case, "skipped", message=f"waived: {waiver_text(waiver)}" if waiver else "waived")
    return "skipped"


def _told_case(
    suite: ET.Element, server: str, rule: RuleInfo, resources: int, findings: list[Finding]
) -> str:
    """One test case for a rule's resources beyond ``MAX_CASES_PER_RULE``: told once."""
    case = _element(
        suite, "testcase", classname=f"{server}.{rule.id}", name=f"(and {resources} more resources)"
    )
    failing = [f for f in findings if f.status == "fail"]
    errors = [f for f in findings if f.status == "error"]
    shown = failing or errors or findings
    examples = "\n".join(f"- {where(f)}: {f.message}" for f in shown[:EXAMPLES])
    text = (
        f"{rule.id}: {rule.title}\n\n{len(shown)} more like this, for example:\n{examples}"
        + (f"\n\nfix: {rule.remediation}" if rule.remediation else "")
        + "\n\nThe JSON and HTML reports list every one of them."
    )
    if failing:
        _element(
            case,
            "failure",
            text,
            message=f"[{failing[0].severity}] {len(failing)} more failing findings of {rule.id}",
            type=f"{rule.id} {failing[0].severity}",
        )
        return "failures"
    if errors:
        message = f"{len(errors)} more findings of {rule.id} not evaluated"
        _element(case, "error", text, message=message, type="not evaluated")
        return "errors"
    _element(case, "skipped", message=f"{len(findings)} more waived findings of {rule.id}")
    return "skipped"


# Findings spelt out in one test case (one rule and resource): a database that
# thousands of logins reach is one case, not megabytes of one.
MAX_DETAILS_PER_CASE = 20


def _details(rule: RuleInfo, findings: list[Finding]) -> str:
    """The findings on this rule and resource (the first ``MAX_DETAILS_PER_CASE``, then
    a count of the rest), with their evidence and fix."""
    blocks = [f"{rule.id}: {rule.title}"]
    for finding in findings[:MAX_DETAILS_PER_CASE]:
        lines = [f"[{finding.status} · {finding.severity}] {finding.message}"]
        if finding.app is not None:
            lines.append(f"app: {finding.app}")
        if finding.principal is not None:
            lines.append(f"principal: {finding.principal}")
        if finding.evidence:
            # One line per key: readable in a CI log, and compact JSON encodes in C
            # (indented JSON takes the pure-Python encoder, ten times slower).
            lines.append("evidence:")
            lines.extend(
                f"  {key}: {json.dumps(value, ensure_ascii=False, sort_keys=True)}"
                for key, value in sorted(finding.evidence.items())
            )
        if finding.waiver is not None:
            lines.append(f"waived: {waiver_text(finding.waiver)}")
        if finding.remediation or rule.remediation:
            lines.append(f"fix:\n{finding.remediation or rule.remediation}")
        lines.append(f"fingerprint: {finding.fingerprint}")
        blocks.append("\n".join(lines))
    if len(findings) > MAX_DETAILS_PER_CASE:
        rest = len(findings) - MAX_DETAILS_PER_CASE
        blocks.append(
            f"... and {rest:,} more finding(s) of {rule.id} on this resource: the JSON and "
            "HTML reports hold every one"
        )
    return "\n\n".join(blocks)


def _timestamp(moment: datetime) -> str:
    """JUnit's timestamp: ISO 8601 without a zone (the common XSD allows none), in UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat()
