"""The HTML report (``--html``): one self-contained file for auditors and security teams.

Everything is inline (CSS, JS, data) so the file opens from a mail attachment or an
evidence archive with no network. What an auditor reads first is rendered as static
HTML: the scan's identity, the counts, the access matrix and the coverage. The
findings travel as JSON in a ``<script type="application/json">`` block and are drawn
a page at a time by the inline script, so tens of thousands of findings neither bloat
the DOM nor freeze the browser; filtering runs over the parsed array.

Names from the server never reach the page as markup: the template autoescapes, the
JSON block has ``<``, ``>`` and ``&`` written as ``\\u003c``… so no data can close the
``<script>`` element, and the script writes only through ``textContent``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from markupsafe import Markup

from pgwarden.reports.templating import html_template, static_asset
from pgwarden.reports.view import (
    STATUS_ORDER,
    collector_paused,
    family_name,
    help_uri,
    is_current,
    most_severe_first,
    rules_by_id,
    server_names,
    severity_first,
    utc_text,
)
from pgwarden.scanner.results import (
    SEVERITY_ORDER,
    AccessCell,
    Finding,
    Results,
    RuleInfo,
    ServerSummary,
)

SEVERITIES: tuple[str, ...] = tuple(SEVERITY_ORDER)
STATUSES: tuple[str, ...] = tuple(STATUS_ORDER)
# Without JavaScript the report lists this many findings, most severe first.
NOSCRIPT_FINDINGS = 500
# Resolved findings and unapplied waivers listed in the summary; the rest are counted.
LISTED = 50
# Column order of a finding in the embedded JSON; report.js reads the same order.
FINDING_COLUMNS = (
    "rule",
    "severity",
    "status",
    "server",
    "app",
    "resource",
    "principal",
    "message",
    "evidence",
    "remediation",
    "waiver",
    "baseline_state",
    "first_seen",
    "fingerprint",
    "age",
)
_VIA_LABELS = {
    "own": "own",
    "public": "via PUBLIC",
    "grant": "via grant",
    "membership": "via membership",
}


@dataclass(frozen=True)
class MatrixCell:
    """How one principal reaches one database (``kind`` ``none``: it cannot)."""

    kind: str
    label: str
    violation: bool
    explanation: str


@dataclass(frozen=True)
class AccessMatrix:
    """Apps (and PUBLIC) by app databases of one server."""

    server: str
    databases: tuple[tuple[str, str | None], ...]
    rows: tuple[tuple[str, tuple[MatrixCell, ...]], ...]
    exposed: tuple[str, ...]


@dataclass(frozen=True)
class CoverageRow:
    """One rule and its outcome on each server."""

    rule: RuleInfo
    outcomes: tuple[tuple[str, str | None], ...]


def render_html(results: Results) -> str:
    """The results as one self-contained HTML document."""
    with collector_paused():
        return _render(results)


def _render(results: Results) -> str:
    rules = rules_by_id(results)
    servers = server_names(results)
    findings = _grouped_by_family(results.findings, rules)
    return html_template("report.html").render(
        results=results,
        scan=results.scan,
        summary=results.summary,
        servers=servers,
        server_summaries={s.name: s for s in results.servers},
        matrices=[access_matrix(s) for s in results.servers],
        coverage=_coverage_rows(results, rules, servers),
        coverage_errors=[c for c in results.coverage if c.outcome == "error"],
        rules=rules,
        severities=SEVERITIES,
        listed=LISTED,
        noscript_findings=most_severe_first(results.findings)[:NOSCRIPT_FINDINGS],
        duration=_duration(results.scan.started_at, results.scan.finished_at),
        when=utc_text,
        family_name=family_name,
        help_uri=help_uri,
        data=_json_script(_payload(results, rules, servers, findings)),
        css=static_asset("report.css"),
        js=static_asset("report.js"),
        script_hash=_script_hash("report.js"),
    )


def access_matrix(server: ServerSummary) -> AccessMatrix:
    """The access cells of one server as a grid: rows PUBLIC then apps, columns databases.

    PUBLIC's CONNECT reaches every role, so an app with no access of its own to a
    database PUBLIC may connect to is shown reaching it "via PUBLIC".
    """
    databases: dict[str, str | None] = {}
    principals: dict[str, None] = {}
    cells: dict[tuple[str, str], AccessCell] = {}
    for cell in server.access:
        databases.setdefault(cell.database, cell.app)
        if cell.app is not None and cell.principal != "PUBLIC":
            principals.setdefault(cell.app, None)
        principals.setdefault(cell.principal, None)
        cells[(cell.principal, cell.database)] = cell
    order = sorted(principals, key=lambda principal: principal != "PUBLIC")  # PUBLIC first
    rows = tuple(
        (principal, tuple(_matrix_cell(principal, db, cells) for db in databases))
        for principal in order
    )
    violated = {cell.database for cell in server.access if cell.violation}
    exposed = tuple(db for db in databases if db in violated)
    return AccessMatrix(server.name, tuple(databases.items()), rows, exposed)


def _matrix_cell(
    principal: str, database: str, cells: dict[tuple[str, str], AccessCell]
) -> MatrixCell:
    cell = cells.get((principal, database))
    public = cells.get(("PUBLIC", database))
    if cell is None and public is not None and principal != "PUBLIC":
        cell = public
    if cell is None:
        return MatrixCell("none", "—", False, f"{principal} cannot connect to {database}")
    label = "CONNECT" if principal == "PUBLIC" else _VIA_LABELS[cell.via]
    how = {
        "own": "its own database",
        "public": "through PUBLIC's CONNECT privilege",
        "grant": "through a direct CONNECT grant",
        "membership": "through membership in a role that may connect",
    }[cell.via]
    flag = " (violation)" if cell.violation else ""
    return MatrixCell(cell.via, label, cell.violation, f"{principal} → {database}: {how}{flag}")


def _grouped_by_family(findings: Sequence[Finding], rules: dict[str, RuleInfo]) -> list[Finding]:
    """Findings by family (families with the worst findings first), then most severe first.

    Baseline entries no longer found come last in their family and do not rank it.
    """
    catalogue: dict[str, int] = {}
    for index, rule in enumerate(rules.values()):
        catalogue.setdefault(rule.family, index)
    worst: dict[str, tuple[int, int]] = {}
    for finding in findings:
        family = rules[finding.rule_id].family
        key = severity_first(finding) if is_current(finding) else (len(STATUSES), 0)
        worst[family] = min(worst.get(family, key), key)

    def order(finding: Finding) -> tuple[Any, ...]:
        family = rules[finding.rule_id].family
        return (worst[family], catalogue[family], not is_current(finding), severity_first(finding))

    return sorted(findings, key=order)


def _payload(
    results: Results, rules: dict[str, RuleInfo], servers: list[str], findings: list[Finding]
) -> dict[str, Any]:
    """The findings for report.js: lookup tables once, then one compact row per finding."""
    rule_index = {rule_id: index for index, rule_id in enumerate(rules)}
    server_index = {name: index for index, name in enumerate(servers)}
    apps = sorted({f.app for f in findings if f.app is not None})
    app_index = {name: index for index, name in enumerate(apps)}
    severity_index = {name: index for index, name in enumerate(SEVERITIES)}
    status_index = {name: index for index, name in enumerate(STATUSES)}
    families = list(dict.fromkeys(rule.family for rule in rules.values()))
    rows = [
        [
            rule_index[f.rule_id],
            severity_index[f.severity],
            status_index[f.status],
            server_index[f.server],
            app_index[f.app] if f.app is not None else -1,
            f.resource,
            f.principal,
            f.message,
            f.evidence or None,
            f.remediation,
            [f.waiver.reason, f.waiver.owner, f.waiver.expires.isoformat()] if f.waiver else None,
            f.baseline_state,
            utc_text(f.first_seen) if f.first_seen is not None else None,
            f.fingerprint,
            _age(f.age_days),
        ]
        for f in findings
    ]
    return {
        "columns": FINDING_COLUMNS,
        "severities": SEVERITIES,
        "statuses": STATUSES,
        "servers": servers,
        "apps": apps,
        "families": [[code, family_name(code)] for code in families],
        "rules": [
            {
                "id": rule.id,
                "title": rule.title,
                "family": families.index(rule.family),
                "severity": rule.severity,
                "description": rule.description,
                "remediation": rule.remediation,
                "frameworks": rule.frameworks,
                "help": help_uri(rule),
            }
            for rule in rules.values()
        ],
        "findings": rows,
    }


def _json_script(payload: dict[str, Any]) -> Markup:
    """JSON safe inside ``<script type="application/json">``.

    In JSON ``<``, ``>`` and ``&`` only occur inside strings, where their ``\\u``
    escapes mean the same; without them ``</script>`` in a name would end the element.
    """
    # Evidence is plain data; default=str covers a rule that put a date or a set in it.
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - no raw <, > or & is left to be markup


def _coverage_rows(
    results: Results, rules: dict[str, RuleInfo], servers: list[str]
) -> list[CoverageRow]:
    outcomes = {(c.rule_id, c.server): (c.outcome, c.reason) for c in results.coverage}
    not_run: tuple[str, str | None] = ("not run", None)
    return [
        CoverageRow(rule, tuple(outcomes.get((rule.id, server), not_run) for server in servers))
        for rule in rules.values()
    ]


@cache
def _script_hash(name: str) -> str:
    """The CSP source that lets exactly this inline script run, and nothing injected."""
    digest = hashlib.sha256(str(static_asset(name)).encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def _age(days: int | None) -> str | None:
    """How long a finding has been open at this scan (from ``--history``)."""
    if days is None:
        return None
    return f"{days} day{'' if days == 1 else 's'}"


def _duration(start: datetime, end: datetime) -> str:
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"
