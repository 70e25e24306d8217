"""The markdown summary (``--markdown``): for pull-request comments and ``$GITHUB_STEP_SUMMARY``.

Compact on purpose: the counts, a per-framework compliance summary (with the controls
that fail or could not be evaluated), each rule with many failing findings told once
(count, examples, fix), the failing findings with their fixes (at most ``PER_RULE`` a
rule when some rule has many), what could not be evaluated and what is waived, each list
capped so the comment stays well under GitHub's 65,536-character limit, with a pointer
to the full reports. Every value is escaped by the template environment (see
``templating``): a role named ``*admin*`` or ``<img>`` shows as those characters.
"""

from __future__ import annotations

from pgwarden.model.results import SEVERITY_ORDER, Finding, Results
from pgwarden.reports.compliance_view import framework_title
from pgwarden.reports.rule_groups import EXAMPLES, rule_groups, stories, where
from pgwarden.reports.templating import markdown_template
from pgwarden.reports.view import (
    help_uri,
    is_current,
    most_severe_first,
    rules_by_id,
    utc_text,
    waiver_text,
)

# Findings listed per section; the rest are counted, not listed.
LISTED = 50
# With many findings of one kind, each rule's listed failing findings; the rest are told
# once, in "Many of one kind", so one rule does not crowd out every other.
PER_RULE = 10
SEVERITY_MARKS = {"critical": "🟥", "high": "🟧", "medium": "🟨", "low": "🟦"}


def render_markdown(results: Results) -> str:
    """The results as a short GitHub-flavoured markdown summary."""
    ordered = most_severe_first(f for f in results.findings if is_current(f))
    failing = [f for f in ordered if f.status == "fail"]
    errors = [f for f in ordered if f.status == "error"]
    waived = [f for f in ordered if f.status == "waived"]
    rules = rules_by_id(results)
    compliance = results.compliance or ()
    wanting = [(f, c) for f in compliance for c in f.controls if c.status in ("fail", "error")]
    told = stories(rule_groups(results, "fail", findings=failing))
    return markdown_template("summary.md").render(
        compliance=compliance,
        wanting_controls=wanting,
        framework_title=framework_title,
        results=results,
        scan=results.scan,
        summary=results.summary,
        severities=tuple(SEVERITY_ORDER),
        marks=SEVERITY_MARKS,
        failing=failing,
        shown=_shown(failing, bool(told)),
        told=told,
        examples=EXAMPLES,
        where=where,
        errors=errors,
        waived=waived,
        listed=LISTED,
        rules=rules,
        help_uri=help_uri,
        waiver_text=waiver_text,
        utc_text=utc_text,
    )


def _shown(failing: list[Finding], told: bool) -> list[Finding]:
    """The failing findings listed one by one: the first ``LISTED``, most severe first.

    When some rule is told as one story, each rule lists at most ``PER_RULE``.
    """
    if not told:
        return failing[:LISTED]
    per_rule: dict[str, int] = {}
    shown: list[Finding] = []
    for finding in failing:
        seen = per_rule.get(finding.rule_id, 0)
        if seen < PER_RULE:
            per_rule[finding.rule_id] = seen + 1
            shown.append(finding)
            if len(shown) == LISTED:
                break
    return shown
