"""SARIF 2.1.0 (``--sarif``): for GitHub code scanning and other SARIF consumers.

One run per server, each with ``automationDetails.id = pgwarden/<server>/``, so the
alerts of scheduled scans of different servers stay apart in code scanning. A live
resource has no file, so every result points at the block of the tenancy map that
declares its app (or its server): that is where the owners' intent is written down,
and GitHub needs a physical location. The resource itself is the logical location.

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
each rule whose findings did not all fit, one more result that tells the rest as one
story (how many, the first of them, the fix), with a fingerprint of its own per rule
and server. A notification says how many findings are not listed one by one.

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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import pydantic_core

from pgwarden.gcpause import collector_paused
from pgwarden.model.results import Finding, Results, RuleInfo, ServerSummary, fingerprint
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


def render_sarif(results: Results, *, cwd: Path | None = None) -> bytes:
    """The results as a SARIF 2.1.0 log in UTF-8; ``cwd`` anchors the config file's URI."""
    with collector_paused():
        return _render(results, cwd)


def _render(results: Results, cwd: Path | None) -> bytes:
    base = (cwd or Path.cwd()).resolve()
    uri = config_uri(results.scan.config, base)
    rules = rules_by_id(results)
    rule_index = {rule_id: index for index, rule_id in enumerate(rules)}
    descriptors = [_rule_descriptor(rule) for rule in rules.values()]
    by_server: dict[str, list[Finding]] = {name: [] for name in server_names(results)}
    # Sorted out once: each run's notifications and success flag need its errors.
    errors: dict[str, list[Finding]] = {name: [] for name in by_server}
    for finding in results.findings:
        if finding.status == "error":
            errors[finding.server].append(finding)
        elif is_current(finding) and not is_pass(finding):
            by_server[finding.server].append(finding)
    # A results document without servers still yields one (empty) run.
    names = list(by_server) or [""]
    found = {name: len(by_server.get(name, ())) for name in names}
    log = _Log(results, descriptors, rule_index, _Locator(results, uri), found, errors)
    # Sorted once, most severe first; cutting to fit is then slicing.
    ordered = {name: most_severe_first(by_server.get(name, ())) for name in names}
    keep = {name: _within_count(ordered[name], MAX_RESULTS_PER_RUN) for name in names}
    while True:
        document = log.document({name: _kept(ordered[name], keep[name], rules) for name in names})
        size = _gzipped_size(document)
        if size <= MAX_GZIPPED_BYTES or not any(keep.values()):
            return document
        ratio = MAX_GZIPPED_BYTES / size * 0.95
        keep = {
            name: _within_count(ordered[name], int(count * ratio)) for name, count in keep.items()
        }


def _within_count(ordered: Sequence[Finding], limit: int) -> int:
    """How many of ``ordered`` to list one by one so that they, with one result per rule
    for the rest, are at most ``limit`` results."""
    keep = min(len(ordered), limit)
    while keep > 0:
        told = len({f.rule_id for f in ordered[keep:]})
        if keep + told <= limit:
            break
        keep = max(0, limit - told)
    return keep


def _kept(
    ordered: Sequence[Finding], keep: int, rules: dict[str, RuleInfo]
) -> tuple[Sequence[Finding], list[tuple[RuleInfo, list[Finding]]]]:
    """The first ``keep`` findings, and the rest grouped by rule (one result each)."""
    rest: dict[str, list[Finding]] = {}
    for finding in ordered[keep:]:
        rest.setdefault(finding.rule_id, []).append(finding)
    return ordered[:keep], [(rules[rule_id], group) for rule_id, group in rest.items()]


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
    """The SARIF log as JSON in UTF-8, for the findings kept on each server."""

    def __init__(
        self,
        results: Results,
        descriptors: list[dict[str, Any]],
        rule_index: dict[str, int],
        locate: _Locator,
        found: dict[str, int],
        errors: dict[str, list[Finding]],
    ) -> None:
        self.results = results
        self.descriptors = descriptors
        self.rule_index = rule_index
        self.locate = locate
        self.found = found
        self.errors = errors

    def document(
        self, kept: dict[str, tuple[Sequence[Finding], list[tuple[RuleInfo, list[Finding]]]]]
    ) -> bytes:
        """The same bytes as ``json.dumps`` of the whole log, compact, and a final newline.

        ``kept``: per server, the findings listed one by one and, per rule, the rest
        (told as one result each).
        """
        document = io.BytesIO()
        document.write(_utf8('{"$schema":' + _dumps(SARIF_SCHEMA) + ',"version":"2.1.0","runs":['))
        for number, (server, (findings, told)) in enumerate(kept.items()):
            head, properties = _run(
                self.results,
                server,
                len(findings),
                self.found,
                self.descriptors,
                self.rule_index,
                self.errors.get(server, []),
            )
            # The run's last two keys are its results and properties.
            document.write(_utf8(("," if number else "") + _dumps(head)[:-1] + ',"results":['))
            for index, finding in enumerate(findings):
                if index:
                    document.write(b",")
                document.write(_result(finding, self.locate, self.rule_index))
            for index, (rule, group) in enumerate(told):
                if index or findings:
                    document.write(b",")
                document.write(_told_result(server, rule, group, self.locate, self.rule_index))
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
) -> bytes:
    """One result for the findings of ``rule`` not listed one by one: how many, the first
    of them, the fix. Its fingerprint is the rule's and server's, so the alert stays one
    alert, open while any of them are left out."""
    first = group[0]
    examples = ", ".join(where(f) for f in group[:EXAMPLES])
    fix = first_sentence(rule.remediation)
    text = (
        f"{len(group):,} more {rule.id} finding{'' if len(group) == 1 else 's'} on this server "
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
    server: str,
    dropped: int,
    total: int,
    rule_index: dict[str, int],
    errors: Sequence[Finding],
) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = []
    summary = _summary_of(results, server)
    for error in summary.errors if summary is not None else ():
        notes.append({"level": "error", "message": {"text": f"{server}: {error}"}})
    # Each error finding says what is missing; a coverage entry in error without one
    # (a hand-edited document) still gets its line.
    explained: set[str] = set()
    for finding in errors:
        explained.add(finding.rule_id)
        notes.append(_rule_note(finding.rule_id, finding.message, rule_index))
    for entry in results.coverage:
        if entry.server == server and entry.outcome == "error" and entry.rule_id not in explained:
            reason = entry.reason or f"{entry.rule_id} could not be evaluated"
            notes.append(_rule_note(entry.rule_id, reason, rule_index))
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
                        "their own. The JSON and HTML reports hold every finding."
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


def _summary_of(results: Results, server: str) -> ServerSummary | None:
    return next((s for s in results.servers if s.name == server), None)


def _run(
    results: Results,
    server: str,
    kept: int,
    found: dict[str, int],
    descriptors: list[dict[str, Any]],
    rule_index: dict[str, int],
    errors: Sequence[Finding],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run of one server but its results, and its properties (which follow them).

    ``errors`` are the server's findings with status ``error``, in document order.
    """
    summary = _summary_of(results, server)
    complete = summary.complete if summary is not None else results.scan.complete
    errored = bool(errors) or any(
        c.server == server and c.outcome == "error" for c in results.coverage
    )
    invocation: dict[str, Any] = {
        "executionSuccessful": complete and not errored,
        "startTimeUtc": _utc(results.scan.started_at),
        "endTimeUtc": _utc(results.scan.finished_at),
    }
    total = found[server]
    notes = _notifications(results, server, total - kept, total, rule_index, errors)
    if notes:
        invocation["toolExecutionNotifications"] = notes
    properties: dict[str, Any] = {"server": server}
    if results.scan.config_sha256:
        properties["config_sha256"] = results.scan.config_sha256
    head = {
        "tool": {
            "driver": {
                "name": "pgwarden",
                "version": results.tool.version,
                "semanticVersion": results.tool.version,
                "rules": descriptors,
            }
        },
        "automationDetails": {"id": f"pgwarden/{server}/" if server else "pgwarden/"},
        "invocations": [invocation],
        "columnKind": "utf16CodeUnits",
    }
    return head, properties


def _utc(moment: datetime) -> str:
    """SARIF wants UTC times ending in ``Z``; a naive time is taken as UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat() + "Z"
