"""The HTML report (``--html``): one self-contained file for auditors and security teams.

Everything is inline (CSS, JS, data) so the file opens from a mail attachment or an
evidence archive with no network. What an auditor reads first is rendered as static
HTML: the scan's identity, the counts, each rule with many failing findings told once
(``rule_groups``: count, examples, fix), the compliance view (each framework's controls
with their status, and the findings and pass records behind each, capped), the access
matrix and the coverage; the script adds a framework picker. The findings travel as
data (``html_data``: the JSON block, a large report's details packed) and are drawn a
page at a time by the inline script, so tens of thousands of findings neither bloat
the DOM nor freeze the browser; filtering runs over each finding's key, five integers.

The access matrix of a small server is a static table of every cell. A larger one
(more than ``STATIC_MATRIX_CELLS`` cells: 100 apps by 1,000 databases is 100,000)
is listed statically as its exposed databases and who reaches each, and travels in
the same JSON block, one small code per access cell, for the script to draw a page of
databases at a time.

Names from the server never reach the page as markup: the template autoescapes, the
JSON block has ``<``, ``>`` and ``&`` written as ``\\u003c``… (packed details are
base64) so no data can close the ``<script>`` element, and the script writes only
through ``textContent``.

The document is rendered in pieces (``Template.generate``, the findings a batch at a
time) and encoded as it goes, so rendering costs about the size of the report. The
data block, most of a large report, never passes through the template: it is encoded
to UTF-8 as bytes and put where the template leaves its placeholder. Decoding it to
text for Jinja and encoding it back cost as much as encoding the findings in the
first place.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from markupsafe import Markup

from pgwarden.gcpause import collector_paused
from pgwarden.model.results import SEVERITY_ORDER, Finding, Results, RuleInfo
from pgwarden.reports.access_matrix import server_access_matrix
from pgwarden.reports.compliance_view import STATUS_LABELS, control_findings, framework_title
from pgwarden.reports.html_data import data_block
from pgwarden.reports.rule_groups import MANY, rule_groups, stories, where
from pgwarden.reports.templating import html_template, static_asset
from pgwarden.reports.view import (
    STATUS_ORDER,
    family_name,
    help_uri,
    is_current,
    is_pass,
    most_severe_first,
    rules_by_id,
    server_names,
    severity_rank,
    utc_text,
    utf8_document,
)

SEVERITIES: tuple[str, ...] = tuple(SEVERITY_ORDER)
STATUSES: tuple[str, ...] = tuple(STATUS_ORDER)
# Without JavaScript the report lists this many findings, most severe first.
NOSCRIPT_FINDINGS = 500
# Resolved findings and unapplied waivers listed in the summary; the rest are counted.
LISTED = 50
# Characters of a pass record's evidence shown in the compliance drill-down.
EVIDENCE_CHARACTERS = 400
# Access matrices up to this many cells are static tables; larger ones are drawn by
# report.js from the JSON block (a cell is about 150 bytes of HTML, a code about 5).
STATIC_MATRIX_CELLS = 2_500
# Where the template puts the JSON block. Every value from the results reaches the
# page escaped, so no chunk of it can hold this markup.
_DATA_PLACEHOLDER = Markup("<pgw-findings-json>")


@dataclass(frozen=True)
class CoverageRow:
    """One rule and its outcome on each server."""

    rule: RuleInfo
    outcomes: tuple[tuple[str, str | None], ...]


def render_html(results: Results) -> bytes:
    """The results as one self-contained HTML document, encoded as UTF-8."""
    with collector_paused():
        return utf8_document(_render(results))


def _render(results: Results) -> Iterator[str | bytes]:
    rules = rules_by_id(results)
    servers = server_names(results)
    findings = _grouped_by_family(results.findings, rules)
    apps = _apps(findings)
    matrices = [server_access_matrix(s) for s in results.servers]
    drawn = [m for m in matrices if m.size > STATIC_MATRIX_CELLS]
    data = data_block(findings, rules, servers, apps, drawn, SEVERITIES)
    page = html_template("report.html").generate(
        results=results,
        scan=results.scan,
        summary=results.summary,
        servers=servers,
        server_summaries={s.name: s for s in results.servers},
        matrices=matrices,
        # Server → index of its matrix in the JSON block, for those report.js draws.
        drawn={m.server: index for index, m in enumerate(drawn)},
        coverage=_coverage_rows(results, rules, servers),
        coverage_errors=[c for c in results.coverage if c.outcome == "error"],
        rules=rules,
        severities=SEVERITIES,
        listed=LISTED,
        told=stories(rule_groups(results, "fail")),
        many=MANY,
        where=where,
        noscript_findings=most_severe_first(f for f in results.findings if not is_pass(f))[
            :NOSCRIPT_FINDINGS
        ],
        compliance=results.compliance,
        control_findings=control_findings(results) if results.compliance else {},
        compliance_labels=STATUS_LABELS,
        framework_title=framework_title,
        evidence_text=_evidence_text,
        duration=_duration(results.scan.started_at, results.scan.finished_at),
        when=utc_text,
        family_name=family_name,
        help_uri=help_uri,
        data=_DATA_PLACEHOLDER,
        css=static_asset("report.css"),
        js=static_asset("report.js"),
        script_hash=_script_hash("report.js"),
    )
    placed = 0
    for chunk in page:
        if chunk == _DATA_PLACEHOLDER:
            placed += 1
            yield from data
        else:
            yield chunk
    if placed != 1:  # a report without its findings must never be written
        raise RuntimeError(f"report.html placed the findings {placed} times instead of once")


def _grouped_by_family(findings: Sequence[Finding], rules: dict[str, RuleInfo]) -> list[Finding]:
    """Findings by family (families with the worst findings first), then most severe first.

    Baseline entries no longer found come last in their family and do not rank it.
    Ties keep the order of the results document, as a stable sort would. The findings
    fall into a few hundred groups at most (family, absent, status, severity): one
    pass puts each in its group, then only the groups are sorted, which for 50,000
    findings is a fraction of sorting them all by a computed key.
    """
    catalogue: dict[str, int] = {}
    for index, rule in enumerate(rules.values()):
        catalogue.setdefault(rule.family, index)
    family_of = {rule_id: rule.family for rule_id, rule in rules.items()}
    groups: dict[tuple[str, bool, str, str], list[Finding]] = {}
    for finding in findings:
        key = (
            family_of[finding.rule_id],
            not is_current(finding),
            finding.status,
            finding.severity,
        )
        group = groups.get(key)
        if group is None:
            group = groups[key] = []
        group.append(finding)
    worst: dict[str, tuple[int, int]] = {}
    for family, absent, status, severity in groups:
        rank = (len(STATUSES), 0) if absent else severity_rank(status, severity)
        worst[family] = min(worst.get(family, rank), rank)

    def order(key: tuple[str, bool, str, str]) -> tuple[Any, ...]:
        family, absent, status, severity = key
        return (worst[family], catalogue[family], absent, severity_rank(status, severity))

    return [finding for key in sorted(groups, key=order) for finding in groups[key]]


def _apps(findings: Iterable[Finding]) -> list[str]:
    return sorted({f.app for f in findings if f.app is not None})


def _coverage_rows(
    results: Results, rules: dict[str, RuleInfo], servers: list[str]
) -> list[CoverageRow]:
    outcomes = {(c.rule_id, c.server): (c.outcome, c.reason) for c in results.coverage}
    not_run: tuple[str, str | None] = ("not run", None)
    return [
        CoverageRow(rule, tuple(outcomes.get((rule.id, server), not_run) for server in servers))
        for rule in rules.values()
    ]


def _evidence_text(evidence: dict[str, Any]) -> str:
    """A pass record's evidence on one line of the drill-down (the full one is in the JSON)."""
    text = json.dumps(evidence, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= EVIDENCE_CHARACTERS else text[: EVIDENCE_CHARACTERS - 1] + "…"


@cache
def _script_hash(name: str) -> str:
    """The CSP source that lets exactly this inline script run, and nothing injected."""
    digest = hashlib.sha256(str(static_asset(name)).encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def _duration(start: datetime, end: datetime) -> str:
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"
