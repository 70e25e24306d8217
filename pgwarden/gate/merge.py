"""Join the results of sharded scans (``--shard I/N``) into one results document.

N copies of one scan, each on its shard, write N parts; ``merge_results`` joins them
into the document one process scanning every server would have written: servers by
name, findings in the report order, coverage by server then rule, the summary counted
again. It refuses parts that cannot belong together (another tool version or config,
a shard or server twice) and says which shards no part covered: their servers are
simply absent, so the merged document is marked incomplete.

Waivers and baselines are applied by each part's scan and carried over (counts
added, a waiver stale only when it was stale in every part). Each part's history
run stays in its history store; the merged document carries no ``history`` report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from pgwarden.engine import finding_order, summarize
from pgwarden.model.compliance import compliance_of
from pgwarden.model.errors import ConfigError
from pgwarden.model.results import (
    BaselineReport,
    ComplianceFramework,
    ComplianceStatus,
    ComplianceSummary,
    MergeInfo,
    Results,
    RuleInfo,
    ScanInfo,
    ServerSummary,
    WaiverNote,
    WaiverReport,
)
from pgwarden.model.shards import Shard, parse_shard


@dataclass(frozen=True)
class ResultsPart:
    """One part to merge and where it was read from (named in errors)."""

    source: str
    results: Results


@dataclass(frozen=True)
class MergedResults:
    """The joined document, and the shards (I of I/N) no part covered."""

    results: Results
    shards: int | None
    missing: tuple[int, ...]


def mark_shard(results: Results, shard: Shard | None) -> Results:
    """The results of a scan of one shard, saying which (``scan.shard``)."""
    if shard is None:
        return results
    return results.model_copy(
        update={"scan": results.scan.model_copy(update={"shard": str(shard)})}
    )


def merge_results(parts: Sequence[ResultsPart]) -> MergedResults:
    """Join the parts; any reason they cannot be joined is one ConfigError line."""
    if not parts:
        raise ConfigError("merge: name at least one results document")
    first = parts[0]
    for part in parts[1:]:
        _same_scan(first, part)
    count, missing = _shards(parts)
    servers = _servers(parts)
    rules = _rules(parts)
    rule_order = {rule.id: index for index, rule in enumerate(rules)}
    server_order = {server.name: index for index, server in enumerate(servers)}
    coverage = sorted(
        (c for part in parts for c in part.results.coverage),
        key=lambda c: (server_order.get(c.server, len(servers)), rule_order.get(c.rule_id, 0)),
    )
    findings = sorted((f for part in parts for f in part.results.findings), key=finding_order)
    scans = [part.results.scan for part in parts]
    scan = ScanInfo(
        started_at=min(s.started_at for s in scans),
        finished_at=max(s.finished_at for s in scans),
        complete=all(s.complete for s in scans) and not missing,
        config=first.results.scan.config,
        config_sha256=first.results.scan.config_sha256,
        locations=first.results.scan.locations,
        merged=MergeInfo(parts=len(parts), shards=count, missing=missing),
    )
    results = Results(
        tool=first.results.tool,
        scan=scan,
        servers=tuple(servers),
        findings=tuple(findings),
        summary=summarize(findings, coverage),
        rules=tuple(rules),
        coverage=tuple(coverage),
        waivers=_waivers(parts),
        baseline=_baseline(parts),
    )
    if all(part.results.compliance is not None for part in parts):
        # Judged again over every server: a control passes only when it passed everywhere.
        results = results.model_copy(
            update={"compliance": merged_compliance(compliance_of(results), missing)}
        )
    return MergedResults(results=results, shards=count, missing=missing)


def merged_compliance(
    frameworks: tuple[ComplianceFramework, ...], missing: tuple[int, ...]
) -> tuple[ComplianceFramework, ...]:
    """With shards missing, no control can pass: the servers of those shards were not seen."""
    if not missing:
        return frameworks
    reason = (
        f"shard(s) {', '.join(str(i) for i in missing)} missing from the merge: "
        "not every server was scanned"
    )
    judged: list[ComplianceFramework] = []
    for framework in frameworks:
        controls = tuple(
            c.model_copy(update={"status": "error", "reason": reason}) if c.status == "pass" else c
            for c in framework.controls
        )
        counts = Counter(c.status for c in controls)
        summary = ComplianceSummary.model_validate(
            {status: counts.get(status, 0) for status in get_args(ComplianceStatus)}
        )
        judged.append(framework.model_copy(update={"controls": controls, "summary": summary}))
    return tuple(judged)


def _same_scan(first: ResultsPart, part: ResultsPart) -> None:
    a, b = first.results, part.results
    if a.tool.version != b.tool.version:
        raise ConfigError(
            f"merge: {part.source} was written by pgwarden {b.tool.version}, "
            f"{first.source} by {a.tool.version}: scan every shard with one version"
        )
    if a.scan.config_sha256 != b.scan.config_sha256:
        raise ConfigError(
            f"merge: {part.source} was scanned with another config than {first.source} "
            "(their config SHA-256 differ)"
        )


def _shards(parts: Sequence[ResultsPart]) -> tuple[int | None, tuple[int, ...]]:
    sharded = [part for part in parts if part.results.scan.shard is not None]
    if not sharded:
        return None, ()
    if len(sharded) != len(parts):
        plain = next(part for part in parts if part.results.scan.shard is None)
        raise ConfigError(
            f"merge: {plain.source} is not a shard's results (it was scanned without "
            "--shard), the others are"
        )
    seen: dict[int, str] = {}
    count: int | None = None
    for part in sharded:
        shard = parse_shard(str(part.results.scan.shard))
        if count is not None and shard.count != count:
            raise ConfigError(
                f"merge: {part.source} is shard {shard}, the others are of {count} shards"
            )
        count = shard.count
        if shard.index in seen:
            raise ConfigError(
                f"merge: shard {shard} is in both {seen[shard.index]} and {part.source}"
            )
        seen[shard.index] = part.source
    assert count is not None
    return count, tuple(index for index in range(count) if index not in seen)


def _servers(parts: Sequence[ResultsPart]) -> list[ServerSummary]:
    owner: dict[str, str] = {}
    servers: list[ServerSummary] = []
    for part in parts:
        for server in part.results.servers:
            if server.name in owner:
                raise ConfigError(
                    f"merge: server {server.name!r} is in both {owner[server.name]} and "
                    f"{part.source}"
                )
            owner[server.name] = part.source
            servers.append(server)
    return sorted(servers, key=lambda s: s.name)


def _rules(parts: Sequence[ResultsPart]) -> list[RuleInfo]:
    rules: dict[str, tuple[RuleInfo, str]] = {}
    for part in parts:
        for rule in part.results.rules:
            known = rules.get(rule.id)
            if known is None:
                rules[rule.id] = (rule, part.source)
            elif known[0] != rule:
                raise ConfigError(
                    f"merge: rule {rule.id} differs between {known[1]} and {part.source} "
                    "(another plug-in version or --rules-dir?)"
                )
    return [rule for rule, _source in rules.values()]


def _waivers(parts: Sequence[ResultsPart]) -> WaiverReport | None:
    reports = [part.results.waivers for part in parts if part.results.waivers is not None]
    if not reports:
        return None
    expired: dict[str, WaiverNote] = {}
    for report in reports:
        for note in report.expired:
            key = note.waiver.model_dump_json()
            known = expired.get(key)
            findings = tuple(sorted({*(known.findings if known else ()), *note.findings}))
            expired[key] = note.model_copy(update={"findings": findings})
    # A waiver is stale when it matched nothing anywhere: stale in every part.
    stale_sets = [{n.waiver.model_dump_json(): n for n in r.stale} for r in reports]
    stale = [note for key, note in stale_sets[0].items() if all(key in s for s in stale_sets)]
    if len(reports) < len(parts):
        stale = []  # a part without waivers cannot say what they matched there
    return WaiverReport(
        file=reports[0].file,
        applied=sum(report.applied for report in reports),
        expired=tuple(expired.values()),
        stale=tuple(stale),
    )


def _baseline(parts: Sequence[ResultsPart]) -> BaselineReport | None:
    reports = [part.results.baseline for part in parts if part.results.baseline is not None]
    if not reports:
        return None
    return BaselineReport(
        file=reports[0].file,
        created_at=reports[0].created_at,
        new=sum(r.new for r in reports),
        unchanged=sum(r.unchanged for r in reports),
        absent=sum(r.absent for r in reports),
    )
