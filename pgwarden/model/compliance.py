"""Compliance by framework: each control's status, worked out from the results alone.

A control's status follows from the rules mapped to it (``RuleInfo.controls``), their
coverage on every server in scope and their findings:

- ``not_applicable``: the framework says it cannot apply to a managed server;
- ``fail``: a rule behind it found a violation (a waived one too: an accepted risk
  is an exception to the control, not compliance with it);
- ``error``: a rule behind it could not see what it needs on some server;
- ``manual``: no rule of this scan checks it, a rule behind it did not run on some
  server (skipped, or not selected), or the framework says part of it is a person's
  to check; ``reason`` says what;
- ``pass``: every rule behind it ran on every server and found nothing.

A rule mapped to a control with ``resources`` counts only its findings on those
resources (one setting of several it checks); its errors count whatever their
resource. A mapping with ``sections`` counts the rule only on servers where those
sections were collected; elsewhere the control is not evaluated by it (manual).
Baseline entries the scan no longer finds (``absent``) count for nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from pgwarden.model.frameworks.catalogue import Framework, FrameworkControl, frameworks_for
from pgwarden.model.results import (
    ComplianceControl,
    ComplianceCounts,
    ComplianceFramework,
    ComplianceStatus,
    ComplianceSummary,
    Results,
)

# How many rules a reason names before it counts the rest.
_NAMED = 3
_STATUSES: tuple[ComplianceStatus, ...] = ("pass", "fail", "error", "not_applicable", "manual")


@dataclass
class _RuleRun:
    """What one rule did across the servers in scope."""

    errors: list[str] = field(default_factory=list)
    unevaluated: list[str] = field(default_factory=list)
    # (status, resource, server) of each current finding, and their count by status.
    findings: list[tuple[str, str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def counted(
        self, resources: tuple[str, ...] | None, servers: frozenset[str] | None
    ) -> Counter[str]:
        """Findings by status: only those on ``resources`` (errors always all) and
        on ``servers`` (None: every server)."""
        if not resources and servers is None:
            return self.counts
        counts = Counter(
            status
            for status, resource, server in self.findings
            if status != "error"
            and (servers is None or server in servers)
            and (not resources or any(fnmatchcase(resource, g) for g in resources))
        )
        counts["error"] = self.counts["error"]
        return counts


@dataclass(frozen=True)
class _Mapped:
    """A rule behind a control: the resources and sections the mapping narrows it to."""

    rule_id: str
    resources: tuple[str, ...] | None
    sections: tuple[str, ...] | None


# What each server showed (None: a document from before sections were recorded).
_ServerSections = dict[str, tuple[str, ...] | None]


def compliance_of(results: Results) -> tuple[ComplianceFramework, ...]:
    """Every shipped framework, and any a plug-in rule declares, judged control by control."""
    runs = _rule_runs(results)
    sections: _ServerSections = {s.name: s.sections for s in results.servers}
    mapped: dict[tuple[str, str], list[_Mapped]] = {}
    for rule in results.rules:
        for control in rule.controls or ():
            mapped.setdefault((control.framework, control.id), []).append(
                _Mapped(rule.id, control.resources, control.sections)
            )
    frameworks = frameworks_for(
        (c.framework, c.id, c.title) for rule in results.rules for c in rule.controls or ()
    )
    return tuple(_framework(f, mapped, runs, sections) for f in frameworks)


def _rule_runs(results: Results) -> dict[str, _RuleRun]:
    servers = list(dict.fromkeys(s.name for s in results.servers))
    runs = {rule.id: _RuleRun() for rule in results.rules}
    outcomes = {(c.rule_id, c.server): c for c in results.coverage}
    for rule_id, run in runs.items():
        for server in servers:
            entry = outcomes.get((rule_id, server))
            if entry is None:
                run.unevaluated.append(f"{rule_id} did not run on {server} (not selected)")
            elif entry.outcome == "error":
                run.errors.append(
                    f"{rule_id} could not be evaluated on {server}: "
                    f"{entry.reason or 'see its error findings'}"
                )
            elif entry.outcome == "skipped":
                run.unevaluated.append(
                    f"{rule_id} was skipped on {server}: {entry.reason or 'not applicable'}"
                )
        if not servers:
            run.unevaluated.append("no server was scanned")
    for finding in results.findings:
        found = runs.get(finding.rule_id)
        if found is None or finding.baseline_state == "absent":
            continue
        found.findings.append((finding.status, finding.resource, finding.server))
        found.counts[finding.status] += 1
    return runs


def _framework(
    framework: Framework,
    mapped: dict[tuple[str, str], list[_Mapped]],
    runs: dict[str, _RuleRun],
    sections: _ServerSections,
) -> ComplianceFramework:
    controls = [
        _control(control, mapped.get((framework.id, control.id), []), runs, sections)
        for control in framework.controls
    ]
    tally = Counter(control.status for control in controls)
    return ComplianceFramework(
        id=framework.id,
        name=framework.name,
        version=framework.version,
        short_name=framework.label,
        url=framework.url,
        summary=ComplianceSummary(
            pass_=tally["pass"],
            fail=tally["fail"],
            error=tally["error"],
            not_applicable=tally["not_applicable"],
            manual=tally["manual"],
        ),
        controls=tuple(controls),
    )


def _control(
    control: FrameworkControl,
    mapping: list[_Mapped],
    runs: dict[str, _RuleRun],
    sections: _ServerSections,
) -> ComplianceControl:
    counted = []
    gaps: list[str] = []
    for mapped in mapping:
        run = runs.get(mapped.rule_id)
        if run is None:
            continue
        judged = None
        if mapped.sections:
            judged = frozenset(
                server
                for server, shown in sections.items()
                if shown is None or set(mapped.sections) <= set(shown)
            )
            gaps += [
                f"{mapped.rule_id} does not judge it on {server}: "
                f"{', '.join(s for s in mapped.sections if s not in shown)} not collected"
                for server, shown in sections.items()
                if shown is not None and server not in judged
            ]
        counted.append((mapped.rule_id, run, run.counted(mapped.resources, judged)))
    counts = ComplianceCounts(
        fail=sum(c["fail"] for _, _, c in counted),
        error=sum(c["error"] for _, _, c in counted),
        waived=sum(c["waived"] for _, _, c in counted),
        pass_=sum(c["pass"] for _, _, c in counted),
    )
    status, reason = _judge(control, counted, counts, gaps)
    return ComplianceControl(
        id=control.id,
        title=control.title,
        status=status,
        rules=tuple(dict.fromkeys(m.rule_id for m in mapping)),
        findings=counts,
        reason=reason,
        note=control.note,
    )


def _judge(
    control: FrameworkControl,
    counted: list[tuple[str, _RuleRun, Counter[str]]],
    counts: ComplianceCounts,
    gaps: list[str],
) -> tuple[ComplianceStatus, str | None]:
    if control.not_applicable:
        return "not_applicable", control.not_applicable
    if not counted:
        return "manual", control.manual or "no rule of this scan checks it"
    violations = counts.fail + counts.waived
    if violations:
        failing = [rule_id for rule_id, _, c in counted if c["fail"] or c["waived"]]
        waived = f", {counts.waived} of them waived" if counts.waived else ""
        return "fail", f"{violations} violation(s) found by {_names(failing)}{waived}"
    errors = [e for _, run, _ in counted for e in run.errors]
    if errors:
        return "error", _first(errors)
    unevaluated = [u for _, run, _ in counted for u in run.unevaluated] + gaps
    if unevaluated:
        also = f"; {control.manual}" if control.manual else ""
        return "manual", _first(unevaluated) + also
    if control.manual:
        names = _names(rule_id for rule_id, _, _ in counted)
        return "manual", f"{names} found nothing; {control.manual}"
    return "pass", None


def _names(items: Iterable[str]) -> str:
    listed = list(dict.fromkeys(items))
    shown = ", ".join(listed[:_NAMED])
    return shown + (f" and {len(listed) - _NAMED} more" if len(listed) > _NAMED else "")


def _first(reasons: list[str]) -> str:
    more = len(reasons) - 1
    return reasons[0] + (f" (and {more} more)" if more else "")
