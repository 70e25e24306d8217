"""The findings as CSV (``--csv``): one row per finding, for spreadsheets and audit tools.

One row per finding, pass records included when the scan recorded them
(``--include-passed``), in the results' order. The columns are stable; a new column
is only ever added at the end:

``status``, ``severity``, ``rule_id``, ``rule_title``, ``server``, ``app``,
``resource``, ``principal``, ``message``, ``remediation``, ``evidence`` (compact
JSON), ``controls`` (the framework controls the rule maps to, ``FRAMEWORK CONTROL``
separated by ``; ``), ``waiver_reason``, ``waiver_owner``, ``waiver_expires``,
``baseline_state``, ``first_seen``, ``fingerprint``.

RFC 4180: fields quoted when they hold a comma, quote or line break, quotes doubled,
CRLF between records; UTF-8 without a byte order mark. Values come from the audited
server (role, database and application names) and may be crafted to run as spreadsheet
formulas: a value beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return (after any spaces) is written with a leading apostrophe, which spreadsheets
show as text and never evaluate. Nothing else is changed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from pgwarden.model.results import Finding, Results, RuleInfo
from pgwarden.reports.view import rules_by_id, utc_text

COLUMNS = (
    "status",
    "severity",
    "rule_id",
    "rule_title",
    "server",
    "app",
    "resource",
    "principal",
    "message",
    "remediation",
    "evidence",
    "controls",
    "waiver_reason",
    "waiver_owner",
    "waiver_expires",
    "baseline_state",
    "first_seen",
    "fingerprint",
)
# What a spreadsheet takes for the start of a formula (or of a DDE command).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralized(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: an apostrophe before a formula start."""
    if value.lstrip(" ").startswith(FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(results: Results) -> bytes:
    """The findings as CSV in UTF-8, one row per finding (pass records included)."""
    return b"".join(stream_csv(results))


# Rows encoded at a time when the CSV is written a piece at a time: a few hundred KB.
# (StringIO holds up to four bytes a character, so 2,000 rows of a big server's findings
# had briefly cost 40 MB.)
_ROWS_PER_PIECE = 200


def stream_csv(results: Results) -> Iterator[bytes]:
    """``render_csv`` a few thousand rows at a time: the CSV of 200,000 findings is
    never held whole (as text, then as bytes) on its way to a file."""
    rules = rules_by_id(results)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for count, row in enumerate(_rows(results.findings, rules), start=1):
        writer.writerow(row)
        if count % _ROWS_PER_PIECE == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if rest := buffer.getvalue():
        yield rest.encode("utf-8")


def _rows(findings: Iterable[Finding], rules: dict[str, RuleInfo]) -> Iterator[list[str]]:
    controls = {rule_id: _controls(rule) for rule_id, rule in rules.items()}
    for f in findings:
        waiver = f.waiver
        cells = [
            f.status,
            f.severity,
            f.rule_id,
            rules[f.rule_id].title,
            f.server,
            f.app or "",
            f.resource,
            f.principal or "",
            f.message,
            f.remediation or "",
            _json(f.evidence) if f.evidence else "",
            controls[f.rule_id],
            waiver.reason if waiver else "",
            waiver.owner if waiver else "",
            waiver.expires.isoformat() if waiver else "",
            f.baseline_state or "",
            utc_text(f.first_seen) if f.first_seen else "",
            f.fingerprint,
        ]
        yield [neutralized(cell) for cell in cells]


def _controls(rule: RuleInfo) -> str:
    return "; ".join(f"{c.framework} {c.id}" for c in rule.controls or ())


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
