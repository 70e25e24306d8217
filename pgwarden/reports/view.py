"""What every report shows the same way: order of findings, rule families, help links.

Renderers never decide what failed; they only order and label what the Results say.
Keeping the order in one place means the HTML report, the SARIF file and the markdown
summary list the same findings first.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, datetime

from pgwarden.model.results import SEVERITY_ORDER, Finding, Results, RuleInfo, Waiver

# Built-in families get a readable name; a plug-in family shows its code.
FAMILY_NAMES: dict[str, str] = {
    "ADM": "Administrator use",
    "MAP": "Tenancy map",
    "ISO": "Database isolation",
    "ROLE": "Roles and privileges",
    "AUTH": "Authentication",
    "NET": "Network access",
    "TLS": "Transport security",
    "KV": "Key Vault secrets",
    "BAK": "Backup and availability",
    "MON": "Monitoring",
    "LOG": "Logging",
}

# A failing finding outranks an unevaluated rule, which outranks an accepted risk; pass
# records (--include-passed) come last.
STATUS_ORDER: dict[str, int] = {"fail": 0, "error": 1, "waived": 2, "pass": 3}

# Characters of output gathered before they are encoded and appended to a document.
_BATCH_CHARACTERS = 1 << 16


def family_name(code: str) -> str:
    """The readable name of a rule family (``ISO`` → ``Database isolation``)."""
    return FAMILY_NAMES.get(code, code)


def family_of(rule_id: str) -> str:
    """The family code in a rule id, for findings whose rule the results do not describe.

    The same split as ``Rule.family()``, which needs the rule class this stub lacks.
    """
    parts = rule_id.split("-")
    return parts[1] if len(parts) == 3 else parts[0]


def help_uri(rule: RuleInfo) -> str | None:
    """The rule's documentation page as the results name it, or None: no link then.

    The engine sets it (``[report] rule_docs_url`` for built-in rules, a plug-in's own
    ``help_uri``); reports never invent one. Only http(s) URIs become links: any other
    scheme (``javascript:``) is not one to follow.
    """
    if rule.help_uri and rule.help_uri.lower().startswith(("https://", "http://")):
        return rule.help_uri
    return None


def rules_by_id(results: Results) -> dict[str, RuleInfo]:
    """Every rule the results describe, plus a stub for any rule only a finding names.

    A results document edited by hand (or produced by an older plug-in) may mention a
    rule without its metadata; reports still show the finding rather than fail.
    """
    rules = {rule.id: rule for rule in results.rules}
    for finding in results.findings:
        if finding.rule_id not in rules:
            rules[finding.rule_id] = RuleInfo(
                id=finding.rule_id,
                title=finding.rule_id,
                severity=finding.severity,
                family=family_of(finding.rule_id),
                description="",
            )
    return rules


def severity_first(finding: Finding) -> tuple[int, int]:
    """Sort key: failing before errors before waived, most severe first.

    Sorts are stable, so ties keep the order of the results document (which the
    engine sorts by rule, server, resource and principal); a short key also keeps
    sorting 50,000 findings cheap.
    """
    return (STATUS_ORDER[finding.status], -SEVERITY_ORDER[finding.severity])


def severity_rank(status: str, severity: str) -> tuple[int, int]:
    """``severity_first`` of any finding with this status and severity."""
    return (STATUS_ORDER[status], -SEVERITY_ORDER[severity])


def is_pass(finding: Finding) -> bool:
    """Whether this is a pass record (``--include-passed``), not something found wanting."""
    return finding.status == "pass"


def is_current(finding: Finding) -> bool:
    """Whether the scan found this; a baseline entry it no longer finds is ``absent``."""
    return finding.baseline_state != "absent"


def most_severe_first(findings: Iterable[Finding]) -> list[Finding]:
    """The findings in the order every report lists them when it cannot list them all.

    The order of ``sorted(findings, key=severity_first)``, ties in document order. There
    are only a dozen (status, severity) pairs, so one pass puts each finding in its
    group and the groups are joined in order: for 50,000 findings a fraction of the
    cost of a key per finding and a sort.
    """
    groups: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        key = (finding.status, finding.severity)
        group = groups.get(key)
        if group is None:
            group = groups[key] = []
        group.append(finding)
    return [
        finding
        for key in sorted(groups, key=lambda pair: severity_rank(*pair))
        for finding in groups[key]
    ]


def server_names(results: Results) -> list[str]:
    """Servers in the order scanned, then any only a finding or coverage entry names."""
    names = [server.name for server in results.servers]
    seen = set(names)
    for name in [f.server for f in results.findings] + [c.server for c in results.coverage]:
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def waiver_text(waiver: Waiver) -> str:
    """A waiver in one line: why, who answers for it, until when."""
    return f"{waiver.reason} (owner {waiver.owner}, expires {waiver.expires.isoformat()})"


def utc_text(moment: datetime) -> str:
    """A timestamp as people read it in a report: UTC, to the second."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def utf8_document(chunks: Iterable[str | bytes]) -> bytes:
    """The chunks joined and encoded as UTF-8, holding little more than the result.

    A document of tens of megabytes built as one ``str`` costs two to four bytes a
    character (one non-ASCII name is enough), then again when it is encoded and while
    it is joined; appending small encoded batches to a buffer costs the output's
    bytes once (``BytesIO.getvalue`` hands over its buffer without a copy). A chunk
    already in UTF-8 (``bytes``) is appended as it is.
    """
    document = io.BytesIO()
    batch: list[str] = []
    size = 0
    for chunk in chunks:
        if isinstance(chunk, bytes):
            document.write("".join(batch).encode("utf-8"))
            document.write(chunk)
            batch.clear()
            size = 0
            continue
        batch.append(chunk)
        size += len(chunk)
        if size >= _BATCH_CHARACTERS:
            document.write("".join(batch).encode("utf-8"))
            batch.clear()
            size = 0
    document.write("".join(batch).encode("utf-8"))
    return document.getvalue()
