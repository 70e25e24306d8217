"""The HTML report's data block: what report.js draws the findings and large matrices from.

One ``<script type="application/json">`` block holds the lookup tables (rules, servers,
apps, families), the access matrices too large for a static table, and the findings in
two parts:

- ``keys``: five small integers per finding (rule, severity, status, server, app, as
  indexes into the tables), all that filtering and counting need, parsed at once;
- the details (resource, principal, message, evidence, remediation, ...): the first
  ``PLAIN_FINDINGS`` findings carry them as plain JSON rows (``details``), the rest, if
  any, ``packed``: ``CHUNK_FINDINGS`` findings at a time, one JSON row per line,
  gzip-compressed and base64-encoded.

Packing is what lets 50,000 findings open in well under a second. Their details are
about 30 MB of JSON, which the browser has to read, tokenize and parse before it can
show anything; packed they are a fifth of that, and report.js parses only the rows it
draws: the first page from the plain rows at once, the packed chunks unpacked in the
background (or first, for a page that needs them); the search reads the unpacked lines
as text. A report of up to ``PLAIN_FINDINGS`` findings is plain JSON that any browser
shows and anyone can read in the file.

Escaping: in JSON ``<``, ``>`` and ``&`` only occur inside strings, where their ``\\u``
escapes mean the same; without them ``</script>`` in a name would end the element.
Packed chunks are base64, which has none of these characters.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from itertools import islice
from typing import Any

import pydantic_core

from pgwarden.model.results import Finding, RuleInfo
from pgwarden.reports.access_matrix import ACCESS_KINDS, AccessMatrix
from pgwarden.reports.view import STATUS_ORDER, family_name, help_uri, utc_text

# Column order of a finding's key and of its details; report.js reads the same order.
KEY_COLUMNS = ("rule", "severity", "status", "server", "app")
DETAIL_COLUMNS = (
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
# The first findings' details travel as plain JSON rows: a report this small is drawn
# at once, and a larger one's first page without waiting for anything to be unpacked.
PLAIN_FINDINGS = 1_000
# Findings per packed chunk, the unit report.js unpacks.
CHUNK_FINDINGS = 1_000
# zlib's level 4: a fifth of the JSON's size (level 6 saves another tenth, at twice
# the time: the report's rendering pays for it, the browser gains little).
COMPRESSION_LEVEL = 4
# Plain details: bytes of JSON escaped and appended to the report at a time (plus one
# row), which bounds what rendering holds besides the report itself.
JSON_CHUNK_BYTES = 1 << 17


def data_block(
    findings: Sequence[Finding],
    rules: dict[str, RuleInfo],
    servers: list[str],
    apps: list[str],
    drawn: list[AccessMatrix],
    severities: Sequence[str],
) -> Iterator[bytes]:
    """The data block's JSON as UTF-8, ready for ``<script type="application/json">``.

    ``findings`` in the order the report lists them; ``drawn`` the matrices report.js
    draws. Yielded a piece at a time, so rendering holds little besides the report.
    """
    payload = _payload(rules, servers, apps, drawn, severities)
    yield _escaped(_encoded(payload)[:-1] + b',"keys":')
    yield _encoded(_keys(findings, rules, servers, apps, severities))
    details = _details(findings)
    yield b',"details":['
    yield from _plain(islice(details, PLAIN_FINDINGS))
    if len(findings) <= PLAIN_FINDINGS:
        yield b'],"packed":null}'
    else:
        yield b'],"packed":{"findings_per_chunk":%d,"chunks":[' % CHUNK_FINDINGS
        yield from _packed(details)
        yield b"]}}"


def _payload(
    rules: dict[str, RuleInfo],
    servers: list[str],
    apps: list[str],
    drawn: list[AccessMatrix],
    severities: Sequence[str],
) -> dict[str, Any]:
    """What report.js needs besides the findings: lookup tables, the large matrices."""
    families = list(dict.fromkeys(rule.family for rule in rules.values()))
    return {
        "key_columns": KEY_COLUMNS,
        "detail_columns": DETAIL_COLUMNS,
        "severities": severities,
        "statuses": tuple(STATUS_ORDER),
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
        "access_kinds": [[kind, label, how] for kind, (label, how) in ACCESS_KINDS.items()],
        "matrices": [m.compact() for m in drawn],
    }


def _keys(
    findings: Sequence[Finding],
    rules: dict[str, RuleInfo],
    servers: list[str],
    apps: list[str],
    severities: Sequence[str],
) -> list[int]:
    """``KEY_COLUMNS`` of every finding, one flat list: names as indexes into the tables."""
    rule_index = {rule_id: index for index, rule_id in enumerate(rules)}
    server_index = {name: index for index, name in enumerate(servers)}
    app_index = {name: index for index, name in enumerate(apps)}
    severity_index = {name: index for index, name in enumerate(severities)}
    status_index = {name: index for index, name in enumerate(STATUS_ORDER)}
    keys: list[int] = []
    for f in findings:
        keys += (
            rule_index[f.rule_id],
            severity_index[f.severity],
            status_index[f.status],
            server_index[f.server],
            app_index[f.app] if f.app is not None else -1,
        )
    return keys


def _details(findings: Sequence[Finding]) -> Iterator[list[Any]]:
    """``DETAIL_COLUMNS`` of each finding, one row each."""
    # With --history every finding has a first_seen, but only as many different ones
    # as there were runs, and formatting a time costs more than looking it up.
    first_seen = cache(utc_text)
    for f in findings:
        yield [
            f.resource,
            f.principal,
            f.message,
            f.evidence or None,
            f.remediation,
            [f.waiver.reason, f.waiver.owner, f.waiver.expires.isoformat()] if f.waiver else None,
            f.baseline_state,
            first_seen(f.first_seen) if f.first_seen is not None else None,
            f.fingerprint,
            _age(f.age_days),
        ]


def _plain(rows: Iterable[list[Any]]) -> Iterator[bytes]:
    """The rows as the items of a JSON array, escaped, a batch at a time."""
    pending: list[bytes] = []
    size = 0
    separator = b""
    for row in rows:
        encoded = _encoded(row)
        pending.append(encoded)
        size += len(encoded)
        if size >= JSON_CHUNK_BYTES:
            yield _escaped(separator + b",".join(pending))
            pending.clear()
            size = 0
            separator = b","
    if pending:
        yield _escaped(separator + b",".join(pending))


def _packed(rows: Iterator[list[Any]]) -> Iterator[bytes]:
    """The rows as JSON strings of ``CHUNK_FINDINGS`` rows each: lines, gzip, base64.

    Compact JSON has no line break outside its strings' escapes, so a line is a row.
    """
    separator = b""
    while True:
        lines = [_encoded(row) for row in islice(rows, CHUNK_FINDINGS)]
        if not lines:
            return
        packed = zlib.compress(b"\n".join(lines), COMPRESSION_LEVEL, wbits=31)
        yield separator + b'"' + base64.b64encode(packed) + b'"'
        separator = b","


def _encoded(value: Any) -> bytes:
    """Compact JSON as UTF-8.

    pydantic's encoder takes a third of the time of ``json.dumps``. Evidence is plain
    data; a date or a set a rule put in it is encoded as JSON has them, anything else
    by ``str()``, and NaN (which JSON lacks) as null.
    """
    return pydantic_core.to_json(value, fallback=str, inf_nan_mode="null")


def _escaped(encoded: bytes) -> bytes:
    for char, escape in ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026")):
        encoded = encoded.replace(char, escape)
    return encoded


def _age(days: int | None) -> str | None:
    """How long a finding has been open at this scan (from ``--history``)."""
    if days is None:
        return None
    return f"{days} day{'' if days == 1 else 's'}"
