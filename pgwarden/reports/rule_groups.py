"""Many findings of one kind, told once: each rule's findings counted, with examples and the fix.

On a shared server of 10,000 roles, thousands of login roles may belong to no app.
Each stays a finding of its own in the results (gates, baselines and waivers work per
finding), but a reader needs the story once: how many, which ones first, and what to
do. Every place that shows findings to a person (the terminal, the markdown summary,
the HTML report, SARIF when it must leave some out) groups them here the same way:
per rule, the rules with the most severe findings first, then the largest groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from pgwarden.model.results import SEVERITY_ORDER, Finding, Results, RuleInfo
from pgwarden.reports.view import is_current, rules_by_id

# A rule with at least this many findings of one status is told as one story: reports
# say so once, with the count, the first examples and the fix.
MANY = 20
# Examples a story names.
EXAMPLES = 5
# Characters of a rule's fix a one-line story shows (its first sentence, at most).
FIX_CHARACTERS = 240


@dataclass(frozen=True)
class RuleGroup:
    """The findings of one rule with one status, in the results' order (most severe first)."""

    rule: RuleInfo
    status: str
    findings: tuple[Finding, ...]

    @property
    def count(self) -> int:
        return len(self.findings)

    @cached_property
    def severity(self) -> str:
        """The group's most severe finding's (a rule's findings share one, overrides too)."""
        return max((f.severity for f in self.findings), key=SEVERITY_ORDER.__getitem__)

    @property
    def many(self) -> bool:
        """Whether the group is told as one story (``MANY`` findings or more)."""
        return self.count >= MANY

    def examples(self, limit: int = EXAMPLES) -> tuple[Finding, ...]:
        return self.findings[:limit]

    @property
    def fix(self) -> str:
        """The rule's fix in one line: its first sentence, as one story shows it."""
        return first_sentence(self.rule.remediation)


# Between a finding's resource and its principal, where a place is written in one phrase.
ARROW = " ← "


def where(finding: Finding) -> str:
    """A finding's place in one short phrase: ``resource ← principal`` (principal if other)."""
    if finding.principal and finding.principal != finding.resource:
        return f"{finding.resource}{ARROW}{finding.principal}"
    return finding.resource


def first_sentence(text: str, limit: int = FIX_CHARACTERS) -> str:
    """The first sentence (or line) of ``text``, at most ``limit`` characters."""
    line = " ".join(text.split("\n\n", 1)[0].split())
    end = line.find(". ")
    if end != -1:
        line = line[: end + 1]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def rule_groups(
    results: Results,
    status: str = "fail",
    *,
    absent: bool = False,
    findings: Iterable[Finding] | None = None,
) -> list[RuleGroup]:
    """The findings with ``status`` the scan found, one group per rule.

    The rules with the most severe findings come first, then the largest groups, then
    by rule id; within a group the results' order holds. ``absent`` groups the
    baseline entries the scan no longer finds instead; ``findings`` (default: the
    results') lets a caller group a part of them.
    """
    return groups_by_status(results, findings).get((status, absent), [])


def groups_by_status(
    results: Results, findings: Iterable[Finding] | None = None
) -> dict[tuple[str, bool], list[RuleGroup]]:
    """Every ``rule_groups`` at once, by (status, absent): one pass over the findings."""
    rules = rules_by_id(results)
    grouped: dict[tuple[str, bool, str], list[Finding]] = {}
    for finding in results.findings if findings is None else findings:
        key = (finding.status, not is_current(finding), finding.rule_id)
        group = grouped.get(key)
        if group is None:
            group = grouped[key] = []
        group.append(finding)
    found: dict[tuple[str, bool], list[RuleGroup]] = {}
    for (status, absent, rule_id), members in grouped.items():
        found.setdefault((status, absent), []).append(
            RuleGroup(rules[rule_id], status, tuple(members))
        )
    for groups in found.values():
        groups.sort(key=lambda g: (-SEVERITY_ORDER[g.severity], -g.count, g.rule.id))
    return found


def stories(groups: Sequence[RuleGroup]) -> list[RuleGroup]:
    """The groups told as one story each (``MANY`` findings or more)."""
    return [group for group in groups if group.many]
