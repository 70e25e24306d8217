"""Evaluate rules over a Snapshot and build the Results document.

Counting, severity overrides, fingerprints, coverage and the compliance section live
here, where tests reach them; what the results mean for the exit code is the gate's
(``pgwarden.gate.chain``).

Pass records (``--include-passed``) are findings with status ``pass``. A rule's pass
for a resource it also reported as failing or unknown is dropped: a resource is only
ever compliant or not.
"""

from __future__ import annotations

import hashlib
import logging
import typing
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import repeat

import pydantic_core

from pgwarden import __version__
from pgwarden.access.matrix import access_cells, entra_principals
from pgwarden.gcpause import collector_paused
from pgwarden.model.compliance import compliance_of
from pgwarden.model.config import Config, ReportSettings, ServerConfig, Severity
from pgwarden.model.context import ServerContext, admin_role_of
from pgwarden.model.errors import one_line
from pgwarden.model.evidence import bounded_evidence, bounded_message, shown_script
from pgwarden.model.frameworks.catalogue import control_title
from pgwarden.model.results import (
    SEVERITY_ORDER,
    Coverage,
    Finding,
    MappedControl,
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
from pgwarden.rules.registry import BUILT_IN, RegisteredRule

log = logging.getLogger(__name__)
NO_TENANCY_MAP = (
    "no tenancy map for this server: only the rules that need none ran "
    "(add its map to the [fleet] maps folder)"
)


def rule_info(entry: RegisteredRule, report: ReportSettings | None = None) -> RuleInfo:
    """A rule's metadata as the results carry it.

    Its documentation link is the rule's own ``help_uri``; a built-in rule's is the page
    ``report.rule_docs_url`` names, and none when no such place is configured.
    """
    rule = entry.rule
    doc = rule.doc()
    help_uri = rule.help_uri
    if help_uri is None and report is not None and entry.source == BUILT_IN:
        help_uri = report.rule_docs_link(rule.id)
    return RuleInfo(
        id=rule.id,
        title=doc.title,
        severity=rule.severity,
        family=rule.family(),
        frameworks=rule.framework_labels(),
        controls=tuple(
            MappedControl(
                framework=c.framework,
                id=c.id,
                title=control_title(c),
                resources=c.resources or None,
                sections=c.sections or None,
            )
            for c in rule.controls
        ),
        description=doc.description,
        remediation=doc.fix,
        help_uri=help_uri,
        source=entry.source,
    )


def missing_section(server: ServerSnapshot, section: Section | str) -> str | None:
    """Why a snapshot section is unavailable on a server, or None when it is there."""
    section = Section(section)
    if section == Section.TENANCY_MAP:
        return None  # config, not collected: skipped_section says when there is none
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
        if section == Section.POSTGRES_CRON and pg.pg_cron is None:
            gap = pg.gap("cron")
            if gap is None:
                return "pg_cron was not read (a snapshot from an older pgwarden): collect again"
            return gap.reason + (f" ({gap.fix})" if gap.fix else "")
        return None
    azure = server.azure
    if azure is None or azure.collected(section):
        return None
    gap = azure.gap(section)
    if gap is None:
        return f"{section} was not collected"
    return gap.reason + (f" (fix: {gap.fix})" if gap.fix else "")


def skipped_section(
    server: ServerSnapshot, section: Section | str, *, tenancy_map: bool = True
) -> str | None:
    """Why a section does not apply to a server: an Azure part the config never asked
    for, or the tenancy map of a server that has none (``tenancy_map`` false).

    Azure data that was asked for but could not be read is ``missing_section``'s (an
    ``error``); a server without an ``azure`` reference is simply not audited in Azure.
    """
    section = Section(section)
    if section == Section.TENANCY_MAP:
        return None if tenancy_map else NO_TENANCY_MAP
    if not section.is_azure:
        return None
    azure = server.azure
    if azure is None:
        return "no Azure reference for this server in the config"
    if not azure.collected(section) and azure.gap(section) is None:
        return f"the config asks for no {section} data on this server"
    return None


def server_context(
    server: ServerSnapshot, config: ServerConfig, cfg: Config, *, include_passed: bool = False
) -> ServerContext:
    """What the rules need to know about what the owners meant for this server."""
    auditor = server.postgres.connected_as if server.postgres is not None else None
    return ServerContext(
        server=config,
        policy=cfg.policy,
        admin_role=admin_role_of(server, config),
        auditor_role=auditor,
        include_passed=include_passed,
    )


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
        # A plug-in's message or list that grows with the server is cut here
        # (model.evidence).
        message=bounded_message(verdict.message),
        evidence=bounded_evidence(verdict.evidence),
        remediation=shown_script(verdict.remediation),
        fingerprint=fingerprint(rule.id, server, verdict.resource, verdict.principal),
    )


_STATUSES = frozenset(typing.get_args(typing.get_type_hints(Verdict)["status"]))
_TEXT_FIELDS = ("resource", "message")
_OPTIONAL_TEXT_FIELDS = ("principal", "app", "remediation")


def _recordable(verdicts: Sequence[object], rule: type[Rule], plug_in: bool) -> list[Verdict]:
    """The verdicts that can become findings; in place of those that cannot, one
    ``error`` saying why: a rule's bad output is an error for that rule, never a crash
    of the scan nor a silent pass.

    A plug-in's evidence is made plain JSON data here (a set or tuple a list, a date
    its ISO text, NaN null), as every report writes it; a built-in rule's is the test
    suite's to check. The reason names the field, never its value.
    """
    kept: list[Verdict] = []
    problem: str | None = None
    for verdict in verdicts:
        why = _unrecordable(verdict)
        if why is None and plug_in:
            assert isinstance(verdict, Verdict)
            try:
                evidence = pydantic_core.to_jsonable_python(verdict.evidence, inf_nan_mode="null")
            except (pydantic_core.PydanticSerializationError, ValueError, RecursionError) as exc:
                why = f"its evidence cannot be written as JSON ({one_line(exc)})"
            else:
                verdict = replace(verdict, evidence=evidence)
        if why is None:
            kept.append(typing.cast(Verdict, verdict))
        elif problem is None:
            problem = why
    if problem is not None:
        # Its own resource: a verdict of the rule on the server keeps its fingerprint.
        kept.append(
            Verdict(
                resource=f"rule/{rule.id}",
                message=f"{rule.id} reported a verdict pgwarden cannot record: {problem}",
                status="error",
            )
        )
    return kept


def _unrecordable(verdict: object) -> str | None:
    """Why ``verdict`` cannot become a finding (a field of the wrong type), or None."""
    if not isinstance(verdict, Verdict):
        return f"it yielded a {type(verdict).__name__} object, not a Verdict"
    for name in _TEXT_FIELDS:
        if not isinstance(getattr(verdict, name), str):
            return f"its {name} is {_kind(getattr(verdict, name))}, not text"
    for name in _OPTIONAL_TEXT_FIELDS:
        value = getattr(verdict, name)
        if value is not None and not isinstance(value, str):
            return f"its {name} is {_kind(value)}, not text"
    if verdict.status not in _STATUSES:
        return f"its status is not one of {', '.join(sorted(_STATUSES))}"
    # (Asked of every verdict: the keys are checked in one pass in C.)
    if not isinstance(verdict.evidence, dict) or not all(
        map(isinstance, verdict.evidence, repeat(str))
    ):
        return "its evidence is not a mapping of names to values"
    return None


def _kind(value: object) -> str:
    """What ``value`` is, by its type (never its content)."""
    return "None" if value is None else f"of type {type(value).__name__}"


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
        checker = rule()
        crash: Exception | None = None
        try:
            inapplicable = checker.not_applicable(context)
        except Exception as exc:  # a crashing rule is an error finding, never a skip
            inapplicable, crash = None, exc
        skipped = inapplicable or next(
            (
                r
                for section in rule.requires
                if (r := skipped_section(server, section, tenancy_map=context.server.tenancy_map))
            ),
            None,
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
        if crash is not None:
            verdicts: list[Verdict] = [_crashed(rule, server.name, crash)]
        elif missing is not None:
            section, reason = missing
            verdicts = [
                Verdict(
                    resource=f"server/{server.name}",
                    message=f"{rule.id} could not be evaluated: {reason}",
                    evidence={"missing": section},
                    status="error",
                )
            ]
        else:
            try:
                verdicts = _recordable(
                    list(checker.check(server, context)),
                    rule,
                    plug_in=entry.source != BUILT_IN,
                )
            except Exception as exc:  # a crashing rule is an error finding, never a pass
                verdicts = [_crashed(rule, server.name, exc)]
        seen: set[str] = set()
        produced: list[Finding] = []
        for verdict in _without_contradicted_passes(verdicts, context.include_passed):
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


def _crashed(rule: type[Rule], server: str, exc: Exception) -> Verdict:
    return Verdict(
        resource=f"server/{server}",
        message=f"{rule.id} failed while evaluating: {type(exc).__name__}: {exc}",
        status="error",
    )


def _without_contradicted_passes(verdicts: list[Verdict], include_passed: bool) -> list[Verdict]:
    """The verdicts, passes only when asked for and never on a resource found wanting.

    A plug-in may yield passes whatever the context says; and a resource the rule
    reported as failing or unknown is not compliant, whatever else it yielded.
    """
    if not any(v.status == "pass" for v in verdicts):
        return verdicts
    if not include_passed:
        return [v for v in verdicts if v.status != "pass"]
    wanting = {v.resource for v in verdicts if v.status != "pass"}
    return [v for v in verdicts if v.status != "pass" or v.resource not in wanting]


def _server_summary(
    server: ServerSnapshot, config: ServerConfig, context: ServerContext
) -> ServerSummary:
    pg = server.postgres
    errors = tuple(e.reason for e in server.errors)
    sections = collected_sections(server)
    if pg is None:
        return ServerSummary(name=server.name, complete=False, errors=errors, sections=sections)
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
        entra_roles=entra_principals(server, context) or None,
        sections=sections,
    )


def collected_sections(server: ServerSnapshot) -> tuple[str, ...]:
    """The snapshot sections a rule could read on this server."""
    return tuple(
        str(section)
        for section in Section
        if section != Section.TENANCY_MAP  # the config's, not collected
        and missing_section(server, section) is None
        and skipped_section(server, section) is None
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
    # One pass: a big server's scan has tens of thousands of findings.
    statuses: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    for finding in findings:
        if finding.baseline_state == "absent":
            continue
        statuses[finding.status] += 1
        if finding.status == "fail":
            by_severity[finding.severity] += 1
    return Summary(
        fail=statuses["fail"],
        pass_=sum(1 for c in coverage if c.outcome == "passed"),
        error=statuses["error"],
        waived=statuses["waived"],
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
    include_passed: bool = False,
) -> Results:
    """Run every selected rule on every server of the snapshot.

    ``include_passed``: also record each rule and resource found compliant (``pass``).
    """
    with collector_paused():
        return _evaluate(
            snapshot, config, rules, started_at, config_bytes, snapshot_path, include_passed
        )


def _evaluate(
    snapshot: Snapshot,
    config: Config,
    rules: Sequence[RegisteredRule],
    started_at: datetime | None,
    config_bytes: bytes | None,
    snapshot_path: str | None,
    include_passed: bool,
) -> Results:
    tally = _Tally(findings=[], coverage=[])
    summaries: list[ServerSummary] = []
    # A fleet's map names thousands of servers: each is found by name, not searched for.
    configured = config.servers_by_name()
    for server in snapshot.servers:
        server_config = configured.get(server.name) or ServerConfig(name=server.name)
        context = server_context(server, server_config, config, include_passed=include_passed)
        _evaluate_server(server, context, rules, dict(config.policy.severity), tally)
        summaries.append(_server_summary(server, server_config, context))
        # The analyses the rules shared (the tenancy) refer back to the context: a
        # reference cycle. Dropped here, they are freed now, not at some later collection.
        context.shared.clear()
    findings = sorted(tally.findings, key=finding_order)
    complete = all(c.outcome != "error" for c in tally.coverage) and all(
        s.complete for s in summaries
    )
    results = Results(
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
        rules=tuple(rule_info(entry, config.report) for entry in rules),
        coverage=tuple(tally.coverage),
    )
    return results.model_copy(update={"compliance": compliance_of(results)})


def evaluated(results: Results) -> frozenset[tuple[str, str]]:
    """The (rule id, server) pairs whose rule really ran: it passed or failed.

    A rule in ``error``, ``skipped`` or not selected says nothing about what is there,
    so nothing it found before may count as gone, nor anything it finds as new.
    """
    return frozenset(
        (c.rule_id, c.server) for c in results.coverage if c.outcome in ("passed", "failed")
    )


def with_findings(results: Results, findings: Sequence[Finding], **update: object) -> Results:
    """The results with new findings (re-sorted, re-counted, compliance judged again)
    and other top-level fields."""
    ordered = tuple(sorted(findings, key=finding_order))
    updated = results.model_copy(
        update={
            "findings": ordered,
            "summary": summarize(ordered, results.coverage),
            **update,
        }
    )
    if updated.compliance is None:  # a document from before compliance: left as it was
        return updated
    return updated.model_copy(update={"compliance": compliance_of(updated)})
