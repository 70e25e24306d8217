"""What the reports show of the compliance section: labels, and each control's findings.

The results judge every control (``Results.compliance``); reports only label those
judgements and, for the HTML drill-down, gather the findings and pass records behind
each control: those of its rules, on the resources the mapping names. The lists are
capped (``DRILL_LISTED``, most severe first) so a report of a large server stays the
size of what a person reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pgwarden.model.results import ComplianceFramework, Finding, Results
from pgwarden.reports.view import is_current, most_severe_first

# Findings listed under one control in the HTML drill-down; the rest are counted.
DRILL_LISTED = 20
# Readable names of the statuses, in the order reports list them.
STATUS_LABELS: dict[str, str] = {
    "fail": "fail",
    "error": "error",
    "manual": "manual",
    "pass": "pass",
    "not_applicable": "not applicable",
}


@dataclass(frozen=True)
class ControlFindings:
    """The first findings behind one control, and how many there are in all."""

    listed: tuple[Finding, ...]
    total: int
    passes: int

    @property
    def described(self) -> str:
        """What the drill-down holds: ``3 findings and 12 pass records``."""
        found = self.total - self.passes
        parts = []
        if found:
            parts.append(f"{found} finding{'' if found == 1 else 's'}")
        if self.passes:
            parts.append(f"{self.passes} pass record{'' if self.passes == 1 else 's'}")
        shown = len(self.listed)
        tail = f" (the first {shown} shown, most severe first)" if shown < self.total else ""
        return " and ".join(parts) + tail


def framework_title(framework: ComplianceFramework) -> str:
    """A framework in a line: its short name, else its name and version."""
    return framework.short_name or f"{framework.name} {framework.version}".strip()


def pick_framework(results: Results, wanted: str) -> ComplianceFramework | None:
    """The framework whose id is ``wanted`` (case-insensitive), or None."""
    for framework in results.compliance or ():
        if framework.id.lower() == wanted.lower():
            return framework
    return None


def control_findings(results: Results) -> dict[tuple[str, str], ControlFindings]:
    """For each (framework id, control id), the findings behind it, most severe first."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in results.findings:
        if is_current(finding):
            by_rule.setdefault(finding.rule_id, []).append(finding)
    mappings: dict[tuple[str, str], list[tuple[str, Sequence[str] | None]]] = {}
    for rule in results.rules:
        for control in rule.controls or ():
            mappings.setdefault((control.framework, control.id), []).append(
                (rule.id, control.resources)
            )
    drills: dict[tuple[str, str], ControlFindings] = {}
    for key, mapped in mappings.items():
        found = [
            f
            for rule_id, resources in mapped
            for f in by_rule.get(rule_id, ())
            # Errors count whatever their resource, as they do for the control's status.
            if not resources
            or f.status == "error"
            or any(fnmatchcase(f.resource, glob) for glob in resources)
        ]
        if found:
            ordered = most_severe_first(found)
            passes = sum(1 for f in ordered if f.status == "pass")
            drills[key] = ControlFindings(tuple(ordered[:DRILL_LISTED]), len(ordered), passes)
    return drills
