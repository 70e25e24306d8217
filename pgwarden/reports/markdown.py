"""The markdown summary (``--markdown``): for pull-request comments and ``$GITHUB_STEP_SUMMARY``.

Compact on purpose: the counts, a per-framework compliance summary (with the controls
that fail or could not be evaluated), the failing findings with their fixes, what
could not be evaluated and what is waived, each list capped so the comment stays well under
GitHub's 65,536-character limit, with a pointer to the full reports. Every value is
escaped by the template environment (see ``templating``): a role named
``*admin*`` or ``<img>`` shows as those characters.
"""

from __future__ import annotations

from pgwarden.model.results import SEVERITY_ORDER, Results
from pgwarden.reports.compliance_view import framework_title
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
        errors=errors,
        waived=waived,
        listed=LISTED,
        rules=rules,
        help_uri=help_uri,
        waiver_text=waiver_text,
        utc_text=utc_text,
    )
