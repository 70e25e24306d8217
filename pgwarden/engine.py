"""Evaluate rules over a Snapshot and build the Results document.

Counting, severity overrides, fingerprints and coverage live here, where tests reach
them; what the results mean for the exit code is the gate's (``pgwarden.gate.chain``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pgwarden import __version__
from pgwarden.access.matrix import access_cells
from pgwarden.gcpause import collector_paused
from pgwarden.model.config import Config, ServerConfig, Severity
from pgwarden.model.context import ServerContext
from pgwarden.model.evidence import bounded_evidence
from pgwarden.model.results import (
    SEVERITY_ORDER,
    Coverage,
    Finding,
    Results,
    RuleInfo,
    ScanInfo,
    ServerSummary,
    Summary,
    Tool,
    fingerprint,
)
from pgwarden.model.sections import Section
from pgwarden.model.snapshot import ServerSnapshot, Snapshot
from pgwarden.rules.base import Rule, Verdict
from pgwarden.rules.registry import RegisteredRule

log = logging.getLogger(__name__)


def rule_info(entry: RegisteredRule) -> RuleInfo:
    """A rule's metadata as the results carry it."""
    rule = entry.rule
    doc = rule.doc()
    return RuleInfo(
        id=rule.id,
        title=doc.title,
        severity=rule.severity,
        family=rule.family(),
        frameworks=rule.frameworks,
        description=doc.description,
        remediation=doc.fix,
        help_uri=rule.help_uri,
        source=entry.source,
    )


def missing_section(server: ServerSnapshot, section: Section | str) -> str | None:
    """Why a snapshot section is unavailable on a server, or None when it is there."""
    section = Section(section)
    pg = server.postgres
    if not section.is_azure:
        if pg is None:
            reasons = "; ".join(e.reason for e in server.errors) or "PostgreSQL was not collected"
            return reasons
        if section == Section.POSTGRES_SESSIONS and pg.sessions is None:
            gap = pg.gap("sessions")
            return (
                gap.reason + (f" ({gap.fix})" if gap and gap.fix else "") if gap else "no sessions"
            )
        return None
    azure = server.azure
    if azure is None or azure.collected(section):
        return None
    gap = azure.gap(section)
    if gap is None:
        return f"{section} was not collected"
    return gap.reason + (f" (fix: {gap.fix})" if gap.fix else "")


def skipped_section(server: ServerSnapshot, section: Section | str) -> str | None:
    """Why a section does not apply to a server: an Azure part the config never asked for.

    Azure data that was asked for but could not be read is ``missing_section``'s (an
    ``error``); a server without an ``azure`` reference is simply not audited in Azure.
    """
    section = Section(section)
    if not section.is_azure:
        return None
    azure = server.azure
    if azure is None:
        return "no Azure reference for this server in the config"
    if not azure.collected(section) and azure.gap(section) is None:
        return f"the config asks for no {section} data on this server"
    return None


def server_context(server: ServerSnapshot, config: ServerConfig, cfg: Config) -> ServerContext:
    """What the rules need to know about what the owners meant for this server."""
    admin = config.admin_role
    if admin is None and server.azure is not None and server.azure.server is not None:
        admin = server.azure.server.administrator_login
    auditor = server.postgres.connected_as if server.postgres is not None else None
    return ServerContext(server=config, policy=cfg.policy, admin_role=admin, auditor_role=auditor)


@dataclass
class _Tally:
    findings: list[Finding]
    coverage: list[Coverage]


def _finding(verdict: Verdict, rule: type[Rule], severity: Severity, server: str) -> Finding:
    return Finding(
        rule_id=rule.id,
        severity=severity,
        status=verdict.status,
        server=server,
        app=verdict.app,
        resource=verdict.resource,
        principal=verdict.principal,
        message=verdict.message,
        # A plug-in's list that grows with the server is cut here (model.evidence).
        evidence=bounded_evidence(verdict.evidence),
        remediation=verdict.remediation,
        fingerprint=fingerprint(rule.id, server, verdict.resource, verdict.principal),
    )


def _evaluate_server(
    server: ServerSnapshot,
    context: ServerContext,
    rules: Sequence[RegisteredRule],
    overrides: dict[str, Severity],
    tally: _Tally,
) -> None:
    for entry in rules:
        rule = entry.rule
        severity = overrides.get(rule.id, rule.severity)
        skipped = next(
            (r for section in rule.requires if (r := skipped_section(server, section))), None
        )
        if skipped is not None:
            tally.coverage.append(
                Coverage(rule_id=rule.id, server=server.name, outcome="skipped", reason=skipped)
            )
            continue
        missing = next(
            (
                (section, reason)
                for section in rule.requires
                if (reason := missing_section(server, section)) is not None
            ),
            None,
        )
        if missing is not None:
            section, reason = missing
            verdicts: list[Verdict] = [
                Verdict(
                    resource=f"server/{server.name}",
                    message=f"{rule.id} could not be evaluated: {reason}",
                    evidence={"missing": section},
                    status="error",
                )
            ]
        else:
            try:
                verdicts = list(rule().check(server, context))
            except Exception as exc:  # a crashing rule is an error finding, never a pass
                verdicts = [
                    Verdict(
                        resource=f"server/{server.name}",
                        message=f"{rule.id} failed while evaluating: {type(exc).__name__}: {exc}",
                        status="error",
                    )
                ]
        seen: set[str] = set()
        produced: list[Finding] = []
        for verdict in verdicts:
            finding = _finding(verdict, rule, severity, server.name)
            if finding.fingerprint in seen:
                continue
            seen.add(finding.fingerprint)
            produced.append(finding)
        tally.findings.extend(produced)
        errors = [f for f in produced if f.status == "error"]
        fails = [f for f in produced if f.status == "fail"]
        log.debug(
            "%s on %s: %d failing, %d error(s)", rule.id, server.name, len(fails), len(errors)
        )
        if errors:
            outcome, reason = "error", errors[0].message
        elif fails:
            outcome, reason = "failed", None
        else:
            outcome, reason = "passed", None
        tally.coverage.append(
            Coverage(rule_id=rule.id, server=server.name, outcome=outcome, reason=reason)
        )


def _server_summary(
    server: ServerSnapshot, config: ServerConfig, context: ServerContext
) -> ServerSummary:
    pg = server.postgres
    errors = tuple(e.reason for e in server.errors)
    if pg is None:
        return ServerSummary(name=server.name, complete=False, errors=errors)
    gap_errors = tuple(f"{g.section}: {g.reason}" for g in pg.gaps)
    return ServerSummary(
        name=server.name,
        version=pg.version,
        host=pg.endpoint.host,
        port=pg.endpoint.port,
        connected_as=pg.connected_as,
        databases=len(pg.databases),
        roles=len(pg.roles),
        complete=not errors and not gap_errors,
        errors=errors + gap_errors,
        access=access_cells(server, context),
    )


def finding_order(finding: Finding) -> tuple[int, str, str, str, str]:
    """The order findings are listed in: most severe first, then by rule and place."""
    return (
        -SEVERITY_ORDER[finding.severity],
        finding.rule_id,
        finding.server,
        finding.resource,
        finding.principal or "",
    )


def summarize(findings: Sequence[Finding], coverage: Sequence[Coverage]) -> Summary:
    """Count the findings; baseline entries the scan no longer finds (absent) are not counted."""
    findings = [f for f in findings if f.baseline_state != "absent"]
    by_severity: dict[str, int] = {}
    for finding in findings:
        if finding.status == "fail":
            by_severity[finding.severity] = by_severity.get(finding.severity, 0) + 1
    return Summary(
        fail=sum(1 for f in findings if f.status == "fail"),
        pass_=sum(1 for c in coverage if c.outcome == "passed"),
        error=sum(1 for f in findings if f.status == "error"),
        waived=sum(1 for f in findings if f.status == "waived"),
        by_severity={s: by_severity[s] for s in SEVERITY_ORDER if s in by_severity},
    )


def evaluate(
    snapshot: Snapshot,
    config: Config,
    rules: Sequence[RegisteredRule],
    *,
    started_at: datetime | None = None,
    config_bytes: bytes | None = None,
    snapshot_path: str | None = None,
) -> Results:
    """Run every selected rule on every server of the snapshot."""
    with collector_paused():
        return _evaluate(snapshot, config, rules, started_at, config_bytes, snapshot_path)


def _evaluate(
    snapshot: Snapshot,
    config: Config,
    rules: Sequence[RegisteredRule],
    started_at: datetime | None,
    config_bytes: bytes | None,
    snapshot_path: str | None,
) -> Results:
    tally = _Tally(findings=[], coverage=[])
    summaries: list[ServerSummary] = []
    for server in snapshot.servers:
        server_config = config.server_named(server.name) or ServerConfig(name=server.name)
        context = server_context(server, server_config, config)
        _evaluate_server(server, context, rules, dict(config.policy.severity), tally)
        summaries.append(_server_summary(server, server_config, context))
        # The analyses the rules shared (the tenancy) refer back to the context: a
        # reference cycle. Dropped here, they are freed now, not at some later collection.
        context.shared.clear()
    findings = sorted(tally.findings, key=finding_order)
    complete = all(c.outcome != "error" for c in tally.coverage) and all(
        s.complete for s in summaries
    )
    return Results(
        tool=Tool(version=__version__),
        scan=ScanInfo(
            started_at=started_at or snapshot.collected_at,
            finished_at=datetime.now(UTC),
            complete=complete,
            config=config.path,
            config_sha256=hashlib.sha256(config_bytes).hexdigest() if config_bytes else None,
            locations=config.locations,
            snapshot=snapshot_path,
        ),
        servers=tuple(summaries),
        findings=tuple(findings),
        summary=summarize(findings, tally.coverage),
        rules=tuple(rule_info(entry) for entry in rules),
        coverage=tuple(tally.coverage),
    )


def evaluated(results: Results) -> frozenset[tuple[str, str]]:
    """The (rule id, server) pairs whose rule really ran: it passed or failed.

    A rule in ``error``, ``skipped`` or not selected says nothing about what is there,
    so nothing it found before may count as gone, nor anything it finds as new.
    """
    return frozenset(
        (c.rule_id, c.server) for c in results.coverage if c.outcome in ("passed", "failed")
    )


def with_findings(results: Results, findings: Sequence[Finding], **update: object) -> Results:
    """The results with new findings (re-sorted, re-counted) and other top-level fields."""
    ordered = tuple(sorted(findings, key=finding_order))
    return results.model_copy(
        update={
            "findings": ordered,
            "summary": summarize(ordered, results.coverage),
            **update,
        }
    )
