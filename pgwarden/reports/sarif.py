"""SARIF 2.1.0 (``--sarif``): for GitHub code scanning and other SARIF consumers.

Up to 20 servers, one run per server, each with ``automationDetails.id =
pgwarden/<server>/``, so the alerts of scheduled scans of different servers stay apart
in code scanning. GitHub refuses a file of more than 20 runs, so a larger fleet is
told in exactly 20 runs, ``pgwarden/servers-NN-of-20/`` (NN from 01): a server goes to
run ``crc32(name) % 20 + 1``, which other servers coming or going never change, so each
alert keeps its category from scan to scan (a part scanned with ``--shard I/N`` puts
``shard-I-of-N/`` before ``servers-``, so the parts' files can be uploaded side by
side). All 20 are written, an empty one too: uploading it closes the alerts of servers
no longer scanned. Such a run lists its servers in its properties, every result names
its server (the logical location's ``fullyQualifiedName``, the fingerprint) and every
notification begins with it; its ``driver.rules`` holds only the rules its results and
notifications name, ``ruleIndex`` counting in that list, so the catalogue is not
repeated twenty times. A run of one server keeps the whole catalogue, as it always has.

A live resource has no file, so every result points at the block of the tenancy map
that declares its app (or its server): that is where the owners' intent is written
down, and GitHub needs a physical location. The resource itself is the logical location.

Findings with status ``error`` are not results (nothing was found, something could
not be looked at): they make the run's ``executionSuccessful`` false and appear as
``toolExecutionNotifications`` naming the rule and what is missing. Baseline entries
the scan no longer finds (``absent``) are left out too: GitHub does not read
``baselineState`` and would keep them as open alerts; leaving them out closes them.
Pass records (``--include-passed``) are left out: code scanning tracks alerts, and
the evidence of compliance belongs to the JSON, CSV and HTML reports.

GitHub rejects a run with more than 25,000 results and an upload over 10 MB gzipped,
and of a run it accepts it keeps only 5,000 results (not necessarily the most severe).
So a run lists at most 5,000 results: the most severe findings one by one, and for
each rule and server whose findings did not all fit, one more result that tells the
rest as one story (how many, on which server, the first of them, the fix), with a
fingerprint of its own per rule and server. A notification says how many findings are
not listed one by one. A log that is still over 10 MB gzipped with nothing but those
stories, or a run with more than 25,000 of them, is not written: GitHub would refuse
it (see ``TooLargeForGitHub``).

The log is encoded a result at a time, each built just before it is encoded, so
rendering holds the finished file rather than a tree of dictionaries for every result.
Results are written straight to UTF-8 by pydantic's encoder, which writes the same
bytes as ``json.dumps`` for what they hold (strings, integers, booleans, null) in a
fraction of the time; only a finding's evidence, whatever a rule put in it, still goes
through ``json.dumps`` (see ``_result``).
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import pydantic_core

from pgwarden.gcpause import collector_paused
from pgwarden.model.errors import UsageError
from pgwarden.model.results import (
    Coverage,
    Finding,
    Results,
    RuleInfo,
    ServerSummary,
    fingerprint,
)
from pgwarden.reports.rule_groups import EXAMPLES, first_sentence, where
from pgwarden.reports.view import (
    family_name,
    help_uri,
    is_current,
    is_pass,
    most_severe_first,
    rules_by_id,
    server_names,
    waiver_text,
)

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
PLACEHOLDER_CONFIG_URI = "pgwarden.toml"
# GitHub rejects a run of more than 25,000 results and keeps only 5,000 of a run it
# accepts, not necessarily the most severe: pgwarden keeps 5,000 itself, choosing.
MAX_RESULTS_PER_RUN = 5_000
MAX_GZIPPED_BYTES = 10 * 1024 * 1024
# A run with more results than this is rejected, not cut (GitHub's "Results per run").
MAX_RESULTS_ACCEPTED = 25_000
# GitHub code scanning rejects a SARIF file with more runs than this ("Runs per file:
# 20" in its documented upload limits): a larger fleet shares 20 runs.
MAX_RUNS = 20

LEVELS: dict[str, str] = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
# GitHub maps security-severity to its own labels: critical from 9.0, high from 7.0,
# medium from 4.0, low below; these values sit inside each band.
SECURITY_SEVERITY: dict[str, str] = {
    "critical": "9.5",
    "high": "8.0",
    "medium": "5.5",
    "low": "2.0",
}

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:/")


class TooLargeForGitHub(UsageError):
    """The log would break one of GitHub code scanning's upload limits even cut down.

    Raised rather than the file written with a warning: a CI job uploads the file in its
    next step, GitHub refuses it (at upload, or while processing it after the step has
    passed) and the alerts silently stay as the last scan left them. A warning line in a
    long log is easily missed; a failed step that says what to do is not. The formats
    written before SARIF are on disk, and the CLI prints this one line (exit code 2).
    """


def render_sarif(results: Results, *, cwd: Path | None = None) -> bytes:
    """The results as a SARIF 2.1.0 log in UTF-8; ``cwd`` anchors the config file's URI.

    Raises ``TooLargeForGitHub`` when no cut of the log fits GitHub's limits.
    """
    with collector_paused():
        return _render(results, cwd)


def _render(results: Results, cwd: Path | None) -> bytes:
    base = (cwd or Path.cwd()).resolve()
    uri = config_uri(results.scan.config, base)
    rules = rules_by_id(results)
    by_server: dict[str, list[Finding]] = {name: [] for name in server_names(results)}
    # Sorted out once: each run's notifications and success flag need its errors.
    errors: dict[str, list[Finding]] = {name: [] for name in by_server}
    for finding in results.findings:
        if finding.status == "error":
            errors[finding.server].append(finding)
        elif is_current(finding) and not is_pass(finding):
            by_server[finding.server].append(finding)
    # Likewise the coverage entries in error and the summaries, a pass each, rather
    # than a pass over all of them for every server.
    failed: dict[str, list[Coverage]] = {}
    for entry in results.coverage:
        if entry.outcome == "error":
            failed.setdefault(entry.server, []).append(entry)
    summaries: dict[str, ServerSummary] = {}
    for summary in results.servers:
        summaries.setdefault(summary.name, summary)
    # A results document without servers still yields one (empty) run.
    plans = _plan_runs(list(by_server) or [""], results.scan.shard)
    grouped = len(by_server) > MAX_RUNS
    catalogue = _Catalogue(rules)
    runs = []
    for automation_id, servers in plans:
        # Most severe first, sorted once; cutting to fit is then slicing.
        ordered = most_severe_first(f for s in servers for f in by_server.get(s, ()))
        run_errors = {s: errors.get(s, []) for s in servers}
        run_failed = {s: failed.get(s, []) for s in servers}
        if grouped:
            named = {f.rule_id for f in ordered}
            named.update(f.rule_id for listed in run_errors.values() for f in listed)
            named.update(c.rule_id for listed in run_failed.values() for c in listed)
            rule_ids = [rule_id for rule_id in rules if rule_id in named]
        else:
            rule_ids = list(rules)
        runs.append(
            _Run(
                automation_id,
                servers,
                grouped,
                ordered,
                run_errors,
                run_failed,
                catalogue.descriptors(rule_ids),
                {rule_id: index for index, rule_id in enumerate(rule_ids)},
            )
        )
    for run in runs:
        # Cut to the bone, a run tells each server's rule once: too many only if it has
        # more findings than GitHub accepts results (counting them costs a pass).
        if len(run.ordered) <= MAX_RESULTS_ACCEPTED:
            continue
        stories = len({(f.server, f.rule_id) for f in run.ordered})
        if stories > MAX_RESULTS_ACCEPTED:
            raise TooLargeForGitHub(
                f"--sarif: run {run.automation_id} would hold {stories:,} results even with "
                f"each rule's findings on each server told as one, over the "
                f"{MAX_RESULTS_ACCEPTED:,} GitHub code scanning accepts in a run; " + _SPLIT_ADVICE
            )
    log = _Log(results, _Locator(results, uri), summaries, runs, rules)
    keep = [_within_count(run.ordered, MAX_RESULTS_PER_RUN) for run in runs]
    while True:
        document = log.document(keep)
        size = _gzipped_size(document)
        if size <= MAX_GZIPPED_BYTES:
            return document
        if not any(keep):
            raise TooLargeForGitHub(
                f"--sarif: the SARIF log would be {size / (1024 * 1024):.1f} MB gzipped even "
                f"with each rule's findings on each server told as one result, over the "
                f"{MAX_GZIPPED_BYTES // (1024 * 1024)} MB GitHub code scanning accepts; "
                + _SPLIT_ADVICE
            )
        ratio = MAX_GZIPPED_BYTES / size * 0.95
        keep = [
            _within_count(run.ordered, int(count * ratio))
            for run, count in zip(runs, keep, strict=True)
        ]


_SPLIT_ADVICE = (
    "scan the fleet in shards (--shard I/N) and upload one SARIF file per shard "
    "(the JSON report holds every finding)"
)


def _plan_runs(names: list[str], shard: str | None) -> list[tuple[str, list[str]]]:
    """Each run's ``automationDetails.id`` and servers, in the order written.

    Up to ``MAX_RUNS`` servers, a run each. More share ``MAX_RUNS`` runs, a server in run
    ``crc32(name) % MAX_RUNS``: where it goes depends on its name alone, so servers coming
    or going never move another, and its alerts keep their category.
    """
    if len(names) <= MAX_RUNS:
        return [(f"pgwarden/{name}/" if name else "pgwarden/", [name]) for name in names]
    groups: list[list[str]] = [[] for _ in range(MAX_RUNS)]
    for name in names:
        groups[zlib.crc32(name.encode("utf-8")) % MAX_RUNS].append(name)
    prefix = "pgwarden/"
    if shard:
        index, _, count = shard.partition("/")
        prefix += f"shard-{index}-of-{count}/"
    width = len(str(MAX_RUNS))
    return [
        (f"{prefix}servers-{number:0{width}d}-of-{MAX_RUNS}/", servers)
        for number, servers in enumerate(groups, start=1)
    ]


class _Catalogue:
    """Rule descriptors, each built once however many runs list it."""

    def __init__(self, rules: dict[str, RuleInfo]) -> None:
        self.rules = rules
        self.built: dict[str, dict[str, Any]] = {}

    def descriptors(self, rule_ids: Iterable[str]) -> list[dict[str, Any]]:
        listed = []
        for rule_id in rule_ids:
            descriptor = self.built.get(rule_id)
            if descriptor is None:
                descriptor = self.built[rule_id] = _rule_descriptor(self.rules[rule_id])
            listed.append(descriptor)
        return listed


@dataclass(frozen=True)
class _Run:
    """One run: its servers, their findings most severe first, errors and rules."""

    automation_id: str
    servers: list[str]
    grouped: bool
    ordered: list[Finding]
    errors: dict[str, list[Finding]]
    failed: dict[str, list[Coverage]]
    descriptors: list[dict[str, Any]]
    rule_index: dict[str, int]


def _within_count(ordered: Sequence[Finding], limit: int) -> int:
    """How many of ``ordered`` to list one by one so that they, with one result per rule
    and server for the rest, are at most ``limit`` results."""
    keep = min(len(ordered), limit)
    while keep > 0:
        told = len({(f.server, f.rule_id) for f in ordered[keep:]})
        if keep + told <= limit:
            break
        keep = max(0, limit - told)
    return keep


def _kept(
    ordered: Sequence[Finding], keep: int, rules: dict[str, RuleInfo]
) -> tuple[Sequence[Finding], list[tuple[str, RuleInfo, list[Finding]]]]:
    """The first ``keep`` findings, and the rest grouped by server and rule (one result
    each)."""
    rest: dict[tuple[str, str], list[Finding]] = {}
    for finding in ordered[keep:]:
        rest.setdefault((finding.server, finding.rule_id), []).append(finding)
    return ordered[:keep], [
        (server, rules[rule_id], group) for (server, rule_id), group in rest.items()
    ]


def _gzipped_size(document: bytes) -> int:
    """The size of ``document`` gzipped at level 1, or its size when that surely fits.

    Level 1 compresses worse than what GitHub measures with, so a file that fits here
    fits there; it is also fast enough for 50,000 findings. Deflate never grows its
    input by more than zlib's ``compressBound`` (plus gzip's 18 bytes of header and
    trailer), so a smaller file needs no compressing to know it fits.
    """
    size = len(document)
    bound = size + (size >> 12) + (size >> 14) + (size >> 25) + 13 + 18
    if bound <= MAX_GZIPPED_BYTES:
        return size
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    view = memoryview(document)
    step = 1 << 20
    compressed = sum(len(compressor.compress(view[i : i + step])) for i in range(0, size, step))
    return compressed + len(compressor.flush())


class _Log:
    """The SARIF log as JSON in UTF-8, for the findings kept in each run."""

    def __init__(
        self,
        results: Results,
        locate: _Locator,
        summaries: dict[str, ServerSummary],
        runs: list[_Run],
        rules: dict[str, RuleInfo],
    ) -> None:
        self.results = results
        self.locate = locate
        self.summaries = summaries
        self.runs = runs
        self.rules = rules

    def document(self, keep: list[int]) -> bytes:
        """The same bytes as ``json.dumps`` of the whole log, compact, and a final newline.

        ``keep``: per run, how many of its findings (most severe first) are listed one by
        one; the rest are told as one result per server and rule.
        """
        document = io.BytesIO()
        document.write(_utf8('{"$schema":' + _dumps(SARIF_SCHEMA) + ',"version":"2.1.0","runs":['))
        for number, (run, count) in enumerate(zip(self.runs, keep, strict=True)):
            findings, told = _kept(run.ordered, count, self.rules)
            head, properties = _run(self.results, run, len(findings), self.summaries)
            # The run's last two keys are its results and properties.
            document.write(_utf8(("," if number else "") + _dumps(head)[:-1] + ',"results":['))
            for index, finding in enumerate(findings):
                if index:
                    document.write(b",")
                document.write(_result(finding, self.locate, run.rule_index))
            for index, (server, rule, group) in enumerate(told):
                if index or findings:
                    document.write(b",")
                document.write(
                    _told_result(server, rule, group, self.locate, run.rule_index, run.grouped)
                )
            document.write(_utf8('],"properties":' + _dumps(properties) + "}"))
        document.write(b"]}\n")
        # getvalue hands over the buffer without copying it.
        return document.getvalue()


def _told_result(
    server: str,
    rule: RuleInfo,
    group: Sequence[Finding],
    locate: _Locator,
    rule_index: dict[str, int],
    grouped: bool = False,
) -> bytes:
    """One result for the findings of ``rule`` on ``server`` not listed one by one: how
    many, the first of them, the fix. Its fingerprint is the rule's and server's, so the
    alert stays one alert, open while any of them are left out. In a run of several
    servers (``grouped``) the text names the server."""
    first = group[0]
    examples = ", ".join(where(f) for f in group[:EXAMPLES])
    fix = first_sentence(rule.remediation)
    on = f"on {server}" if grouped else "on this server"
    text = (
        f"{len(group):,} more {rule.id} finding{'' if len(group) == 1 else 's'} {on} "
        f"are not listed one by one (GitHub code scanning keeps {MAX_RESULTS_PER_RUN:,} "
        f"results per run): {rule.title} For example {examples}."
        + (f" Fix: {fix}" if fix else "")
        + " The JSON and HTML reports hold every finding."
    )
    resource = f"{rule.id}/left-out"
    result: dict[str, Any] = {
        "ruleId": rule.id,
        "ruleIndex": rule_index[rule.id],
        "level": LEVELS[first.severity],
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": locate.physical(first),
                "logicalLocations": [
                    {
                        "kind": "resource",
                        "name": f"{len(group):,} resources",
                        "fullyQualifiedName": f"{server}/{resource}",
                    }
                ],
            }
        ],
        "partialFingerprints": {
            "primaryLocationLineHash": fingerprint(rule.id, server, resource, None)
        },
        "properties": {
            "severity": first.severity,
            "status": "fail",
            "resource": resource,
            "grouped": len(group),
            "examples": [where(f) for f in group[:EXAMPLES]],
            "fingerprints": [f.fingerprint for f in group[:EXAMPLES]],
        },
    }
    return pydantic_core.to_json(result)


# Location dicts are shared between results, never nested in themselves: no cycle to
# look for.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def config_uri(config: str | None, cwd: Path) -> str:
    """The tenancy map as a SARIF artifact URI: relative to ``cwd``, forward slashes."""
    if not config:
        return PLACEHOLDER_CONFIG_URI
    posix = config.replace("\\", "/")
    if _WINDOWS_DRIVE.match(posix):
        return "file:///" + quote(posix)
    path = PurePosixPath(posix)
    if path.is_absolute():
        try:
            path = PurePosixPath(Path(posix).resolve().relative_to(cwd).as_posix())
        except ValueError:
            return Path(posix).as_uri()
    return quote(path.as_posix().removeprefix("./"), safe="/")


def start_line(results: Results, finding: Finding) -> int:
    """The line of the finding's app block, else its server block, else 1."""
    locations = results.scan.locations
    if finding.app is not None:
        line = locations.get(f"app/{finding.server}/{finding.app}")
        if line is not None:
            return line
    return locations.get(f"server/{finding.server}", 1)


class _Locator:
    """Physical locations, one shared dict per (server, app): results differ only there."""

    def __init__(self, results: Results, uri: str) -> None:
        self.results = results
        self.uri = uri
        self.known: dict[tuple[str, str | None], dict[str, Any]] = {}

    def physical(self, finding: Finding) -> dict[str, Any]:
        key = (finding.server, finding.app)
        location = self.known.get(key)
        if location is None:
            line = start_line(self.results, finding)
            location = {"artifactLocation": {"uri": self.uri}, "region": {"startLine": line}}
            self.known[key] = location
        return location


def _rule_descriptor(rule: RuleInfo) -> dict[str, Any]:
    family = family_name(rule.family)
    fix = rule.remediation or "See the rule's documentation."
    frameworks = "".join(f"\n- {name}" for name in rule.frameworks)
    markdown = f"**Why it matters**\n\n{rule.description}\n\n**How to fix it**\n\n{fix}"
    if frameworks:
        markdown += f"\n\n**Frameworks**\n{frameworks}"
    descriptor: dict[str, Any] = {
        "id": rule.id,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description or rule.title},
        "help": {"text": f"{rule.description}\n\nFix: {fix}".strip(), "markdown": markdown},
    }
    # No documentation page configured: the rule text above is the documentation.
    docs = help_uri(rule)
    if docs is not None:
        descriptor["helpUri"] = docs
    return descriptor | {
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "precision": "very-high",
            # GitHub reads security-severity only on rules tagged "security", and
            # keeps at most 20 tags.
            "tags": list(dict.fromkeys(["security", rule.family, family, *rule.frameworks]))[:20],
            "source": rule.source,
        },
    }


def _result(finding: Finding, locate: _Locator, rule_index: dict[str, int]) -> bytes:
    """One result as compact JSON in UTF-8, the bytes ``json.dumps`` would write.

    All but the evidence is strings, integers and the shared location dicts, which
    pydantic's encoder writes exactly as ``json.dumps`` does (the same escapes, UTF-8
    as it is) in a fraction of the time. The evidence is whatever a rule put in it, where
    the two differ (a float such as ``1e-05``, a ``None`` key), so ``json.dumps``
    writes it, as before. It and ``firstSeen`` end ``properties``, the result's last
    key, so they are appended to the rest.
    """
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index[finding.rule_id],
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": locate.physical(finding),
                "logicalLocations": [
                    {
                        "kind": "resource",
                        "name": finding.resource.partition("/")[2] or finding.resource,
                        "fullyQualifiedName": f"{finding.server}/{finding.resource}",
                    }
                ],
            }
        ],
        "partialFingerprints": {"primaryLocationLineHash": finding.fingerprint},
    }
    if finding.waiver is not None:
        result["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": waiver_text(finding.waiver)}
        ]
    if finding.baseline_state is not None:
        result["baselineState"] = finding.baseline_state
    # The run names the server; the rest is what a triager filters on.
    properties: dict[str, Any] = {
        "severity": finding.severity,
        "status": finding.status,
        "resource": finding.resource,
    }
    if finding.app is not None:
        properties["app"] = finding.app
    if finding.principal is not None:
        properties["principal"] = finding.principal
    if finding.remediation:
        properties["remediation"] = finding.remediation
    result["properties"] = properties
    encoded = pydantic_core.to_json(result)
    if not finding.evidence and finding.first_seen is None:
        return encoded
    # Reopen the two objects the encoding closed (properties, then the result).
    parts = [encoded[:-2]]
    if finding.evidence:
        parts += (b',"evidence":', _utf8(_dumps(finding.evidence)))
    if finding.first_seen is not None:
        parts += (b',"firstSeen":', pydantic_core.to_json(finding.first_seen.isoformat()))
    parts.append(b"}}")
    return b"".join(parts)


def _notifications(
    results: Results,
    run: _Run,
    dropped: int,
    total: int,
    summaries: dict[str, ServerSummary],
) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = []
    for server in run.servers:
        summary = summaries.get(server)
        for error in summary.errors if summary is not None else ():
            notes.append({"level": "error", "message": {"text": f"{server}: {error}"}})
        # In a run of several servers, each note begins with the server it is about.
        prefix = f"{server}: " if run.grouped else ""
        # Each error finding says what is missing; a coverage entry in error without one
        # (a hand-edited document) still gets its line.
        explained: set[str] = set()
        for finding in run.errors[server]:
            explained.add(finding.rule_id)
            notes.append(_rule_note(finding.rule_id, prefix + finding.message, run.rule_index))
        for entry in run.failed[server]:
            if entry.rule_id not in explained:
                reason = entry.reason or f"{entry.rule_id} could not be evaluated"
                notes.append(_rule_note(entry.rule_id, prefix + reason, run.rule_index))
    if dropped:
        notes.append(
            {
                "level": "warning",
                "message": {
                    "text": (
                        f"{dropped} of {total} results left out to stay within GitHub code "
                        f"scanning's limits ({MAX_RESULTS_PER_RUN} results kept per run, "
                        f"{MAX_GZIPPED_BYTES // (1024 * 1024)} MB gzipped); the most severe "
                        "were kept, and each rule's others are counted in one result of "
                        "their own"
                        + (" per server" if run.grouped else "")
                        + ". The JSON and HTML reports hold every finding."
                    )
                },
            }
        )
    return notes


def _rule_note(rule_id: str, text: str, rule_index: dict[str, int]) -> dict[str, Any]:
    note: dict[str, Any] = {"level": "error", "message": {"text": text}}
    if rule_id in rule_index:
        note["associatedRule"] = {"id": rule_id, "index": rule_index[rule_id]}
    return note


def _run(
    results: Results, run: _Run, kept: int, summaries: dict[str, ServerSummary]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run but its results, and its properties (which follow them)."""
    complete = all(
        summary.complete if summary is not None else results.scan.complete
        for summary in (summaries.get(server) for server in run.servers)
    )
    errored = any(run.errors[server] or run.failed[server] for server in run.servers)
    invocation: dict[str, Any] = {
        "executionSuccessful": complete and not errored,
        "startTimeUtc": _utc(results.scan.started_at),
        "endTimeUtc": _utc(results.scan.finished_at),
    }
    total = len(run.ordered)
    notes = _notifications(results, run, total - kept, total, summaries)
    if notes:
        invocation["toolExecutionNotifications"] = notes
    properties: dict[str, Any] = (
        {"servers": run.servers} if run.grouped else {"server": run.servers[0]}
    )
    if results.scan.config_sha256:
        properties["config_sha256"] = results.scan.config_sha256
    head = {
        "tool": {
            "driver": {
                "name": "pgwarden",
                "version": results.tool.version,
                "semanticVersion": results.tool.version,
                "rules": run.descriptors,
            }
        },
        "automationDetails": {"id": run.automation_id},
        "invocations": [invocation],
        "columnKind": "utf16CodeUnits",
    }
    return head, properties


def _utc(moment: datetime) -> str:
    """SARIF wants UTC times ending in ``Z``; a naive time is taken as UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat() + "Z"
